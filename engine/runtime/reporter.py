"""What one job tells the world: event frames to its owner's connections, records to the history.

The scheduler and the node runner call these methods and never build a frame or a record
themselves, so the frames the GUI sees (protocol.md §1) are defined here, in one place, in the
order and with the fields the GUI reads. Frames are plain dicts built from the node's known
parts and encoded once (orjson) by the server, however many connections receive them. Node
metrics and connection updates carry a coalesce key (job, node / job, connection): a client that
cannot keep up gets the latest frame per key instead of losing a node's final status
(engine/server/outbox.py).

Job log lines also go to the engine's own log, at DEBUG: the GUI already has them as `log` frames.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from engine.events import Delivery, Event
from engine.runtime.history import HistoryRecorder
from engine.runtime.job_keys import wire_id
from engine.runtime.payload import Snapshot
from engine.runtime.templating import Masker

log = logging.getLogger("engine.jobs")

Publish = Callable[[Event], None]


class JobReporter:
    __slots__ = ("_publish", "recorder", "job_id", "wire_id", "owner", "mode", "masker",
                 "is_child", "_crossing_seq", "_masking")

    def __init__(self, publish: Publish, recorder: HistoryRecorder, *, job_id: str, owner: str,
                 mode: str, masker: Masker, is_child: bool) -> None:
        self._publish = publish
        self.recorder = recorder
        self.job_id = job_id             # the storage key: what the recorder writes
        self.wire_id = wire_id(job_id)   # what frames say (engine/runtime/job_keys.py)
        self.owner = owner
        self.mode = mode
        self.masker = masker
        self.is_child = is_child
        self._crossing_seq = 0
        self._masking = bool(masker)  # no secrets in this job: frames leave as built

    def _emit(self, frame: dict[str, Any], delivery: Delivery, key: str | None = None) -> None:
        if self._masking:
            frame = self.masker.deep(frame)
        self._publish(Event(self.owner, frame, delivery, key, self.job_id))

    # -- the job ------------------------------------------------------------------------------

    def created(self, preset_name: str | None, start_time: float, parent_job_id: str | None,
                preview_bytes: int, started_by: dict[str, Any] | None = None) -> int:
        """Queue the job's record; returns its write number (HistoryRecorder.committed)."""
        self.recorder.set_preview_bytes(self.job_id, preview_bytes)
        return self.recorder.job_create(self.job_id, self.owner, preset_name, self.mode,
                                        start_time, parent_job_id, started_by)

    def status(self, status_data: dict[str, Any]) -> None:
        """workflow_status_update (top-level jobs only: the GUI knows no sub-jobs)."""
        if not self.is_child:
            self._emit({"type": "workflow_status_update", "job_id": self.wire_id,
                        "status_data": status_data}, Delivery.ESSENTIAL)

    def record_status(self, status: str, end_time: float | None, error: str | None,
                      result_text: str | None) -> None:
        self.recorder.job_status(self.job_id, status, end_time, error, result_text)

    def discard(self, create_op: int) -> bool:
        """Not keep the job's record (it succeeded, and its rule keeps unsuccessful runs only).
        True when none of it has reached the writer yet (`create_op`: its record's write
        number): the record and the discard then go to the database in one batch, or not at
        all, so there is no commit to wait for."""
        self.recorder.job_discard(self.job_id)
        return self.recorder.queued(create_op)

    def forget(self) -> None:
        self.recorder.forget(self.job_id)

    def resume_numbering(self, crossing_seq: int) -> None:
        """A restored job goes on numbering its crossings after the last one recorded."""
        self._crossing_seq = crossing_seq

    # -- nodes --------------------------------------------------------------------------------

    def node_running(self, node: Any, run_seq: int, input_size: int, started: float) -> None:
        job_id = self.job_id
        self._emit({"type": "NODE_EXECUTION_METRIC", "workflow_context_id": self.wire_id,
                    "job_id": self.wire_id, "node_id": node.id, "node_name": node.name,
                    "module_id": node.module_id, "status": "RUNNING", "timestamp": started,
                    "mode": self.mode, "run_seq": run_seq, "input_size_bytes": input_size},
                   Delivery.DROPPABLE, f"m\x00{job_id}\x00{node.id}")
        self.recorder.node_start(job_id, run_seq, node.id, node.module_id, started)

    def node_succeeded(self, node: Any, run_seq: int, input_size: int, elapsed_ms: float,
                       output_size: int, port: str | None) -> None:
        job_id = self.job_id
        now = time.time()
        frame = {"type": "NODE_EXECUTION_METRIC", "workflow_context_id": self.wire_id,
                 "job_id": self.wire_id, "node_id": node.id, "node_name": node.name,
                 "module_id": node.module_id, "status": "SUCCESS", "timestamp": now,
                 "mode": self.mode, "run_seq": run_seq, "input_size_bytes": input_size,
                 "execution_time_ms": round(elapsed_ms, 3), "output_size_bytes": output_size}
        if port is not None:
            frame["output_name"] = port
        self._emit(frame, Delivery.DROPPABLE, f"m\x00{job_id}\x00{node.id}")
        self.recorder.node_end(job_id, run_seq, "SUCCESS", now, None)

    def node_failed(self, node: Any, run_seq: int, input_size: int, elapsed_ms: float,
                    message: str) -> None:
        """The ERROR metric carries its text in `error_message` (D1: an event frame never has
        a top-level `error`, which the GUI would show as an engine error and then drop)."""
        job_id = self.job_id
        now = time.time()
        self._emit({"type": "NODE_EXECUTION_METRIC", "workflow_context_id": self.wire_id,
                    "job_id": self.wire_id, "node_id": node.id, "node_name": node.name,
                    "module_id": node.module_id, "status": "ERROR", "timestamp": now,
                    "mode": self.mode, "run_seq": run_seq, "input_size_bytes": input_size,
                    "execution_time_ms": round(elapsed_ms, 3), "error_message": message},
                   Delivery.DROPPABLE, f"m\x00{job_id}\x00{node.id}")
        self.recorder.node_end(job_id, run_seq, "ERROR", now, message)

    def node_stopped(self, run_seq: int) -> None:
        self.recorder.node_end(self.job_id, run_seq, "STOPPED", time.time(), "stopped")

    def crossed(self, edge: Any, snapshot: Snapshot) -> None:
        """Data went along `edge`: the GUI animates it; the history records the payload (its
        text is joined on the database thread, from the snapshot's bytes)."""
        job_id = self.job_id
        now = time.time()
        self._crossing_seq += 1
        self.recorder.crossing(job_id, self._crossing_seq, edge.id, snapshot, self.masker, now)
        self._emit({"type": "CONNECTION_STATUS_UPDATE", "workflow_context_id": self.wire_id,
                    "job_id": self.wire_id, "connection_id": edge.id, "status": "ACTIVE",
                    "source_node_id": edge.source, "target_node_id": edge.target,
                    "timestamp": now}, Delivery.DROPPABLE, f"c\x00{job_id}\x00{edge.id}")

    # -- lines and popups ---------------------------------------------------------------------

    def line(self, source: str, node_id: str | None, message: str, level: str = "INFO") -> None:
        message = self.masker.text(message)
        frame = {"type": "log", "level": level, "source": source, "message": message,
                 "timestamp": time.time(), "workflow_context_id": self.wire_id,
                 "job_id": self.wire_id}
        if node_id is not None:
            frame["node_id"] = node_id
        self._emit(frame, Delivery.DROPPABLE)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("job %s [%s] %s: %s", self.job_id, self.masker.text(source), level, message)

    def popup(self, node_id: str, title: str, content: Any) -> None:
        self._emit({"type": "SHOW_DEBUG_POPUP", "title": title, "content": content,
                    "workflow_context_id": self.wire_id, "job_id": self.wire_id,
                    "node_id": node_id}, Delivery.ESSENTIAL)
