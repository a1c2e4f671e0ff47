"""The job state machine: which states a job can be in, which moves between them are allowed,
and which states are final. Everything that asks "is this job over?" asks here.

Modelled on Prefect's `StateType` / `is_final()`: a small enum whose members know whether they
are final, and one table of allowed transitions. The Job's `transition()` (engine/runtime/job.py)
is the only place that changes a job's status: it checks the move against this table, records
it and publishes it. A later state (durable jobs: waiting, resumed after a restart) is one more
member and its rows in `ALLOWED`.

A leaf module on purpose (no engine imports): the store (engine/store/jobs.py), the tests and the
benchmarks read the same sets.
"""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    """`status_data.status` on the wire and `jobs.status` in the database (the same text)."""

    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    def is_final(self) -> bool:
        return self in FINAL

    def __str__(self) -> str:  # "RUNNING", not "JobStatus.RUNNING", in text and logs
        return self.value


FINAL: frozenset[JobStatus] = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED})
ACTIVE: frozenset[JobStatus] = frozenset(set(JobStatus) - FINAL)

# The wire texts, for code that compares plain strings (SQL, frames read back by clients).
STATUS_TEXTS: tuple[str, ...] = tuple(s.value for s in JobStatus)
FINAL_TEXTS: tuple[str, ...] = tuple(s.value for s in JobStatus if s in FINAL)
ACTIVE_TEXTS: tuple[str, ...] = tuple(s.value for s in JobStatus if s in ACTIVE)

# status -> the statuses it may move to. A final status moves nowhere.
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.RUNNING: frozenset({JobStatus.PAUSED, *FINAL}),
    JobStatus.PAUSED: frozenset({JobStatus.RUNNING, *FINAL}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.STOPPED: frozenset(),
}


class InvalidTransition(RuntimeError):
    """A move the table does not allow: a bug in the runtime, never a client's mistake."""


def check_transition(current: JobStatus, new: JobStatus) -> None:
    if new not in ALLOWED[current]:
        raise InvalidTransition(f"a job cannot go from {current} to {new}")
