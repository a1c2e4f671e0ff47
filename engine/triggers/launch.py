"""The one place that knows how to start a run in the runtime and hear that it ended.

Automations start runs like a client would: through the runtime's public start call, with the
preset's workflow, the trigger node as start node, the trigger's event as initial payload and
`started_by` saying which rule it was. Adapting to another start API means changing this file.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class RunEnd:
    job_id: str
    status: str                  # SUCCEEDED, FAILED or STOPPED
    error: str | None
    data: Any = None             # the final payload's `data` (secrets masked), when it succeeded


class RuntimeStarter:
    """Starts runs in the engine's current runtime (it is replaced when the engine restarts)."""

    def __init__(self, runtime: Callable[[], Any]) -> None:
        self._runtime = runtime

    async def start(self, owner: str, job_id: str, workflow: dict[str, Any], *,
                    preset_name: str, start_node_id: str | None, initial_payload: Any,
                    started_by: dict[str, Any]) -> "asyncio.Future[RunEnd]":
        """Start the run (EngineError when it cannot start); the future resolves at its end."""
        runtime = self._runtime()
        if runtime is None:
            raise RuntimeError("the engine is not running")
        job = await runtime.execute(owner, job_id, workflow, mode="EXECUTE",
                                    initial_payload=initial_payload, preset_name=preset_name,
                                    start_node_id=start_node_id, started_by=started_by)
        return _outcome(job)


def _outcome(job: Any) -> "asyncio.Future[RunEnd]":
    """The run's outcome as soon as it is known: not after its record is committed (the
    owner's connections hear it then), since whoever waits here wants the result, not the
    history. A job suspended by a stopping engine has no outcome: the future is cancelled.
    A done callback, not a task: one task fewer per triggered run."""
    outcome: asyncio.Future[RunEnd] = asyncio.get_running_loop().create_future()

    def settle(_: Any) -> None:
        if outcome.done():
            return
        if not job.status.is_final():
            outcome.cancel()
            return
        data = None
        if job.status == "SUCCEEDED" and isinstance(job.final_payload, dict):
            data = job.masker.deep(job.final_payload.get("data"))
        outcome.set_result(RunEnd(job.wire_id, job.status, job.error, data))

    job.ended.future().add_done_callback(settle)
    return outcome
