"""The job state machine: one table of allowed moves, final states that move nowhere."""

from __future__ import annotations

import pytest

from engine.runtime.state import (ACTIVE, ACTIVE_TEXTS, ALLOWED, FINAL, FINAL_TEXTS, InvalidTransition,
                                  JobStatus, check_transition)


def test_every_status_is_either_active_or_final_and_final_ones_move_nowhere() -> None:
    assert ACTIVE | FINAL == set(JobStatus) and not ACTIVE & FINAL
    assert set(ALLOWED) == set(JobStatus)
    for status in FINAL:
        assert status.is_final() and ALLOWED[status] == frozenset()
        for other in JobStatus:
            with pytest.raises(InvalidTransition):
                check_transition(status, other)
    assert FINAL_TEXTS == ("SUCCEEDED", "FAILED", "STOPPED") and ACTIVE_TEXTS == ("RUNNING", "PAUSED")


def test_running_and_paused_move_between_each_other_and_to_any_end() -> None:
    for status in FINAL | {JobStatus.PAUSED}:
        check_transition(JobStatus.RUNNING, status)
    for status in FINAL | {JobStatus.RUNNING}:
        check_transition(JobStatus.PAUSED, status)
    with pytest.raises(InvalidTransition):
        check_transition(JobStatus.RUNNING, JobStatus.RUNNING)
    assert str(JobStatus.RUNNING) == "RUNNING" and JobStatus("PAUSED") is JobStatus.PAUSED
