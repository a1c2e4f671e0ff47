"""Where a node's module runs: the executor seam.

The scheduler and the node runner never call a module themselves; they ask an `Executor`. The
local one runs an `async def` module as a plain coroutine in the branch's own task (no task, no
scheduler hop: a chain of such nodes runs back to back) and a plain `def` module in a daemon
thread (engine/runtime/threads.py). A later executor can run nodes on worker machines: what
crosses that boundary is the module id, the rendered config and the payload (JSON), and the
context's requests back to the job (log lines, popups, approvals), which all go through the
NodeContext's small NodeHost protocol (engine/components/api.py).
"""

from __future__ import annotations

from typing import Any, Awaitable, Protocol

from engine.components.api import NodeContext
from engine.runtime.loader import LoadedModule
from engine.runtime.threads import ModuleThreads


class Executor(Protocol):
    def call(self, module: LoadedModule, ctx: NodeContext, payload: dict[str, Any]) -> Awaitable[Any]:
        """The module's result (what its `run(ctx, payload)` returned), to be awaited."""


class LocalExecutor:
    """Async modules on this loop, sync modules in this process's module threads."""

    def __init__(self, threads: ModuleThreads) -> None:
        self.threads = threads

    def call(self, module: LoadedModule, ctx: NodeContext, payload: dict[str, Any]) -> Awaitable[Any]:
        if module.is_async:
            return module.run(ctx, payload)
        return self.threads.run(module.run, ctx, payload)
