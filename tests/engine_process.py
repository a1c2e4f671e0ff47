"""`python -m engine` as a real child process, for the tests that kill or stop it with real
signals (SIGKILL: no cleanup at all; SIGTERM: the graceful stop) and start it again on the same
data folder. Shared by tests/test_runtime_restart.py and tests/durable/."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import pytest

from tests.conftest import REPO_ROOT, Wallet

URL_RE = re.compile(r"ws://127\.0\.0\.1:\d+/\?engineId=[A-Za-z0-9_.:-]+")
DB_FILE = "engine.sqlite3"  # engine/app.py DB_FILE: the tests read the database after a stop


class EngineProcess:
    """`python -m engine` on an ephemeral port; the URL is read from its stdout.

    `args` are extra command-line options (e.g. `["--suspend-after-s", "1"]`), `env` extra
    environment variables (e.g. `{"FLOWORK_SUSPEND_AFTER_S": "1"}`); every other FLOWORK_*
    variable of the test run is left out, so only what a test says reaches the engine. The
    engine's stderr goes to `<log_dir>/stderr-<n>.txt`, to read when a test fails."""

    def __init__(self, data_dir: Path, log_dir: Path, owners: Wallet | Sequence[Wallet], *,
                 args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 engine_id: str = "restart-test") -> None:
        self.data_dir, self.log_dir = data_dir, log_dir
        self.owners = [owners] if isinstance(owners, Wallet) else list(owners)
        self.args, self.extra_env, self.engine_id = list(args), dict(env or {}), engine_id
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = _next_free(log_dir, "stderr-{}.txt")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWORK_")}
        environment.update(self.extra_env)
        cmd = [sys.executable, "-m", "engine", "--data-dir", str(data_dir), "--log-dir", str(log_dir),
               "--port", "0", "--webhook-port", "0", "--engine-id", engine_id,
               *[part for wallet in self.owners for part in ("--owner", wallet.address)], *self.args]
        with open(self.stderr_path, "w") as stderr:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                         env=environment, cwd=REPO_ROOT)
        self.url: str | None = None
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                match = URL_RE.search(line)
                if match and self.url is None:
                    self.url = match.group(0)
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(60)
        if self.url is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise AssertionError(f"the engine process printed no URL; its stderr:\n{self.stderr()}")

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILE

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def restart(self) -> "EngineProcess":
        """Another engine process on the same data folder, with the same options (this one
        must have ended)."""
        assert self.proc.poll() is not None, "stop or kill the engine before starting it again"
        return EngineProcess(self.data_dir, self.log_dir, self.owners, args=self.args,
                             env=self.extra_env, engine_id=self.engine_id)

    def kill(self) -> None:
        """SIGKILL: the process ends at once, with no cleanup at all (a crash, a power cut)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM (a logout, an upgrade, `systemctl stop`): the graceful stop; its exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def _next_free(folder: Path, pattern: str) -> Path:
    n = 1
    while (folder / pattern.format(n)).exists():
        n += 1
    return folder / pattern.format(n)


@pytest.fixture
def processes() -> Iterator[list[EngineProcess]]:
    """Append every EngineProcess a test starts: the ones still alive are killed after it."""
    started: list[EngineProcess] = []
    yield started
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=30)
