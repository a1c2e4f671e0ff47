"""What every benchmark shares: arguments, statistics, the result table, signed frames, and the
servers (engine or bare echo) run in their own process on loopback.

Absolute times on shared machines are noise, so every script measures its baseline in the same
run, interleaves the two, repeats, and reports medians and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent


# -- arguments and statistics ------------------------------------------------------------------

def parse_args(description: str, argv: Sequence[str] | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="small counts, so CI can check that the script runs (numbers mean little)")
    if extra is not None:
        extra(p)
    return p.parse_args(argv)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms"


def fmt_mb(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.1f} MB"


def fmt_ratio(value: float) -> str:
    return f"{value:,.2f}×"


# -- the table ---------------------------------------------------------------------------------

@dataclass
class Table:
    """A small Markdown table: metric, engine, baseline, ratio, target, verdict."""

    title: str
    rows: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, metric: str, value: str, baseline: str = "", ratio: str = "",
            target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("met" if met else "MISSED")
        self.rows.append((metric, value, baseline, ratio, target, verdict))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def render(self) -> str:
        header = ("metric", "engine", "baseline", "ratio", "target", "verdict")
        lines = [f"### {self.title}", "",
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)

    def print(self) -> None:
        print(self.render(), flush=True)


# -- the machine -------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, str]:
    from importlib import metadata
    info = {"cpu": cpu_model(), "cores": str(os.cpu_count()),
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}
    for dist in ("websockets", "coincurve", "eth-account", "eth-hash", "psutil",
                 "PySide6-Essentials", "qasync"):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = "not installed"
    try:
        import psutil
        info["memory"] = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        pass
    return info


# -- wallets and signed frames -----------------------------------------------------------------

def new_key() -> str:
    from eth_account import Account
    return Account.create().key.hex()


def address_of(key: str) -> str:
    from eth_account import Account
    return Account.from_key(key).address


def fresh_auth_blocks(signer: Any, count: int, *, start_ms: int | None = None) -> list[dict[str, str]]:
    """`count` auth blocks signed like the GUI does, each with its own millisecond (so each is a
    fresh signature the engine has not cached), all within the freshness window."""
    now = int(time.time() * 1000) if start_ms is None else start_ms
    return [signer.auth_block(now - i) for i in range(count)]


def signed_frames(signer: Any, count: int, msg_type: str, prefix: str = "r",
                  **fields: Any) -> list[str]:
    """Frame texts with fresh signatures and request ids `<prefix><i>`."""
    return [json.dumps({"auth": auth, "payload": {"type": msg_type, "request_id": f"{prefix}{i}", **fields}})
            for i, auth in enumerate(fresh_auth_blocks(signer, count))]


# -- servers in their own process --------------------------------------------------------------

@dataclass
class ServerProcess:
    kind: str
    proc: subprocess.Popen[str]
    url: str
    info: dict[str, Any]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss(self) -> int:
        import psutil
        return psutil.Process(self.proc.pid).memory_info().rss

    def cpu_seconds(self) -> float:
        import psutil
        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def command(self, line: str, timeout: float = 120.0) -> dict[str, Any]:
        """Send one command line to the server process and read its one-line JSON answer."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(_readline(self.proc, timeout))


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    import selectors
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise TimeoutError(f"no answer from the server process within {timeout} s")
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the server process ended (exit code {proc.wait()})")
            if line.strip():
                return line


@contextlib.contextmanager
def server_process(kind: str, *args: str, env: dict[str, str] | None = None,
                   timeout: float = 60.0):
    """Start `python -m bench.servers <kind> ...`, wait for its READY line, stop it after."""
    cmd = [sys.executable, "-m", "bench.servers", kind, *args]
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=full_env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, bufsize=1)
    profiler: subprocess.Popen[Any] | None = None
    try:
        line = _readline(proc, timeout)
        if not line.startswith("READY "):
            raise RuntimeError(f"unexpected first line from {kind} server: {line!r}")
        info = json.loads(line[len("READY "):])
        profiler = _start_profiler(kind, proc.pid)
        yield ServerProcess(kind, proc, info["url"], info)
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(timeout=30)
        stop_process(proc)


def _start_profiler(kind: str, pid: int) -> subprocess.Popen[Any] | None:
    """With FLOWORK_BENCH_PROFILE=DIR (and py-spy installed), sample the server process into
    DIR/<kind>-<pid>.txt (collapsed stacks; summarize with `python -m bench.profile_summary`)."""
    folder = os.environ.get("FLOWORK_BENCH_PROFILE")
    if not folder:
        return None
    import shutil
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    Path(folder).mkdir(parents=True, exist_ok=True)
    out = Path(folder) / f"{kind}-{pid}.txt"
    extra = os.environ.get("FLOWORK_BENCH_PROFILE_ARGS", "").split()  # e.g. --gil, --idle
    return subprocess.Popen([spy, "record", "--nonblocking", "--rate", "500", "--format", "raw",
                             "--output", str(out), "--pid", str(pid), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(Exception):
        if proc.stdin:
            proc.stdin.close()
    try:
        proc.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def engine_args(owner: str, *, root: Path | None = None, extra: Sequence[str] = ()) -> list[str]:
    args = ["--owner", owner]
    if root is not None:
        args += ["--root", str(root)]
    return args + list(extra)


@contextlib.contextmanager
def temp_dir(prefix: str = "flowork-bench-"):
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)


# -- a plain client, the same code against the engine and the echo server ----------------------

class PlainClient:
    """Sends pre-made frame texts and waits for the reply carrying the same request id. Echo
    replies carry it inside `payload`, engine replies at the top level: both are accepted, so
    the client does the same work against both servers."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events = 0

    @classmethod
    async def connect(cls, url: str) -> "PlainClient":
        from websockets.asyncio.client import connect
        return cls(await connect(url, max_size=None, ping_interval=None))

    async def round_trip(self, frame_text: str, request_id: str, timeout: float = 30.0) -> float:
        """Seconds from send to the matching reply."""
        start = time.perf_counter()
        await self.ws.send(frame_text)
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            rid = reply.get("request_id")
            if rid is None and isinstance(reply.get("payload"), dict):
                rid = reply["payload"].get("request_id")
            if rid == request_id:
                if reply.get("error"):
                    raise RuntimeError(f"error reply: {reply.get('code')}: {reply.get('error')}")
                return time.perf_counter() - start
            self.events += 1

    async def close(self) -> None:
        await self.ws.close()


async def gather_bounded(coros: Iterable[Any], timeout: float) -> list[Any]:
    return await asyncio.wait_for(asyncio.gather(*coros), timeout)


@contextlib.asynccontextmanager
async def plain_clients(url: str, count: int) -> AsyncIterator[list[PlainClient]]:
    clients = await asyncio.gather(*(PlainClient.connect(url) for _ in range(count)))
    try:
        yield list(clients)
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def header(title: str, quick: bool) -> None:
    print(f"\n## {title}{' (quick mode: counts too small for the numbers to mean much)' if quick else ''}\n",
          flush=True)
