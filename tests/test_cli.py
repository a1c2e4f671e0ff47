"""`flowork-engine` / `python -m engine` as real processes: the URL when ready, the engine ID kept,
option layers, one-sentence failures without tracebacks, clean shutdown on SIGINT and SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

from engine.client import EngineClient
from tests.conftest import REPO_ROOT, Wallet, require_tool

URL_RE = re.compile(r"ws://127\.0\.0\.1:(\d+)/\?engineId=([A-Za-z0-9_.:-]+)")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")
CONSOLE_SCRIPT = Path(sys.executable).parent / "flowork-engine"

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals and paths below are POSIX")


def engine_cmd(*args: str, script: bool = False) -> list[str]:
    base = [str(CONSOLE_SCRIPT)] if script else [sys.executable, "-m", "engine"]
    return [*base, *args]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWORK_")}
    env.update(extra)
    return env


class Running:
    """A started engine process; `url` is read from its stdout."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env, cwd=REPO_ROOT)
        self.stdout: list[str] = []
        self.stderr = ""
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.stdout.append(line)
                if URL_RE.search(line):
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(60)
        match = next((URL_RE.search(line) for line in self.stdout if URL_RE.search(line)), None)
        if match is None:
            self.proc.kill()
            _, self.stderr = self.proc.communicate(timeout=30)
            raise AssertionError(f"no URL printed; stderr: {self.stderr}")
        self.url, self.port, self.engine_id = match.group(0), int(match.group(1)), match.group(2)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        _, self.stderr = self.proc.communicate(timeout=30)
        return self.proc.returncode


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    procs: list[Running] = []

    def run(*args: str, env: dict[str, str] | None = None, script: bool = False) -> Running:
        running = Running(engine_cmd(*args, script=script), env or clean_env())
        procs.append(running)
        return running

    yield run
    for running in procs:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.communicate(timeout=30)


