"""The payload on the hot path: a node's output size and its crossing's snapshot come from
encoding `data` once; the engine-made history is never re-encoded (each entry is encoded once,
when it is made, and the list keeps their total), and what a module did to the history itself is
still counted exactly. Replaces the old check of where an output was encoded (on the loop only
when small): there is no whole-payload encoding left to place."""

from __future__ import annotations

import json

import orjson
import pytest

from engine.runtime import payload as payload_module
from engine.runtime.payload import (HISTORY_KEEP, History, HistoryEntry, PayloadNotJSON, Snapshot,
                                    as_payload, normalize)


def _full_size(payload: dict) -> int:
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _history(n: int) -> History:
    history = History()
    for i in range(n):
        history.add(HistoryEntry(f"n{i}", f"Node {i} é", "set_data", "SUCCESS", None, 1.5 + i))
    return history


def test_a_long_engine_history_is_kept_short_and_never_re_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    history = _history(HISTORY_KEEP + 30)
    assert len(history) == HISTORY_KEEP and history[0]["node_id"] == "n30"
    out = {"data": {"step": 1}, "history": history}
    calls = []
    real = payload_module.encode
    monkeypatch.setattr(payload_module, "encode", lambda v: calls.append(v) or real(v))
    snapshot = Snapshot(out)
    assert calls == [{"step": 1}]  # the data only, not the 100 entries
    assert snapshot.size == _full_size(out)
    assert json.loads(snapshot.text()) == json.loads(json.dumps(out))


def test_sizes_stay_exact_whatever_a_module_does_to_the_history() -> None:
    history = _history(5)
    history.append({"note": "a module's own entry", "n": [1, 2, 3]})
    out = {"data": {"blob": "x" * 100_000}, "history": history, "extra": {"k": "v"}}
    assert Snapshot(out).size == _full_size(out)
    del history[1]
    history[0] = {"replaced": True}
    assert Snapshot(out).size == _full_size(out)
    history.add(HistoryEntry("z", "Z", "set_data", "ERROR", "error", 9.0))
    assert Snapshot(out).size == _full_size(out)
    merged = {"data": {}, "history": list(_history(3)) + list(_history(2))}  # what merge returns
    normalized, port = normalize(merged, as_payload({}))
    assert port is None and Snapshot(normalized).size == _full_size(merged)


def test_branch_copies_are_private_and_odd_values_become_text() -> None:
    out = as_payload({"data": {"rows": [{"a": {"b": 1}}] * 3}})
    snapshot = Snapshot(out)
    first, second = snapshot.copy(), snapshot.copy()
    first["data"]["rows"][0]["a"]["b"] = 2
    assert second["data"]["rows"][0]["a"]["b"] == 1 and out["data"]["rows"][0]["a"]["b"] == 1
    odd = Snapshot(as_payload({"when": {1, 2}, "big": 2**70 + 1}))  # + 1: no double holds it
    assert odd.lossy and odd.copy()["data"] == {"when": "{1, 2}", "big": 2**70 + 1}
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(PayloadNotJSON):
        Snapshot(as_payload({"loop": loop}))
    assert orjson.loads(Snapshot(as_payload({"nan": float("nan")})).data) == {"nan": None}


def test_integers_past_64_bits_come_back_exactly() -> None:
    """orjson reads them as floats without a word; the standard library wrote them, and
    reads them back."""
    from engine.runtime.payload import decode, encode
    value = {"big": 10**25 + 1, "negative": -(2**64) - 3, "digits": "1234567890123456789012345", "f": 1.5}
    raw, lossy = encode(value)
    assert not lossy and decode(raw) == value and type(decode(raw)["big"]) is int
    assert decode(b'{"small":18446744073709551615}') == {"small": 2**64 - 1}  # orjson's own range


def test_fork_gives_each_branch_a_private_copy() -> None:
    from engine.runtime.payload import fork
    out = as_payload({"rows": [{"a": {"b": 1}}] * 3, "n": float("inf")})
    copies = fork(out, Snapshot(out), 3)
    copies[0]["data"]["rows"][0]["a"]["b"] = 9
    copies[1]["history"].add(HistoryEntry("x", "X", "set_data", "SUCCESS", None, 1.0))
    assert [c["data"]["rows"][0]["a"]["b"] for c in copies] == [9, 1, 1]
    assert out["data"]["rows"][0]["a"]["b"] == 1 and len(out["history"]) == 0 and len(copies[2]["history"]) == 0

    class Tagged(dict):
        pass
    odd = as_payload({"t": Tagged(k=1)})  # marshal refuses subclasses: the JSON copy is used
    assert fork(odd, Snapshot(odd), 1)[0]["data"] == {"t": {"k": 1}}
