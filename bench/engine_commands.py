"""Commands the benchmark engine process answers on stdin (see bench/servers.py): facts only the
engine's own process can see, read without changing anything."""

from __future__ import annotations

import os
from typing import Any, Awaitable, Callable

Command = Callable[[list[str]], Awaitable[dict[str, Any]]]


def commands_for(engine: Any) -> dict[str, Command]:
    async def status(_args: list[str]) -> dict[str, Any]:
        import psutil
        connections = list(getattr(engine.server, "_connections", ()))
        return {"rss": psutil.Process(os.getpid()).memory_info().rss,
                "running_jobs": engine.runtime.running_job_count() if engine.runtime else 0,
                "clients": engine.server.client_count,
                "dropped": sum(getattr(c.outbox, "dropped", 0) for c in connections),
                "queued": sum(len(c.outbox) for c in connections),
                "connections": [{"id": c.id, "authenticated": bool(c.owners),
                                 "dropped": getattr(c.outbox, "dropped", 0), "queued": len(c.outbox)}
                                for c in connections]}

    return {"status": status}
