"""Where a node's output is encoded: on the loop only when it is small. The engine-made history
is not walked again on every node (its size is known from the node's input)."""

from __future__ import annotations

from engine.runtime.job import HISTORY_KEEP, SMALL_INPUT_BYTES, output_is_small


def _history(n: int) -> list[dict[str, object]]:
    return [{"node_id": f"n{i}", "node_name": f"Node {i}", "module_id": "set_data",
             "status": "SUCCESS", "output_name": None, "timestamp": 1.0} for i in range(n)]


def test_a_long_engine_history_with_small_data_is_small() -> None:
    out = {"data": {"step": 1}, "history": _history(HISTORY_KEEP)}
    assert output_is_small(out, input_size=20_000)


def test_big_data_is_not_small_whatever_the_history() -> None:
    assert not output_is_small({"data": {"blob": "x" * 1_000_000}, "history": _history(3)}, 500)
    assert not output_is_small({"data": {"rows": list(range(50_000))}, "history": []}, 500)
    assert not output_is_small({"data": {}, "history": [], "extra": ["y"] * 50_000}, 500)


def test_a_big_input_or_a_history_the_engine_did_not_make_is_walked_whole() -> None:
    padded = [{"note": "z" * 200_000}] * 2
    assert not output_is_small({"data": {}, "history": padded}, SMALL_INPUT_BYTES + 1)
    assert not output_is_small({"data": {}, "history": _history(HISTORY_KEEP) * 30}, 100)
    assert not output_is_small({"data": {}, "history": {"not": "a list", "big": "q" * 1_000_000}}, 100)
