"""What the hardening tests share: log capture, raw signed frames, an engine on its own thread
(for hypothesis, whose test bodies are synchronous) and a real engine subprocess (for SIGKILL)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Coroutine, Iterator, TypeVar

from eth_account import Account
from eth_account.messages import encode_defunct

from engine.app import Engine
from engine.auth.frame_auth import AUTH_MESSAGE_PREFIX
from engine.config import EngineConfig

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_LOG = "engine.jobs"


# -- logs --------------------------------------------------------------------------------------

class LogCatcher(logging.Handler):
    """Keeps every record (thread-safe), formatted with its traceback, for later assertions."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        with self.lock:  # type: ignore[union-attr]
            self.records.append(record)
            self.lines.append(text)

    def problems(self, since: int = 0) -> list[str]:
        """Records (from index `since` on) that mean something went wrong inside the engine:
        tracebacks, and errors other than a workflow's own log lines (which the runtime mirrors
        into the engine log under `engine.jobs` at the line's level, e.g. a node that failed)."""
        with self.lock:  # type: ignore[union-attr]
            return [line for record, line in zip(self.records[since:], self.lines[since:])
                    if record.exc_info or (record.levelno >= logging.ERROR and record.name != WORKFLOW_LOG)]

    def mark(self) -> int:
        with self.lock:  # type: ignore[union-attr]
            return len(self.records)

    def text(self) -> str:
        with self.lock:  # type: ignore[union-attr]
            return "\n".join(self.lines)


@contextlib.contextmanager
def catch_logs(level: int = logging.INFO, *, quiet: tuple[str, ...] = ("websockets",)) -> Iterator[LogCatcher]:
    """Attach a LogCatcher to the root logger at `level` (like the engine's own log setup,
    which keeps the `websockets` library at WARNING)."""
    catcher = LogCatcher()
    root = logging.getLogger()
    old_level = root.level
    quieted = {name: logging.getLogger(name).level for name in quiet}
    root.addHandler(catcher)
    root.setLevel(level)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield catcher
    finally:
        root.removeHandler(catcher)
        root.setLevel(old_level)
        for name, lvl in quieted.items():
            logging.getLogger(name).setLevel(lvl)


# -- frames ------------------------------------------------------------------------------------

def sign_text(key: str, text: str) -> str:
    return "0x" + Account.sign_message(encode_defunct(text=text), private_key=key).signature.hex().removeprefix("0x")


def auth_block(key: str, *, timestamp_ms: int | None = None, address: str | None = None,
               message: str | None = None) -> dict[str, str]:
    """The GUI's auth block, with any part overridable to forge a hostile one."""
    stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    text = message if message is not None else f"{AUTH_MESSAGE_PREFIX}{stamp}"
    return {"address": address or Account.from_key(key).address, "message": text,
            "signature": sign_text(key, text)}


def frame_text(key: str, payload: dict[str, Any], **auth: Any) -> str:
    return json.dumps({"auth": auth_block(key, **auth), "payload": payload})


# -- an engine on its own event loop thread ----------------------------------------------------

class ThreadedEngine:
    """A real Engine served from a background thread's event loop. Synchronous test code
    (hypothesis) drives it with `call(coroutine)`; clients live on the same loop."""

    def __init__(self, config: EngineConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="engine-loop", daemon=True)
        self._thread.start()
        self.engine = Engine(config)
        self.call(self.engine.start())

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        try:
            self.call(self.engine.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


# -- a real engine process ---------------------------------------------------------------------

class EngineProcess:
    """`python -m engine` in its own process, as a user runs it headless. The secrets key goes to
    the data folder's key file (the subprocess has no usable keyring), so it survives a kill."""

    def __init__(self, data_dir: Path, log_dir: Path, owners: list[str], *,
                 engine_id: str = "proc-engine", extra_args: tuple[str, ...] = ()) -> None:
        self.data_dir, self.log_dir = data_dir, log_dir
        self.args = [sys.executable, "-m", "engine", "--host", "127.0.0.1", "--port", "0",
                     "--engine-id", engine_id, "--data-dir", str(data_dir),
                     "--log-dir", str(log_dir), *[a for o in owners for a in ("--owner", o)],
                     *extra_args]
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self.stderr_path = log_dir / "stderr.txt"

    async def start(self, timeout: float = 30.0) -> str:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
                   PYTHONUNBUFFERED="1")
        stderr = open(self.stderr_path, "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.args, stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env, cwd=REPO_ROOT)
        finally:
            stderr.close()
        assert self.proc.stdout is not None

        async def read_url() -> str:
            while True:
                line = await self.proc.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    raise RuntimeError("the engine exited before it was ready:\n" + self.stderr())
                text = line.decode().strip()
                if text.startswith("Web GUI URL: "):
                    return text.removeprefix("Web GUI URL: ")
        self.url = await asyncio.wait_for(read_url(), timeout)
        return self.url

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_text(self) -> str:
        """Everything the engine logged: its rotating log files and its stderr."""
        parts = [p.read_text(errors="replace") for p in sorted(self.log_dir.glob("flowork-engine.log*"))]
        return "\n".join(parts + [self.stderr()])

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> int:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 30)
        except asyncio.TimeoutError:
            self.proc.kill()
            return await self.proc.wait()


def integrity_check(db_path: Path) -> str:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def db_rows(db_path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return conn.execute(sql, args).fetchall()


async def gather_limited(coros: list[Awaitable[T]], limit: int) -> list[T]:
    semaphore = asyncio.Semaphore(limit)

    async def run(coro: Awaitable[T]) -> T:
        async with semaphore:
            return await coro
    return await asyncio.gather(*(run(c) for c in coros))
