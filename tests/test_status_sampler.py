"""CPU readings come from windows of at least a second, never from two calls a few
milliseconds apart (which reported 100 % right after start-up)."""

from __future__ import annotations

import psutil
import pytest

from engine.status import ResourceSampler


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cpu_is_not_remeasured_inside_the_minimum_window(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    sampler = ResourceSampler(min_window_s=1.0, clock=clock)
    calls: list[float] = []
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: calls.append(clock.now) or 42.0)
    first = sampler.sample()
    clock.now += 0.01
    second = sampler.sample()
    assert calls == [] and first[0] == second[0] == 0.0  # still inside the first window
    clock.now += 1.0
    third = sampler.sample()
    assert calls == [clock.now] and third[0] == 42.0
    clock.now += 0.2
    assert sampler.sample()[0] == 42.0 and len(calls) == 1  # cached until the next window
    assert third[2] > 0  # resident memory is read every time
