"""Node-RED as a benchmark baseline: installed on demand, started headless, stopped by its PID.

`NODE_RED_VERSION` of the `node-red` npm package is installed with the machine's `npm` into
`bench/.node-red/` (git-ignored) the first time a benchmark needs it. `NodeRed(flows)` writes a
user folder with `settings.js` (listening on 127.0.0.1 only, the editor and admin API off:
`httpAdminRoot: false`, no credentials, no projects, console logging at warn; a function node
reads a nanosecond clock with `global.get('hrtime')()`) and the given flows,
starts `node red.js --userDir DIR` as its own process, waits until its HTTP endpoints answer,
and stops it by its own PID (SIGTERM, then SIGKILL) on exit. Reusable by any benchmark:

    with NodeRed([http_in("/x", "a"), function("a", "return msg;", "b"), http_response("b")]) as red:
        red.url("/x"), red.pid, red.cpu_seconds()

`available()` says whether Node.js and npm are there; in CI (FLOWORK_REQUIRE_SYSTEM_TESTS=1)
scripts/install-system-deps.sh installs them, so a missing one is an error there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

NODE_RED_VERSION = "4"            # the npm version range installed (4.x runs on Node.js 18+)
INSTALL_DIR = Path(__file__).resolve().parent / ".node-red"
RED_JS = INSTALL_DIR / "node_modules" / "node-red" / "red.js"


class NodeRedUnavailable(RuntimeError):
    """Node.js or npm is missing, or the install failed; the text says which."""


def available() -> str | None:
    """None when Node-RED can run here, else why not."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install-system-deps.sh installs it)"
    return None


def required() -> bool:
    return os.environ.get("FLOWORK_REQUIRE_SYSTEM_TESTS") == "1"


def ensure_installed() -> Path:
    """Install Node-RED into bench/.node-red once; returns red.js."""
    problem = available()
    if problem:
        raise NodeRedUnavailable(problem)
    if RED_JS.is_file():
        return RED_JS
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--omit=dev",
                           "--prefix", str(INSTALL_DIR), f"node-red@{NODE_RED_VERSION}"],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not RED_JS.is_file():
        raise NodeRedUnavailable(f"npm could not install node-red@{NODE_RED_VERSION}: "
                                 f"{(proc.stderr or proc.stdout)[-800:]}")
    return RED_JS


def version() -> str:
    try:
        return json.loads((RED_JS.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "unknown"


def node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# -- flows -------------------------------------------------------------------------------------

TAB = "bench-tab"


def _node(kind: str, node_id: str, wires: list[list[str]] | None, **fields: Any) -> dict[str, Any]:
    out = {"id": node_id, "type": kind, "z": TAB, "name": node_id, "x": 100, "y": 100, **fields}
    if wires is not None:
        out["wires"] = wires
    return out


def tab() -> dict[str, Any]:
    return {"id": TAB, "type": "tab", "label": "bench"}


def http_in(path: str, then: str, node_id: str | None = None, method: str = "post") -> dict[str, Any]:
    return _node("http in", node_id or f"in-{uuid.uuid4().hex[:8]}", [[then]], url=path,
                 method=method, upload=False, swaggerDoc="")


def http_response(node_id: str) -> dict[str, Any]:
    return _node("http response", node_id, None, statusCode="", headers={})


def function(node_id: str, body: str, *then: str, outputs: int = 1) -> dict[str, Any]:
    """A function node; `then` lists the nodes wired to its (first) output."""
    return _node("function", node_id, [list(then)] if outputs == 1 else [[t] for t in then],
                 func=body, outputs=outputs, timeout=0, noerr=0, initialize="", finalize="", libs=[])


def change_set(node_id: str, prop: str, value: str, value_type: str, *then: str) -> dict[str, Any]:
    """A change node setting msg.<prop> to a value (value_type: num, str, json...)."""
    return _node("change", node_id, [list(then)], rules=[{"t": "set", "p": prop, "pt": "msg",
                                                          "to": value, "tot": value_type}],
                 action="", property="", to="", reg=False, **{"from": ""})


# -- the process -------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NodeRed:
    """One headless Node-RED with the given flows (a `tab()` is added if there is none)."""

    def __init__(self, flows: list[dict[str, Any]], *, ready_path: str | None = None,
                 timeout: float = 90.0) -> None:
        self.flows = flows if any(n.get("type") == "tab" for n in flows) else [tab(), *flows]
        self.ready_path = ready_path
        self.timeout = timeout
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def cpu_seconds(self) -> float:
        import psutil
        times = psutil.Process(self.pid).cpu_times()
        return times.user + times.system

    def rss(self) -> int:
        import psutil
        return psutil.Process(self.pid).memory_info().rss

    def __enter__(self) -> "NodeRed":
        red_js = ensure_installed()
        self._dir = tempfile.TemporaryDirectory(prefix="flowork-bench-nodered-")
        user_dir = Path(self._dir.name)
        self.port = _free_port()
        (user_dir / "flows.json").write_text(json.dumps(self.flows))
        (user_dir / "settings.js").write_text(
            "module.exports = " + json.dumps({
                "uiHost": "127.0.0.1", "uiPort": self.port, "httpAdminRoot": False,
                "flowFile": "flows.json", "flowFilePretty": False, "credentialSecret": False,
                "userDir": str(user_dir), "disableEditor": True,
                "logging": {"console": {"level": "warn", "metrics": False, "audit": False}},
                "editorTheme": {"projects": {"enabled": False}},
                "functionExternalModules": False, "telemetry": {"enabled": False},
            })[:-1] + ", functionGlobalContext: {hrtime: () => process.hrtime.bigint()}};\n")
        self.proc = subprocess.Popen(["node", str(red_js), "--userDir", str(user_dir),
                                      "--settings", str(user_dir / "settings.js")],
                                     cwd=str(user_dir), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        path = self.ready_path or "/"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                output = self.proc.stdout.read() if self.proc.stdout else ""
                raise NodeRedUnavailable(f"Node-RED exited with code {self.proc.returncode}: {output[-1500:]}")
            try:
                request = urllib.request.Request(self.url(path), data=b"{}" if self.ready_path else None,
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=2) as reply:
                    reply.read()
                return
            except urllib.error.HTTPError as exc:
                if not self.ready_path and exc.code == 404:  # listening, no route at "/"
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise NodeRedUnavailable(f"Node-RED did not answer on port {self.port} within {self.timeout:g} s")

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # by its own PID, never by name
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# -- a keep-alive HTTP client cheap enough not to be the bottleneck ----------------------------

class KeepAliveClient:
    """One HTTP/1.1 keep-alive connection sending pre-built POSTs and reading the replies
    (Content-Length or chunked), on asyncio streams."""

    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> "KeepAliveClient":
        import asyncio
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    @staticmethod
    def request(port: int, path: str, body: bytes) -> bytes:
        return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n").encode() + body

    async def post(self, raw: bytes) -> bytes:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = None
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self.reader.readexactly(length or 0)
        if status >= 400:
            raise RuntimeError(f"Node-RED answered {status}: {body[:300]!r}")
        return body

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass
