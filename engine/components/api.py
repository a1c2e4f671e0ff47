"""The module API: what a component's `module.py` may import and what its `run` receives.

A module is a `module.py` with `run(ctx, payload)`, either `async def` (runs on the event loop:
it must not block) or plain `def` (runs in a worker thread, so it may block). It returns
`{"payload": ..., "output_name": PORT}`, or just the new payload, or None to pass the payload on
unchanged. Raising an exception leaves through the node's `error` port if one is connected,
else fails the job with the message; raise `ModuleError` for a failure meant for people (no
traceback in the log).

`payload` is `{"data": {...}, "history": [...]}`. A module may change `payload["data"]` freely:
wherever the workflow branches, every branch gets its own copy. The `history` entries are the
engine's record of the nodes that ran; read them, do not change them in place (branches share
them).

`ctx` (NodeContext) gives the node's rendered config, the job's mode, a logger, popup and
approval helpers, cancellation and sub-workflows; never engine internals. Its helpers are safe
to call from either kind of module: the sync ones hop to the loop.

This module imports nothing of the runtime: the runtime hands each context a `NodeHost`, the
few things a node may ask of its job.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Protocol

from engine.runtime.templating import MISSING, get_path, lookup  # noqa: F401 - part of the API

__all__ = ["JobCancelled", "MISSING", "ModuleError", "NodeContext", "NodeHost", "get_path", "lookup"]

LEVELS = ("DEBUG", "INFO", "SUCCESS", "WARN", "WARNING", "ERROR", "CRITICAL")
_CANCEL_LOCK = threading.Lock()


class ModuleError(Exception):
    """A module's failure with a message meant for people (no traceback in the log)."""


class JobCancelled(Exception):
    """Raised by `ctx.raise_if_cancelled()` in a sync module once the job is stopped."""


class NodeHost(Protocol):
    """What a node may ask of the job it runs in (the runtime implements it)."""

    loop: asyncio.AbstractEventLoop
    job_id: str   # the engine's key for the job
    wire_id: str  # the id the job's owner knows it by
    mode: str

    def node_log(self, node_id: str, node_name: str, message: str, level: str = "INFO") -> None: ...

    def popup(self, node_id: str, title: str, content: Any) -> None: ...

    async def request_approval(self, node_id: str, node_name: str, module_id: str, message: str,
                               timeout_s: float | None, *, token: Any = None) -> Any: ...

    async def durable_sleep(self, token: Any, seconds: float) -> None: ...

    def resolve_path(self, path: str, *, must_exist: bool = True) -> Path: ...

    @property
    def datasets(self) -> Any: ...

    @property
    def shared_folders(self) -> Any: ...

    async def run_child(self, ctx: "NodeContext", preset_name: str,
                        payload: dict[str, Any]) -> dict[str, Any]: ...


class NodeContext:
    """One node run's view of its job. Cheap to make: one per node run."""

    __slots__ = ("_host", "_loop", "job_id", "node_id", "node_name", "module_id", "mode",
                 "config", "inputs", "_cancelled", "_cancel_requested", "token")

    def __init__(self, host: NodeHost, node_id: str, node_name: str, module_id: str,
                 config: dict[str, Any], inputs: list[dict[str, Any]] | None = None,
                 token: Any = None) -> None:
        self._host = host
        self._loop = host.loop
        self.job_id = host.wire_id  # as the owner knows it (frames, logs, the GUI)
        self.node_id = node_id
        self.node_name = node_name
        self.module_id = module_id
        self.mode = host.mode
        self.config = config
        self.inputs = inputs or []  # every input payload, for modules that wait for all inputs
        self._cancelled: threading.Event | None = None
        self._cancel_requested = False
        # The runtime's branch position (engine/runtime/checkpoint.py): where a durable wait
        # (an approval, a delay, a sub-workflow) keeps what it waits for. Not for modules.
        self.token = token

    @property
    def simulate(self) -> bool:
        return self.mode == "SIMULATE"

    @property
    def cancelled(self) -> threading.Event:
        """Set once the job is stopped or the node timed out (a sync module polls or waits on
        it). Made on first use: most nodes never look."""
        event = self._cancelled
        if event is None:
            with _CANCEL_LOCK:
                event = self._cancelled
                if event is None:
                    event = threading.Event()
                    if self._cancel_requested:
                        event.set()
                    self._cancelled = event
        return event

    def cancel(self) -> None:
        """The runtime's side: ask this node run to stop."""
        with _CANCEL_LOCK:
            self._cancel_requested = True
            event = self._cancelled
        if event is not None:
            event.set()

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
        """One line for the GUI's log panel (and the engine log at DEBUG; secrets masked)."""
        level = str(level).upper()
        if level not in LEVELS:
            level = "INFO"
        self._on_loop(self._host.node_log, self.node_id, self.node_name, str(message), level)

    def popup(self, title: str, content: Any) -> None:
        """SHOW_DEBUG_POPUP on every connection of the job's owner."""
        self._on_loop(self._host.popup, self.node_id, str(title), content)

    async def request_approval(self, message: str, timeout_s: float | None = None) -> Any:
        """Ask the owner; returns an ApprovalResolution (decision APPROVED or REJECTED)."""
        return await self._host.request_approval(self.node_id, self.node_name, self.module_id,
                                                 message, timeout_s, token=self.token)

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
        """Wait (cancellable); does not wait at all in SIMULATE. The wait is durable: its end
        is a wall-clock time kept in the job's checkpoint, so after a restart (or while the
        job is released from memory) it still ends when it was meant to."""
        if self.simulate or seconds <= 0:
            return
        durable = getattr(self._host, "durable_sleep", None)
        if durable is None:
            await asyncio.sleep(seconds)
        else:
            await durable(self.token, seconds)

    @property
    def run_key(self) -> str | None:
        """A key for this node run that stays the same when the run is repeated after a
        crash (durable jobs re-run an idempotent node that was cut short): key your side
        effects in the engine's storage by it so that the repeat finds them instead of doing
        them twice (dataset_append does). None outside a job's branch."""
        if self.token is None:
            return None
        return self.token.run_key(getattr(self._host, "top", self._host).job_id, self._host.job_id)

    def raise_if_cancelled(self) -> None:
        if self._cancel_requested:
            raise JobCancelled("the job was stopped")

    def resolve_path(self, path: str, *, must_exist: bool = True) -> Path:
        """The real path of `path` if it is inside a folder the user shared, else an error.
        Touches the disk: call it from a sync module (a worker thread). For telling a path
        only: read and write through `shared_files`, which checks what it opens."""
        return self._host.resolve_path(path, must_exist=must_exist)

    @property
    def shared_files(self) -> Any:
        """engine.files.SharedFolders: `read_bytes(path, max_bytes)`, `write_bytes(path, data,
        append=)`, `list_directory(path)`, confined to the shared folders (never the engine's
        own) and safe against folders swapped for links. Blocking: sync modules only."""
        return self._host.shared_folders

    @property
    def datasets(self) -> Any:
        """The job owner's datasets (engine.datasets.OwnerDatasets): `await append(name, row)`,
        `await query(name, where)`, `await update(name, where, changes)`. From async modules."""
        return self._host.datasets

    async def run_sub_workflow(self, preset_name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Run one of the owner's presets as a child job; returns its final payload."""
        return await self._host.run_child(self, preset_name, payload)
