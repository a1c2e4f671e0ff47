"""What a module gets: its node, the job's mode, a logger, popup and approval helpers,
cancellation. Never engine internals.

A module is a `module.py` with `run(ctx, payload)`, either `async def` (runs on the event loop:
it must not block) or plain `def` (runs in a worker thread, so it may block). It returns
`{"payload": ..., "output_name": PORT}`, or just the new payload, or None to pass the payload on
unchanged. Raising an exception leaves through the node's `error` port if one is connected,
else fails the job with the message.

The helpers are safe to call from either kind of module: the sync ones hop to the loop.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.runtime.job import Job
    from engine.runtime.graph import Node

LEVELS = ("DEBUG", "INFO", "SUCCESS", "WARN", "WARNING", "ERROR", "CRITICAL")


class ModuleError(Exception):
    """A module's failure with a message meant for people (no traceback in the log)."""


class JobCancelled(Exception):
    """Raised by `ctx.raise_if_cancelled()` in a sync module once the job is stopped."""


class NodeContext:
    def __init__(self, job: "Job", node: "Node", config: dict[str, Any],
                 inputs: list[dict[str, Any]] | None = None) -> None:
        self._job = job
        self._loop = job.loop
        self.job_id = job.job_id
        self.node_id = node.id
        self.node_name = node.name
        self.module_id = node.module_id
        self.mode = job.mode
        self.config = config
        self.inputs = inputs or []  # every input payload, for modules that wait for all inputs
        self.cancelled = threading.Event()

    @property
    def simulate(self) -> bool:
        return self.mode == "SIMULATE"

    def _on_loop(self, fn: Any, *args: Any) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def log(self, message: Any, level: str = "INFO") -> None:
        """One line for the GUI's log panel and the engine log (secrets masked)."""
        level = str(level).upper()
        if level not in LEVELS:
            level = "INFO"
        self._on_loop(self._job.node_log, self.node_id, self.node_name, str(message), level)

    def popup(self, title: str, content: Any) -> None:
        """SHOW_DEBUG_POPUP on every connection of the job's owner."""
        self._on_loop(self._job.popup, self.node_id, str(title), content)

    async def request_approval(self, message: str, timeout_s: float | None = None) -> Any:
        """Ask the owner; returns an ApprovalResolution (decision APPROVED or REJECTED)."""
        return await self._job.request_approval(self.node_id, self.node_name, self.module_id,
                                                message, timeout_s)

    def request_approval_blocking(self, message: str, timeout_s: float | None = None) -> Any:
        """`request_approval` for a sync module (worker thread): waits, and gives up with
        JobCancelled once the job is stopped."""
        future = asyncio.run_coroutine_threadsafe(self.request_approval(message, timeout_s), self._loop)
        while True:
            try:
                return future.result(timeout=0.1)
            except TimeoutError:
                if self.cancelled.is_set():
                    future.cancel()
                    raise JobCancelled("the job was stopped") from None

    async def sleep(self, seconds: float) -> None:
        """Wait (cancellable); does not wait at all in SIMULATE."""
        if not self.simulate and seconds > 0:
            await asyncio.sleep(seconds)

    def raise_if_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled("the job was stopped")

    def resolve_path(self, path: str, *, must_exist: bool = True) -> Path:
        """The real path of `path` if it is inside a folder the user shared, else an error.
        Touches the disk: call it from a sync module (a worker thread). For telling a path
        only: read and write through `shared_files`, which checks what it opens."""
        return self._job.shared_folders.resolve_inside(path, must_exist=must_exist)

    @property
    def shared_files(self) -> Any:
        """engine.files.SharedFolders: `read_bytes(path, max_bytes)`, `write_bytes(path, data,
        append=)`, `list_directory(path)`, confined to the shared folders (never the engine's
        own) and safe against folders swapped for links. Blocking: sync modules only."""
        return self._job.shared_folders

    @property
    def datasets(self) -> Any:
        """The job owner's datasets (engine.datasets.OwnerDatasets): `await append(name, row)`,
        `await query(name, where)`, `await update(name, where, changes)`. From async modules."""
        return self._job.datasets

    async def run_sub_workflow(self, preset_name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Run one of the owner's presets as a child job; returns its final payload."""
        return await self._job.run_child(self, preset_name, payload)