def fail(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = subprocess.run(engine_cmd(*args), capture_output=True, text=True, env=env or clean_env(),
                          cwd=REPO_ROOT, timeout=60)
    return done.returncode, done.stderr


def one_sentence(stderr: str) -> str:
    """The failure text: no traceback, and one line besides timestamped log lines."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not LOG_LINE.match(line)]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("flowork-engine: ") and lines[0].rstrip().endswith("."), lines[0]
    return lines[0]


@pytest.mark.parametrize(("sig", "script"), [(signal.SIGINT, False), (signal.SIGTERM, True)])
async def test_serves_then_shuts_down_cleanly(start, tmp_path: Path, owner: Wallet, shared_dir: Path,
                                              sig: int, script: bool) -> None:
    data, logs = tmp_path / "data", tmp_path / "logs"
    running = start("--port", "0", "--data-dir", str(data), "--log-dir", str(logs), "--owner", owner.address,
                    "--root", str(shared_dir), "--engine-id", "cli-test", script=script)
    assert running.engine_id == "cli-test"
    async with await EngineClient.connect(running.url, owner.key) as client:
        assert (await client.request("request_settings"))["type"] == "settings_response"
        drives = (await client.request("request_drives"))["drives"]
        assert [d["path"] for d in drives] == [str(shared_dir.resolve())]
    assert running.stop(sig) == 0
    assert "Traceback" not in running.stderr
    log_text = (logs / "flowork-engine.log").read_text(encoding="utf-8")
    assert "shutting down" in log_text and "engine stopped" in log_text
    # A cleanly closed SQLite database in WAL mode leaves no -wal or -shm file behind.
    assert (data / "engine.sqlite3").exists()
    assert not (data / "engine.sqlite3-wal").exists() and not (data / "engine.sqlite3-shm").exists()


def test_engine_id_is_generated_once_and_kept_across_restarts(start, tmp_path: Path) -> None:
    args = ("--port", "0", "--data-dir", str(tmp_path / "d"), "--log-dir", str(tmp_path / "l"))
    first = start(*args)
    assert first.stop() == 0
    second = start(*args)
    assert second.stop() == 0
    assert first.engine_id == second.engine_id and first.engine_id.startswith("flowork-")
    stored = json.loads((tmp_path / "d" / "config.json").read_text())
    assert stored["engine_id"] == first.engine_id


def test_command_line_beats_environment_beats_config_file(start, tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "config.json").write_text(json.dumps({"engine_id": "from-file", "port": 1}))
    env = clean_env(FLOWORK_DATA_DIR=str(data), FLOWORK_PORT="0", FLOWORK_LOG_DIR=str(tmp_path / "l"))
    from_file = start(env=env)
    assert from_file.engine_id == "from-file" and from_file.port != 1  # the port came from env
    from_file.stop()
    from_env = start(env={**env, "FLOWORK_ENGINE_ID": "from-env"})
    assert from_env.engine_id == "from-env"
    from_env.stop()
    from_cli = start("--engine-id", "from-cli", env={**env, "FLOWORK_ENGINE_ID": "from-env"})
    assert from_cli.engine_id == "from-cli"
    from_cli.stop()


def test_a_port_in_use_is_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, stderr = fail("--port", str(port), "--data-dir", str(tmp_path / "d"), "--log-dir",
                            str(tmp_path / "l"))
    assert code == 1
    line = one_sentence(stderr)
    assert f"Port {port}" in line and "already in use" in line and "--port" in line
    assert "already in use" in (tmp_path / "l" / "flowork-engine.log").read_text()


def test_an_unusable_data_folder_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for args in (["--data-dir", str(blocker / "data")],
                 ["--data-dir", str(blocker / "data"), "--engine-id", "given"],
                 ["--data-dir", str(blocker)]):
        code, stderr = fail("--port", "0", "--log-dir", str(tmp_path / "l"), *args)
        assert code != 0
        assert "data folder" in one_sentence(stderr)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_read_only_data_folder_is_one_sentence(tmp_path: Path) -> None:
    data = tmp_path / "ro"
    data.mkdir(mode=0o500)
    immutable = os.geteuid() == 0  # root ignores permissions: make the folder immutable instead
    if immutable:
        chattr = require_tool("chattr")
        made = subprocess.run([chattr, "+i", str(data)], capture_output=True, text=True)
        if made.returncode != 0:
            message = f"chattr cannot make {data} immutable here: {made.stderr.strip()}"
            if os.environ.get("FLOWORK_REQUIRE_SYSTEM_TESTS") == "1":
                pytest.fail(message)
            pytest.skip(message)
    try:
        code, stderr = fail("--port", "0", "--data-dir", str(data), "--log-dir", str(tmp_path / "l"))
        assert code != 0 and "data folder" in one_sentence(stderr)
    finally:
        if immutable:
            subprocess.run([chattr, "-i", str(data)], check=True)
        data.chmod(0o700)


@pytest.mark.parametrize(("args", "config", "fragment"), [
    (["--port", "eighty"], None, "expected a whole number"),
    (["--port", "99999"], None, "between 0 and 65535"),
    (["--owner", "0xnope"], None, "is not a 0x-prefixed"),
    (["--status-interval", "-1"], None, "status interval"),
    (["--root", "/no/such/folder"], None, "does not exist"),
    ([], "{\"colour\": 1}", "unknown options: colour"),
    ([], "{broken", "is not valid JSON"),
])
def test_malformed_options_are_one_sentence(tmp_path: Path, args: list[str], config: str | None,
                                            fragment: str) -> None:
    data = tmp_path / "d"
    data.mkdir()
    if config is not None:
        (data / "config.json").write_text(config)
    code, stderr = fail("--port", "0", "--data-dir", str(data), "--log-dir", str(tmp_path / "l"), *args)
    assert code == 2
    assert fragment in one_sentence(stderr)


def test_environment_values_are_checked_too(tmp_path: Path) -> None:
    code, stderr = fail("--data-dir", str(tmp_path), env=clean_env(FLOWORK_PORT="x"))
    assert code == 2 and "port" in one_sentence(stderr)


def test_logs_go_to_a_rotating_file(tmp_path: Path) -> None:
    import logging
    import logging.handlers

    from engine.logging_setup import setup_logging

    root = logging.getLogger()
    before = list(root.handlers)
    path = setup_logging(tmp_path / "logs", to_stderr=False)
    try:
        added = [h for h in root.handlers if h not in before]
        assert path == tmp_path / "logs" / "flowork-engine.log"
        rotating = [h for h in added if isinstance(h, logging.handlers.RotatingFileHandler)]
        assert len(rotating) == 1 and rotating[0].maxBytes == 5 * 1024 * 1024
        assert rotating[0].backupCount == 5
        logging.getLogger("engine.test").warning("written to the file")
        rotating[0].flush()
        assert "written to the file" in path.read_text(encoding="utf-8")
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
                handler.close()


def test_the_client_command_signs_with_the_key_from_the_environment(start, tmp_path: Path,
                                                                   owner: Wallet, stranger: Wallet) -> None:
    running = start("--port", "0", "--data-dir", str(tmp_path / "d"), "--log-dir", str(tmp_path / "l"),
                    "--owner", owner.address)
    client = [sys.executable, "-m", "engine.client", "--url", running.url]
    ok = subprocess.run([*client, "update_variable", '{"name": "FROM_CLI", "data": {"value": "1"}}'],
                        capture_output=True, text=True, env=clean_env(FLOWORK_PRIVATE_KEY=owner.key),
                        cwd=REPO_ROOT, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["type"] == "status_response"
    refused = subprocess.run([*client, "--key", stranger.key, "request_variables"], capture_output=True,
                             text=True, env=clean_env(), cwd=REPO_ROOT, timeout=60)
    assert refused.returncode == 1 and "not authorized for engine" in refused.stdout
    no_key = subprocess.run([*client, "request_variables"], capture_output=True, text=True,
                            env=clean_env(), cwd=REPO_ROOT, timeout=60)
    assert no_key.returncode == 1 and "FLOWORK_PRIVATE_KEY" in no_key.stderr
    assert "Traceback" not in no_key.stderr
    assert running.stop() == 0
