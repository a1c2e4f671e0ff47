"""Issue 11, "Smaller findings": each one tried for real, over real sockets and real files."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import logging
import os
import shutil
import stat
import subprocess
import threading
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from engine.app import Engine, EngineStartError
from engine.auth.frame_auth import AUTH_MESSAGE_PREFIX
from engine.client import EngineClient
from tests.conftest import Wallet
from tests.hardening.helpers import REPO_ROOT, EngineProcess, auth_block, catch_logs
from tests.runtime_support import collect, edge, final, node, start, workflow


# -- the auth message --------------------------------------------------------------------------

def _digits(stamp: int, zero: str) -> str:
    """`stamp` written with another script's digits (zero is that script's 0)."""
    return "".join(chr(ord(zero) + int(d)) for d in str(stamp))


@pytest.mark.parametrize("variant", [
    "trailing newline", "arabic-indic digits", "fullwidth digits", "devanagari digits",
    "trailing CRLF"])
async def test_the_auth_message_is_exactly_the_prefix_and_ascii_digits(
        engine: Engine, client: EngineClient, owner: Wallet, variant: str) -> None:
    stamp = int(time.time() * 1000)
    message = {
        "trailing newline": f"{AUTH_MESSAGE_PREFIX}{stamp}\n",
        "trailing CRLF": f"{AUTH_MESSAGE_PREFIX}{stamp}\r\n",
        "arabic-indic digits": AUTH_MESSAGE_PREFIX + _digits(stamp, "\u0660"),
        "fullwidth digits": AUTH_MESSAGE_PREFIX + _digits(stamp, "\uff10"),
        "devanagari digits": AUTH_MESSAGE_PREFIX + _digits(stamp, "\u0966"),
    }[variant]
    # Correctly signed by the owner: only the text's form is wrong.
    reply = await client.request("request_settings", check=False,
                                 auth=auth_block(owner.key, message=message))
    assert reply.get("code") == "auth_format", reply
    assert AUTH_MESSAGE_PREFIX in reply["error"]
    # The same owner with the exact form is served on the same connection.
    assert (await client.request("request_settings"))["type"] == "settings_response"


# -- repeated log lines ----------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")
async def test_file_descriptor_exhaustion_cannot_flood_the_log(tmp_path: Path) -> None:
    """A real engine process with 60 file descriptors, and hundreds of connections: asyncio
    logs `socket.accept() out of system resource` each time; at most 10 of a kind per 10 s
    reach the log (the rest are counted), so the real lines are not rotated away."""
    data, logs = tmp_path / "data", tmp_path / "logs"
    code = ("import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (60, 60)); "
            f"sys.argv = ['engine', '--host', '127.0.0.1', '--port', '0', '--engine-id', 'x', "
            f"'--data-dir', {str(data)!r}, '--log-dir', {str(logs)!r}, '--owner', '0x' + '11' * 20]; "
            "runpy.run_module('engine', run_name='__main__')")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}, cwd=REPO_ROOT)
    assert proc.stdout is not None
    try:
        port = 0
        while not port:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "the engine exited"
            if line.startswith("Web GUI URL: "):
                port = int(line.split(":")[3].split("/")[0])
        held: list[asyncio.StreamWriter] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + 4
        while loop.time() < end:
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                held.append(writer)
            except OSError:
                await asyncio.sleep(0.005)
            if len(held) > 150:
                held.pop(0).close()
        for writer in held:
            writer.close()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        await proc.wait()
    text = (logs / "flowork-engine.log").read_text(encoding="utf-8")
    stamps = [datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
              for line in text.splitlines() if "out of system resource" in line]
    assert stamps, "the descriptors were not exhausted"
    for i, first in enumerate(stamps):  # never more than 10 within any 10 s
        assert sum(1 for t in stamps[i:] if t - first < 9.9) <= 10, text[-3000:]


# -- file modes ----------------------------------------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
async def test_data_and_log_files_are_the_users_alone_and_old_ones_are_fixed(tmp_path: Path,
                                                                             owner: Wallet) -> None:
    data, logs = tmp_path / "data", tmp_path / "logs"
    old_umask = os.umask(0o022)
    try:
        engine = EngineProcess(data, logs, [owner.address])
        await engine.start()
        async with await EngineClient.connect(engine.url, owner.key) as client:
            await client.request("save_settings", settings={"theme": "dark"})
        await engine.stop()
        for folder in (data, logs):
            assert _mode(folder) == 0o700, folder
        files = [data / n for n in ("engine.sqlite3", "engine.sqlite3-wal", "engine.sqlite3-shm",
                                     "config.json", "secrets.key")] + [logs / "flowork-engine.log"]
        present = [f for f in files if f.exists()]
        assert data / "engine.sqlite3" in present and logs / "flowork-engine.log" in present
        assert {f.name: _mode(f) for f in present} == {f.name: 0o600 for f in present}
        # Folders and files made readable by others (an older version, a copy) are fixed at start.
        for folder in (data, logs):
            os.chmod(folder, 0o755)
        for f in present:
            os.chmod(f, 0o644)
        again = EngineProcess(data, logs, [owner.address])
        await again.start()
        await again.stop()
        assert _mode(data) == 0o700 and _mode(logs) == 0o700
        assert all(_mode(f) == 0o600 for f in present if f.exists())
        assert "restricted to the owner only" in again.log_text()
    finally:
        os.umask(old_umask)


# -- another owner's job id --------------------------------------------------------------------

def _shared_id_workflow(who: str) -> dict:
    """set_data (its data says whose job it is) -> an approval -> set_data."""
    return workflow([node("first", "set_data", data={"who": who}), node("ask", "manual_approval", message="ok?"),
                     node("after", "set_data", data={"approved_for": who})],
                    [edge("first", "ask", edge_id="e1"), edge("ask", "after", "APPROVED", edge_id="e2")])


def _without_ids(reply: dict, *ids: str) -> dict:
    text = json.dumps({k: v for k, v in reply.items() if k != "request_id"})
    for job_id in ids:
        text = text.replace(job_id, "ID")
    return json.loads(text)


async def test_another_owners_job_id_reads_exactly_like_an_unused_one(
        make_engine, owner: Wallet, stranger: Wallet) -> None:
    """Job ids are per owner: a second owner who names my running job's id starts their own
    job under that id, answered exactly as for an id nobody used; everything either of us
    then does with the id (status, history, approvals, stop, the jobs list, a restart) reaches
    only our own job, and every frame carries the id as we named it."""
    owners = (owner.address, stranger.address)
    engine = await make_engine(owners=owners)
    async with await EngineClient.connect(engine.url, owner.key) as mine, \
            await EngineClient.connect(engine.url, stranger.key) as theirs:
        await start(mine, _shared_id_workflow("mine"), job_id="shared-id")
        await mine.next_event("MANUAL_APPROVAL_REQUESTED", where=lambda e: e["job_id"] == "shared-id")
        # The same answer as for an id nobody has used: the job starts.
        fresh = await theirs.request("execute_workflow", job_id="fresh-id", workflow_data=QUICK_WF,
                                     initial_payload={}, mode="EXECUTE")
        probe = await theirs.request("execute_workflow", job_id="shared-id",
                                     workflow_data=_shared_id_workflow("theirs"), initial_payload={},
                                     mode="EXECUTE")
        assert _without_ids(probe, "shared-id") == _without_ids(fresh, "fresh-id"), (probe, fresh)
        asked = await theirs.next_event("MANUAL_APPROVAL_REQUESTED", where=lambda e: e["job_id"] == "shared-id")
        assert asked["workflow_context_id"] == "shared-id"
        # Each owner's status is of their own job.
        for client, who in ((mine, "mine"), (theirs, "theirs")):
            status = await client.request("request_job_status", job_id="shared-id")
            assert status["job_id"] == "shared-id" and status["status_data"]["status"] == "RUNNING"
            history = await client.request("request_connection_history", job_id="shared-id", connection_id="e1")
            assert [h["payload"]["data"]["who"] for h in history["history"]] == [who], history
            listed = await client.request("request_jobs_list")
            assert [j["job_id"] for j in listed["jobs"] if j["job_id"] == "shared-id"] == ["shared-id"], listed
        # Their own id is theirs now: used, like any id they used.
        again = await theirs.request("execute_workflow", check=False, job_id="shared-id",
                                     workflow_data=QUICK_WF, initial_payload={}, mode="EXECUTE")
        assert again["code"] == "conflict", again

    # Both jobs wait for an answer across a restart, each under its owner's id.
    await engine.stop()
    engine = await make_engine(owners=owners)
    async with await EngineClient.connect(engine.url, owner.key) as mine, \
            await EngineClient.connect(engine.url, stranger.key) as theirs:
        for client in (mine, theirs):  # signing in brings the pending approvals
            await client.request("request_settings")
            await client.next_event("MANUAL_APPROVAL_REQUESTED", where=lambda e: e["job_id"] == "shared-id")
        # An answer by job id and node id reaches the answerer's own approval only.
        await theirs.request("manual_approval_response", job_id="shared-id", node_id="ask", decision="APPROVED")
        events = await collect(theirs, "shared-id")
        assert final(events)["status"] == "SUCCEEDED", events
        assert all(e.get("job_id") in (None, "shared-id") for e in events), events
        status = await mine.request("request_job_status", job_id="shared-id")
        assert status["status_data"]["status"] == "RUNNING", status
        stopped = await mine.request("stop_workflow", job_id="shared-id")
        assert stopped["job_ids"] == ["shared-id"], stopped
        assert final(await collect(mine, "shared-id"))["status"] == "STOPPED"
        ended = await theirs.request("request_job_status", job_id="shared-id")
        assert ended["status_data"]["status"] == "SUCCEEDED", ended


QUICK_WF = workflow([node("s", "set_data", data={"a": 1})], [])


# -- two Origin headers ------------------------------------------------------------------------

async def test_two_origin_headers_get_400_and_no_traceback(engine: Engine, client: EngineClient) -> None:
    port = int(engine.url.split(":")[2].split("/")[0])
    with catch_logs(logging.DEBUG, quiet=()) as logs:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /?engineId=test-engine HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\nOrigin: https://flowork.cloud\r\n"
                     b"Origin: https://evil.example\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        await asyncio.sleep(0.1)
    assert status.startswith(b"HTTP/1.1 400"), status
    assert not [r for r in logs.records if r.exc_info or r.levelno >= logging.ERROR], logs.text()
    assert (await client.request("request_settings"))["type"] == "settings_response"


# -- numbers JSON cannot hold, and the request_id of a bad frame ---------------------------------

@pytest.mark.parametrize("number", ["1e999", "-1e999", "1E400", "NaN", "Infinity"])
async def test_numbers_no_double_holds_are_bad_json_and_the_request_id_is_echoed(
        client: EngineClient, owner: Wallet, number: str) -> None:
    await client.request("request_settings")
    text = ('{"auth": %s, "payload": {"type": "save_settings", "request_id": "big-1", '
            '"settings": {"limit": %s}}}' % (json.dumps(auth_block(owner.key)), number))
    await client.send_raw(text)
    reply = await client.next_event(where=lambda f: f.get("request_id") == "big-1")
    assert reply["code"] == "bad_json" and reply["request_type"] == "save_settings", reply
    assert (await client.request("request_settings"))["settings"].get("limit") is None
    await client.request("update_variable", name="N", data={"value": "1"})
    await client.send_raw(text.replace('"save_settings"', '"update_variable"').replace(
        '"settings": {"limit": %s}' % number, '"name": "N", "data": {"value": %s}' % number))
    reply = await client.next_event(where=lambda f: f.get("request_id") == "big-1")
    assert reply["code"] == "bad_json", reply


# -- redirects of http_request -----------------------------------------------------------------

async def test_http_request_follows_only_http_and_https_redirects(client: EngineClient) -> None:
    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            target = {"/ftp": "ftp://127.0.0.1:21/secret", "/file": "file:///etc/passwd",
                      "/http": "/landed"}.get(self.path)
            if target:
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()
            else:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"landed")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for path, scheme in (("/ftp", "ftp"), ("/file", "file")):
            wf = workflow([node("t", "manual_trigger"), node("h", "http_request", url=base + path)],
                          [edge("t", "h")])
            status = final(await collect(client, await start(client, wf)))
            assert status["status"] == "FAILED", status
            assert f"redirect to {scheme}://" in status["error"] and "only http:// and https://" in status["error"]
        wf = workflow([node("t", "manual_trigger"), node("h", "http_request", url=base + "/http")],
                      [edge("t", "h")])
        status = final(await collect(client, await start(client, wf)))
        assert status["status"] == "SUCCEEDED" and status["result"]["data"]["response"]["body"] == "landed"
    finally:
        server.shutdown()
        server.server_close()


# -- a full disk -------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 8 MiB file system (tmpfs) for the data folder (room for a new engine's database
    and its WAL, whose first checkpoint comes later as the schema grows); needs root to mount."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root (and mount); this machine's user is not root")
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(disk: Path) -> Path:
    """Write until the file system refuses; then it is full, whoever filled it."""
    filler = disk / "filler"
    try:
        with open(filler, "wb") as handle:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
    except OSError:
        pass
    assert shutil.disk_usage(disk).free < 65536, "the small disk did not fill up"
    return filler


async def test_on_a_full_disk_a_job_start_is_refused_and_a_restart_says_how_much_space(
        make_engine, owner: Wallet, small_disk: Path) -> None:
    data = small_disk / "data"
    engine = await make_engine(data_dir=data)
    wf = workflow([node("t", "manual_trigger"), node("s", "set_data", data={"x": 1})], [edge("t", "s")])
    async with await EngineClient.connect(engine.url, owner.key) as client:
        await start(client, wf)  # room enough: started and recorded
        filler = fill(small_disk)
        reply = await client.request("execute_workflow", check=False, job_id="on-a-full-disk",
                                     workflow_data=wf, initial_payload={}, mode="EXECUTE")
        assert reply["code"] == "storage_error" and "started" not in reply.get("error", ""), reply
        assert "full" in reply["error"], reply
    await engine.stop()
    # A restart on the full disk says so, with the space it needs.
    with pytest.raises(EngineStartError) as refused:
        await make_engine(data_dir=data)
    text = str(refused.value)
    assert "is full" in text and "needs at least" in text and "free" in text, text
    assert "check that the folder is writable" not in text
    filler.unlink(missing_ok=True)
    again = await make_engine(data_dir=data)
    async with await EngineClient.connect(again.url, owner.key) as client:
        status = await client.request("request_job_status", job_id="on-a-full-disk", check=False)
        assert status["code"] == "not_found"  # never acknowledged, never recorded
        assert final(await collect(client, await start(client, wf)))["status"] == "SUCCEEDED"
