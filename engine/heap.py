"""The cyclic garbage collector and a long-running engine.

What a run makes is freed by reference counting (the runtime keeps its objects free of
reference cycles: see the weak references in engine/runtime/runner.py), so the collector finds
almost nothing. Yet every full collection walks every object the process holds, and most were
made at start (imported modules, libraries, the tray app's toolkit) and live as long as the
process: measured, 43 ms per full collection and about 60 µs per run of a webhook-shaped
workflow, for a collector that freed 233 objects in 53 full passes.

Once the engine has started, what exists is moved out of the collector's sight (`gc.freeze`):
those objects stay alive either way. A stop thaws them, so that what the stopped engine leaves
in cycles (the desktop app starts a new engine in the same process) is collected as usual.
The setting is the process's: the last engine to start or stop decides it.

Measured under the webhook benchmark's load (bench/RESULTS.md, 2026-12-04): full collections
took 0.33 s per 10,000 runs unfrozen and 0.07 s frozen, and the engine's CPU per run fell by
6-10 %. Tried once before and reverted over bench_datasets' ratio row; interleaved runs since
show that row moving 0.77-1.13× either way (noise), while the appending runs themselves were
faster frozen in every pair.

A running engine also collects its young generation less often: every 20,000 allocations
instead of CPython's 700. A run allocates a few thousand objects and frees nearly all of them by
reference counting, but at 700 a collection came every run or two and walked the objects of
every job in flight, then promoted them, so the middle generation's passes (about 1.3 ms each)
came every dozen runs. Measured under the webhook's load: 35 µs of GC per run before, 3 µs
after (bench/RESULTS.md, 2026-12-04, evening). The old thresholds come back at the stop. Rarer
passes make a reference cycle cost more memory: tests/test_runtime_garbage.py keeps runs free
of them.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000   # allocations between young-generation passes (CPython: 700)
MIDDLE_THRESHOLD = 20      # young passes between middle-generation passes (CPython: 10)

Thresholds = tuple[int, int, int]


def freeze_startup_objects() -> Thresholds:
    """Freeze what exists and space out the young passes; returns the thresholds to give
    back to `thaw`."""
    gc.freeze()
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], YOUNG_THRESHOLD), max(before[1], MIDDLE_THRESHOLD), before[2])
    return before


def thaw(thresholds: Thresholds | None = None) -> None:
    gc.unfreeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)
