"""Workflows as the web GUI sends them, a driver that runs jobs over a real socket and reads
every event, and the built-in modules loaded for direct calls (the baselines)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from bench.common import fresh_auth_blocks
from engine.runtime.state import FINAL_TEXTS

BUILTIN_MODULES = Path(__file__).resolve().parent.parent / "engine" / "components" / "builtin" / "modules"
TERMINAL = FINAL_TEXTS


def node(node_id: str, module_id: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "name": node_id, "x": 100, "y": 100, "module_id": module_id,
            "config_values": config, "data": {"color": "#888"}}


def edge(source: str, target: str) -> dict[str, Any]:
    return {"id": f"{source}-{target}", "source": source, "target": target,
            "source_port_name": None, "target_port_name": "input", "type": "default",
            "animated": False}


def workflow(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    return {"nodes": nodes, "connections": edges,
            "global_loop_config": {"isEnabled": False, "iterations": 1, "isDelayEnabled": False,
                                   "delayType": "static", "delayStatic": 0, "delayRandomMin": 0,
                                   "delayRandomMax": 0}}


def chain(specs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Nodes n0 -> n1 -> ... with the given (module_id, config) each."""
    nodes = [node(f"n{i}", module_id, **config) for i, (module_id, config) in enumerate(specs)]
    edges = [edge(f"n{i}", f"n{i + 1}") for i in range(len(specs) - 1)]
    return workflow(nodes, edges)


def execute_frames(signer: Any, wf: dict[str, Any], count: int, prefix: str | None = None
                   ) -> list[tuple[str, str]]:
    """(job_id, frame text) pairs of execute_workflow, signed like the GUI (fresh signatures)."""
    prefix = f"{prefix or 'job'}-{uuid.uuid4().hex[:6]}"  # job ids are never reused
    wf_text = json.dumps(wf)
    out = []
    for i, auth in enumerate(fresh_auth_blocks(signer, count)):
        job_id = f"{prefix}-{i}"
        out.append((job_id, '{"auth": %s, "payload": {"type": "execute_workflow", "request_id": "%s", '
                    '"job_id": "%s", "workflow_data": %s, "initial_payload": {}, '
                    '"preset_name": "bench", "mode": "EXECUTE", "start_node_id": null}}'
                    % (json.dumps(auth), job_id, job_id, wf_text)))
    return out


@dataclass
class JobDriver:
    """One connection that starts jobs and reads every frame the engine sends it."""

    ws: Any
    frames: int = 0
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _waiters: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _reader: asyncio.Task[None] | None = None
    on_terminal: Callable[[str], None] | None = None
    # job id -> approval_id of each MANUAL_APPROVAL_REQUESTED heard (bench_waiting_jobs)
    approvals: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def connect(cls, url: str, signer: Any = None) -> "JobDriver":
        """With `signer`, the connection signs in with a small frame first, as the GUI does:
        until a connection has sent a valid signed frame the engine takes frames of at most
        64 KiB only (a 1,000-node workflow is about 200 KB)."""
        from websockets.asyncio.client import connect
        driver = cls(await connect(url, max_size=None, ping_interval=None))
        if signer is not None:
            auth = fresh_auth_blocks(signer, 1)[0]
            await driver.ws.send(json.dumps({"auth": auth, "payload": {"type": "request_settings",
                                                                       "request_id": "sign-in"}}))
            while '"sign-in"' not in await driver.ws.recv():
                pass
        driver._reader = asyncio.create_task(driver._read())
        return driver

    async def _read(self) -> None:
        try:
            await self._read_frames()
        finally:  # the connection is gone: whoever waits hears it instead of waiting forever
            for waiter in self._waiters.values():
                if not waiter.done():
                    waiter.set_exception(ConnectionError("the engine closed the connection"))
            self._waiters.clear()

    async def _read_frames(self) -> None:
        async for text in self.ws:
            self.frames += 1
            if '"workflow_status_update"' in text:
                frame = json.loads(text)
                data = frame.get("status_data") or {}
                if data.get("status") in TERMINAL:
                    job_id = frame["job_id"]
                    self.status[job_id] = data
                    waiter = self._waiters.pop(job_id, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(data)
                    if self.on_terminal is not None:
                        self.on_terminal(job_id)
            elif '"MANUAL_APPROVAL_REQUESTED"' in text:
                frame = json.loads(text)
                if frame.get("type") == "MANUAL_APPROVAL_REQUESTED":
                    self.approvals[frame["job_id"]] = frame["approval_id"]
            elif '"error"' in text:
                frame = json.loads(text)
                if frame.get("error"):
                    self.errors.append(f"{frame.get('code')}: {frame.get('error')}")
                    rid = frame.get("request_id")
                    waiter = self._waiters.pop(str(rid), None) if rid else None
                    if waiter is not None and not waiter.done():
                        waiter.set_exception(RuntimeError(frame["error"]))

    def terminal(self, job_id: str) -> asyncio.Future[dict[str, Any]]:
        future = asyncio.get_running_loop().create_future()
        if job_id in self.status:
            future.set_result(self.status[job_id])
        else:
            self._waiters[job_id] = future
        return future

    async def run(self, jobs: list[tuple[str, str]], *, window: int | None = None,
                  timeout: float = 600.0) -> float:
        """Start the jobs (at most `window` running at once) and wait for all to end; seconds."""
        gate = asyncio.Semaphore(window or len(jobs))
        futures = []
        start = time.perf_counter()

        async def send_all() -> None:
            for job_id, text in jobs:
                await gate.acquire()
                future = self.terminal(job_id)
                future.add_done_callback(lambda _f: gate.release())
                futures.append(future)
                await self.ws.send(text)

        async def finish() -> None:
            await send_all()
            await asyncio.gather(*futures)

        await asyncio.wait_for(finish(), timeout)
        return time.perf_counter() - start

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass


def load_builtin(module_id: str) -> ModuleType:
    """A built-in module's code, imported directly (as the baselines call it)."""
    path = BUILTIN_MODULES / module_id / "module.py"
    spec = importlib.util.spec_from_file_location(f"bench_direct_{module_id}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BareContext:
    """The least a module needs to run: its config, a log that keeps lines, never simulate."""

    simulate = False
    mode = "EXECUTE"

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.lines: list[str] = []

    def log(self, message: Any, level: str = "INFO") -> None:
        self.lines.append(str(message))

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)


def new_payload() -> dict[str, Any]:
    return {"data": {}, "history": []}
