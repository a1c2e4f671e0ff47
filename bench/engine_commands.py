"""Commands the benchmark engine process answers on stdin (see bench/servers.py), for the
measurements that must run inside the engine's own process."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

Command = Callable[[list[str]], Awaitable[dict[str, Any]]]


def commands_for(engine: Any) -> dict[str, Command]:
    return {}
