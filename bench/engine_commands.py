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
                                for c in connections],
                "released_jobs": _released(engine)}

    async def memory(_args: list[str]) -> dict[str, Any]:
        """The process's memory after a full garbage collection: resident (rss), its own pages
        only (uss: no shared libraries), and the Python heap that tracemalloc sees when the
        `trace` command started it (else null)."""
        import gc
        import psutil
        import tracemalloc
        gc.collect()
        full = psutil.Process(os.getpid()).memory_full_info()
        traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
        return {"rss": full.rss, "uss": full.uss, "traced": traced, "released_jobs": _released(engine)}

    async def trace(_args: list[str]) -> dict[str, Any]:
        """Start tracemalloc: the Python heap allocated from now on is counted by `memory`."""
        import gc
        import tracemalloc
        gc.collect()
        tracemalloc.start(int(_args[0]) if _args else 1)  # frames kept per allocation
        return {"tracing": True}

    async def top(args: list[str]) -> dict[str, Any]:
        """Where the traced Python heap is (tracemalloc on): the largest `N` source lines."""
        import gc
        import tracemalloc
        if not tracemalloc.is_tracing():
            return {"top": []}
        gc.collect()
        deep = tracemalloc.get_traceback_limit() > 1
        snapshot = tracemalloc.take_snapshot()
        stats = snapshot.statistics("traceback" if deep else "lineno")[:int(args[0]) if args else 12]
        return {"top": [{"where": _where(s.traceback), "bytes": s.size, "count": s.count} for s in stats]}

    return {"status": status, "memory": memory, "trace": trace, "top": top}


def _released(engine: Any) -> int | None:
    """Jobs waiting in the database only (durable jobs); None for a runtime without them."""
    runtime = engine.runtime
    count = getattr(runtime, "released_job_count", None)
    return count() if count is not None else None


def _short(path: str) -> str:
    """The last three parts of a source path (engine/runtime/job.py)."""
    return "/".join(path.replace("\\", "/").rsplit("/", 3)[-3:])


def _where(traceback: Any) -> str:
    """The allocating line, and (with deeper tracebacks) the engine's line that led to it."""
    frames = list(traceback)  # most recent call last
    inner = frames[-1]
    text = f"{_short(inner.filename)}:{inner.lineno}"
    callers = [f for f in reversed(frames[:-1]) if "/engine/" in f.filename.replace("\\", "/")]
    if callers and "/engine/" not in inner.filename.replace("\\", "/"):
        text += f" (from {_short(callers[0].filename)}:{callers[0].lineno})"
    return text
