"""The real `flowork` program: one instance per user, the headless engine without a display,
and (as a new user would) a started app whose engine answers a signed client."""

from __future__ import annotations

import asyncio
import json
import os

import psutil
import pytest

from engine.client import EngineClient, EngineReplyError
from tests.desktop.processes import Flowork


@pytest.fixture
def dirs(tmp_path):
    return ["--config-dir", str(tmp_path / "config"), "--data-dir", str(tmp_path / "data"),
            "--log-dir", str(tmp_path / "logs")]


def test_a_second_launch_asks_the_first_to_show_itself_and_exits(dirs, owner, stranger, tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "desktop.json").write_text(json.dumps({"owners": [owner.address]}))
    first = Flowork([*dirs, "--port", "0", "--webhook-port", "0"])
    try:
        url = first.wait_for(r"engine at (ws://\S+?)\. Logs").group(1)
        second = Flowork([*dirs, "--port", "0", "--webhook-port", "0"])
        assert second.proc.wait(60) == 0, second.output()
        second.wait_for(r"already running; asked it to show itself")
        first.wait_for(r"another launch asked this one to show itself")

        async def ask() -> None:  # the engine inside the first app answers a signed client
            async with await EngineClient.connect(url, owner.key) as client:
                assert (await client.request("request_settings"))["type"] == "settings_response"
            async with await EngineClient.connect(url, stranger.key) as client:
                with pytest.raises(EngineReplyError, match="not authorized for engine"):
                    await client.request("request_settings")
        asyncio.run(ask())
    finally:
        code = first.stop()
    assert code == 0, first.output()
    first.wait_for(r"flowork: stopped\.")
    assert "engine stopped" in first.output()
    log = (tmp_path / "logs" / "flowork-desktop.log").read_text()  # the rotating log file
    assert "listening on ws://" in log and "another launch asked this one to show itself" in log


def test_a_stale_lock_from_a_crashed_app_does_not_block_the_next_start(dirs):
    crashed = Flowork([*dirs, "--port", "0", "--webhook-port", "0", "--no-engine"])
    crashed.wait_for(r"is running")
    crashed.proc.kill()
    crashed.proc.wait(30)
    again = Flowork([*dirs, "--port", "0", "--webhook-port", "0", "--no-engine"])
    try:
        again.wait_for(r"is running")
    finally:
        assert again.stop() == 0


@pytest.mark.parametrize("display", [None, ":987"], ids=["unset", "stale"])
def test_without_a_display_flowork_runs_the_headless_engine(dirs, tmp_path, display):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    if display:
        env["DISPLAY"] = display  # no X server has that number here
    proc = Flowork(["--port", "0", "--webhook-port", "0", "--data-dir", str(tmp_path / "data"), "--log-dir", str(tmp_path / "logs")], env=env)
    try:
        proc.wait_for(r"no display found .* running the headless engine")
        proc.wait_for(r"Web GUI URL: ws://127\.0\.0\.1:\d+/\?engineId=")
        assert psutil.Process(proc.proc.pid).is_running()
    finally:
        assert proc.stop() == 0, proc.output()


def test_log_level_debug_writes_job_lines_to_the_desktop_log(owner, tmp_path):
    """flowork --log-level DEBUG: the in-process engine's job log lines (DEBUG since the runtime
    redesign) reach flowork-desktop.log; at the default INFO they do not."""
    from tests.runtime_support import collect, edge, node, start, workflow

    def run_once(name: str, level: list[str]) -> str:
        folder = tmp_path / name
        (folder / "config").mkdir(parents=True)
        (folder / "config" / "desktop.json").write_text(json.dumps({"owners": [owner.address]}))
        app = Flowork(["--config-dir", str(folder / "config"), "--data-dir", str(folder / "data"),
                       "--log-dir", str(folder / "logs"), "--port", "0", "--webhook-port", "0",
                       "--hidden", *level])
        try:
            url = app.wait_for(r"engine at (ws://\S+?)\. Logs").group(1)

            async def go() -> None:
                async with await EngineClient.connect(url, owner.key) as client:
                    wf = workflow([node("t", "manual_trigger"),
                                   node("l", "log_message", message="level-check-line")], [edge("t", "l")])
                    await collect(client, await start(client, wf))
            asyncio.run(go())
        finally:
            code = app.stop()
        assert code == 0, app.output()
        return (folder / "logs" / "flowork-desktop.log").read_text()

    assert "level-check-line" in run_once("debug", ["--log-level", "debug"])
    assert "level-check-line" not in run_once("default", [])
