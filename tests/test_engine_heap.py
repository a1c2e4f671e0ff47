"""A started engine keeps what exists at start out of the garbage collector's full passes
(engine/heap.py); a stop gives them back, so what a stopped engine leaves in cycles is freed."""

from __future__ import annotations

import gc
import weakref

from engine import heap


class Cycle:
    def __init__(self) -> None:
        self.me = self


async def test_start_freezes_and_stop_thaws(make_engine) -> None:
    gc.unfreeze()
    leftover = Cycle()
    gone = weakref.ref(leftover)
    before = len(gc.get_objects())
    engine = await make_engine()
    assert gc.get_freeze_count() >= before  # everything made before and during the start
    del leftover
    gc.collect()
    assert gone() is not None  # frozen: out of the collector's sight
    await engine.stop()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None  # thawed: collected as usual


async def test_young_passes_are_spaced_out_while_running(make_engine) -> None:
    gc.set_threshold(700, 10, 10)
    engine = await make_engine()
    try:
        young, middle, old = gc.get_threshold()
        assert young >= heap.YOUNG_THRESHOLD and middle >= heap.MIDDLE_THRESHOLD and old == 10
    finally:
        await engine.stop()
    assert gc.get_threshold() == (700, 10, 10)  # the process's own setting, given back
