"""What the durable-job tests share: workflows that wait, signing in after a restart, waiting
for a job's recorded status, and test components installed in the data folder."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest

from engine.client import EngineClient
from tests.runtime_support import TERMINAL, edge, node, workflow

POSIX_ONLY = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and SIGTERM are POSIX")


def query(db_path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from the engine's database, opened read-only (the engine may be running)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def approval_flow(timeout_s: float = 600) -> dict[str, Any]:
    """before -> ask -> after (APPROVED) / rejected (REJECTED)."""
    return workflow([node("t", "manual_trigger"), node("s", "set_data", data={"before": 1}),
                     node("ask", "manual_approval", "Ask", message="Go on?", timeout_s=timeout_s),
                     node("yes", "set_data", data={"after": 2}),
                     node("no", "set_data", data={"rejected": True})],
                    [edge("t", "s", edge_id="c1"), edge("s", "ask", edge_id="c2"),
                     edge("ask", "yes", "APPROVED", edge_id="c3"), edge("ask", "no", "REJECTED", edge_id="c4")])


def delay_flow(seconds: float) -> dict[str, Any]:
    """before -> delay -> after."""
    return workflow([node("t", "manual_trigger"), node("s", "set_data", data={"before": 1}),
                     node("d", "delay", seconds=seconds), node("a", "set_data", data={"after": 2})],
                    [edge("t", "s", edge_id="c1"), edge("s", "d", edge_id="c2"), edge("d", "a", edge_id="c3")])


async def sign_in(client: EngineClient) -> None:
    """The first signed frame authenticates the connection (then the engine re-sends pending
    approvals and running jobs to it)."""
    await client.request("request_settings")


async def wait_status(client: EngineClient, job_id: str, statuses: tuple[str, ...] = TERMINAL, *,
                      timeout: float = 20.0) -> dict[str, Any]:
    """Poll request_job_status until the job is in one of `statuses`; its status_data.
    Polling, not events: a restored job may have moved before this connection existed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: dict[str, Any] = {}
    while loop.time() < deadline:
        reply = await client.request("request_job_status", job_id=job_id, check=False)
        last = reply.get("status_data") or reply
        if last.get("status") in statuses:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {statuses}; last answer: {last}")


async def wait_for_history(client: EngineClient, job_id: str, connection_id: str) -> list[dict[str, Any]]:
    """History is written in batches; wait (bounded) until this crossing is on disk."""
    for _ in range(500):
        reply = await client.request("request_connection_history", job_id=job_id,
                                     connection_id=connection_id, check=False)
        if reply.get("history"):
            return reply["history"]
        await asyncio.sleep(0.02)
    raise AssertionError(f"the crossing {connection_id} of {job_id} was never recorded")


def running(node_id: str, job_id: str | None = None):
    return lambda e: (e.get("node_id") == node_id and e.get("status") == "RUNNING"
                      and (job_id is None or e.get("job_id") == job_id))


# Test components: real code the real engine loads from the data folder. `gate` waits (in a
# worker thread) until a file exists and appends one line per run to another file, so a test
# can hold a node mid-run for the kill and count how often it ran.
GATE = '''
import os

def run(ctx, payload):
    with open(ctx.config["runs"], "a") as runs:
        runs.write(ctx.job_id + "\\n")
    while not os.path.exists(ctx.config["file"]):
        if ctx.cancelled.wait(0.02):
            return payload
    payload["data"]["gate"] = payload["data"].get("gate", 0) + 1
    return payload
'''


def install_gate(data_dir: Path, component_id: str, *, idempotent: bool) -> None:
    folder = data_dir / "components" / "modules" / component_id
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"name": component_id, "properties": [], "output_ports": [{"name": "output"}]}
    if idempotent:
        manifest["idempotent"] = True
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "module.py").write_text(GATE)


def run_count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


async def expect_event(client: EngineClient, msg_type: str | None, *, where=None, timeout: float = 15.0,
                       what: str = "") -> dict[str, Any]:
    """client.next_event, failing with a sentence instead of a bare TimeoutError."""
    try:
        return await client.next_event(msg_type, where=where, timeout=timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {msg_type} {what} within {timeout:g} s") from None


async def assert_like_unknown(client: EngineClient, msg_type: str, job_id: str) -> None:
    """`job_id` (another owner's) gets exactly the answer an id nobody ever used gets."""
    unknown = "never-used-" + job_id[-8:]
    theirs = await client.request(msg_type, job_id=job_id, check=False)
    nobodys = await client.request(msg_type, job_id=unknown, check=False)
    assert theirs.get("code") == nobodys.get("code") == "not_found", (theirs, nobodys)

    def shape(reply: dict[str, Any], ident: str) -> dict[str, Any]:
        return {k: (v.replace(ident, "ID") if isinstance(v, str) else v)
                for k, v in reply.items() if k != "request_id"}

    assert shape(theirs, job_id) == shape(nobodys, unknown)


async def until(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    """Poll a condition outside the engine (a file a test component writes, a test server)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class SlowServer:
    """A real HTTP server on 127.0.0.1 that holds every request until `release` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                outer.release.wait(60)
                body = json.dumps({"served": len(outer.paths)}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the engine that asked was killed meanwhile
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

