"""The per-owner job id namespace (engine/runtime/job_keys.py): keys and the ids frames carry."""

from __future__ import annotations

import string
import time

from hypothesis import given, strategies as st

from engine.handlers.workflows import JOB_ID
from engine.runtime.job_keys import key_of, new_key, new_wire_id, owned_key, wire_id

WIRE = st.text(alphabet=string.ascii_letters + string.digits + "_.:-", min_size=1, max_size=40)
OWNER = st.sampled_from(["0x" + c * 40 for c in "abc"])


@given(WIRE, OWNER, st.lists(st.tuples(st.text(alphabet="abc", min_size=1, max_size=4), st.integers(1, 9)), max_size=3))
def test_a_key_and_its_sub_jobs_keep_the_wire_id(wire: str, owner: str, path: list) -> None:
    suffix = "".join(f"/{node}/{seq}" for node, seq in path)
    assert wire_id(wire + suffix) == wire + suffix
    assert wire_id(owned_key(owner, wire) + suffix) == wire + suffix


@given(WIRE, st.lists(OWNER, min_size=1, max_size=6))
def test_each_owner_gets_their_own_job_under_one_id(wire: str, starts: list[str]) -> None:
    used: dict[str, str] = {}
    for who in starts:
        key = new_key(used, who, wire)
        if who in used.values():
            assert key is None  # their own id again: taken
            continue
        assert key is not None and key not in used and wire_id(key) == wire
        used[key] = who
    for who in set(starts):
        found = key_of(used, who, wire)
        assert found is not None and used[found] == who
    assert key_of(used, "0x" + "d" * 40, wire) is None


def test_the_first_job_under_an_id_is_stored_under_it() -> None:
    a, b = "0x" + "a" * 40, "0x" + "b" * 40
    assert new_key({}, a, "nightly") == "nightly"
    assert new_key({"nightly": a}, b, "nightly") == f"nightly#{b}"
    # Once the first is gone (retention), the next job of that name takes the plain id again.
    assert new_key({f"nightly#{b}": b}, a, "nightly") == "nightly"
    assert new_key({f"nightly#{b}": b}, b, "nightly") is None


@given(WIRE, OWNER, st.lists(st.tuples(st.booleans(), st.sampled_from(["", "#0x" + "a" * 40, "#0x" + "b" * 40]), OWNER), max_size=6))
def test_two_maps_answer_as_their_chain_would(wire: str, owner: str, taken: list) -> None:
    """new_key(used, ..., starting) is new_key of the two maps chained (their keys never overlap)."""
    from collections import ChainMap
    used: dict[str, str] = {}
    starting: dict[str, str] = {}
    for in_used, tag, who in taken:
        key = wire + tag
        if key not in used and key not in starting:
            (used if in_used else starting)[key] = who
    assert new_key(used, owner, wire, starting) == new_key(ChainMap(used, starting), owner, wire)


def test_engine_made_ids_grow_with_time_and_are_valid_wire_ids() -> None:
    """The engine's own job ids sort in the order they were made (so the history tables
    append instead of inserting at random pages), and a client may name them in frames."""
    made = []
    for _ in range(6):
        made.append(new_wire_id("webhook"))
        time.sleep(0.003)
    assert made == sorted(made)
    assert len(set(made + [new_wire_id("webhook") for _ in range(1000)])) == 1006
    for job_id in made:
        assert JOB_ID.pattern.fullmatch(job_id), job_id
        assert len(job_id) == len("webhook-") + 32
