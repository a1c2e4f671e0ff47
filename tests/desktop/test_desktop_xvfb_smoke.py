"""Smoke test on a real X display: Xvfb with a tray host (trayer), the real `flowork` program,
a right-click on its tray icon, and an approval raised by a real workflow.

Screenshots of the tray menu and the approval dialog are saved in artifacts/screenshots/ (git
ignores it) for a person to look at; the test checks they show something (many colours where
the window is, and a change from the screen before).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from PySide6.QtGui import QImage

from engine.client import EngineClient
from tests.conftest import REPO_ROOT, require_tool
from tests.desktop.processes import Flowork
from tests.desktop.test_desktop_approvals import approval_flow
from tests.runtime_support import start

SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
WINDOW_LINE = re.compile(r'^(\s*)0x[0-9a-f]+ "(?P<name>[^"]*)":.*?\s(?P<w>\d+)x(?P<h>\d+)[+-]-?\d+[+-]-?\d+\s+\+(?P<x>-?\d+)\+(?P<y>-?\d+)')


def poll(fn: Callable[[], Any], timeout: float = 30.0, what: str = "",
         detail: Callable[[], str] = lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{detail()}")


def start_xvfb(xvfb: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Xvfb on a display number it picks itself (-displayfd), so parallel runs never collide."""
    read_fd, write_fd = os.pipe()
    with open(log, "ab") as err:
        server = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", "1024x600x24",
                                   "-nolisten", "tcp"], pass_fds=(write_fd,),
                                  stdout=subprocess.DEVNULL, stderr=err)
    os.close(write_fd)
    number = b""
    with os.fdopen(read_fd, "rb") as pipe:
        while not number.endswith(b"\n"):
            chunk = pipe.read(1)
            if not chunk:
                break
            number += chunk
    if not number.strip():
        server.wait(10)
        raise AssertionError(f"Xvfb did not start:\n{log.read_text(errors='replace')}")
    return server, int(number)


@pytest.fixture
def x_server(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A fresh Xvfb display (no tray yet); the environment to use it, and its log."""
    xvfb = require_tool("Xvfb")
    require_tool("trayer")
    require_tool("xdotool")
    require_tool("xwininfo")
    log = tmp_path / "x-display.log"
    server, number = start_xvfb(xvfb, log)
    env = dict(os.environ, DISPLAY=f":{number}", QT_QPA_PLATFORM="xcb")
    try:
        yield env, log
    finally:
        stop(server)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def start_trayer(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """trayer providing the system tray, once its panel is on screen."""
    with open(log, "ab") as err:
        tray = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel",
                                 "--width", "160", "--height", "40", "--heighttype", "pixel",
                                 "--transparent", "false", "--SetDockType", "true", "--expand", "false"],
                                env=env, stdout=subprocess.DEVNULL, stderr=err)
    poll(lambda: '"panel"' in windows_text(env) or tray.poll() is not None, what="the trayer panel",
         detail=lambda: log.read_text(errors="replace"))
    assert tray.poll() is None, f"trayer exited:\n{log.read_text(errors='replace')}"
    return tray


@pytest.fixture
def x_display(x_server: tuple[dict[str, str], Path]) -> Iterator[dict[str, str]]:
    """A fresh Xvfb display with trayer providing the system tray; the environment to use it."""
    env, log = x_server
    tray = start_trayer(env, log)
    try:
        yield env
    finally:
        stop(tray)


def windows_text(env: dict[str, str]) -> str:
    return subprocess.run(["xwininfo", "-root", "-tree"], env=env, capture_output=True,
                          text=True, timeout=30).stdout


def windows(env: dict[str, str]) -> list[dict[str, Any]]:
    found = []
    for line in windows_text(env).splitlines():
        m = WINDOW_LINE.match(line)
        if m:
            found.append({"name": m["name"], "depth": len(m.group(1)), "w": int(m["w"]),
                          "h": int(m["h"]), "x": int(m["x"]), "y": int(m["y"])})
    return found


def screenshot(env: dict[str, str], name: str) -> QImage:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    subprocess.run([sys.executable, "-m", "tests.desktop.screenshot", str(path)], env=env,
                   cwd=REPO_ROOT, check=True, timeout=60)
    image = QImage(str(path))
    assert not image.isNull(), path
    return image


def colours(image: QImage, box: dict[str, Any]) -> int:
    """Distinct colours inside the window's box."""
    part = image.copy(box["x"], box["y"], box["w"], box["h"]).convertToFormat(QImage.Format.Format_RGB32)
    data = bytes(part.constBits())
    return len({data[i:i + 4] for i in range(0, len(data), 4)})


def changed_pixels(before: QImage, after: QImage, box: dict[str, Any]) -> int:
    a = bytes(before.copy(box["x"], box["y"], box["w"], box["h"]).convertToFormat(QImage.Format.Format_RGB32).constBits())
    b = bytes(after.copy(box["x"], box["y"], box["w"], box["h"]).convertToFormat(QImage.Format.Format_RGB32).constBits())
    return sum(1 for i in range(0, len(a), 4) if a[i:i + 4] != b[i:i + 4])


def xdotool(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["xdotool", *args], env=env, check=True, timeout=30,
                          capture_output=True, text=True).stdout


def test_new_user_pairs_then_tray_menu_and_approval_on_a_real_display(x_display, tmp_path, owner):
    """A fresh profile: the first signed client is asked about (Allow by keyboard), then the tray
    menu and an approval dialog are shown and photographed, and the approval is answered from
    the client, which closes the dialog."""
    env = x_display
    app = Flowork(["--hidden", "--port", "0", "--config-dir", str(tmp_path / "config"), "--data-dir",
                   str(tmp_path / "data"), "--log-dir", str(tmp_path / "logs")], env=env)
    def detail() -> str:
        return f"windows:\n{windows_text(env)}\nflowork said:\n{app.output()}"
    try:
        url = app.wait_for(r"is running in the tray; engine at (ws://\S+?)\. Logs").group(1)
        icon = poll(lambda: next((w for w in windows(env) if w["name"] == "Flowork" and w["depth"] > 5
                                  and w["w"] <= 64 and w["h"] <= 64), None), what="the tray icon", detail=detail)

        # pairing: the web GUI's first signed frame raises the question; the person allows it
        async def first_contact() -> dict:
            async with await EngineClient.connect(url, owner.key) as client:
                return await client.request("request_settings", timeout=120)

        async def pair() -> dict:
            reply = asyncio.ensure_future(first_contact())
            question = "Allow a new owner? — Flowork"
            window = None
            while window is None:
                await asyncio.sleep(0.1)
                assert not reply.done(), (reply, detail())
                window = await asyncio.to_thread(
                    lambda: next((w for w in windows(env) if w["name"].startswith(question)), None))
            await asyncio.sleep(0.5)
            shot = screenshot(env, "pairing-dialog.png")  # Qt objects only on the main thread
            assert colours(shot, window) > 20, "the pairing dialog screenshot is blank"
            ids = (await asyncio.to_thread(xdotool, env, "search", "--name", "^Allow a new owner")).split()
            await asyncio.to_thread(xdotool, env, "windowfocus", "--sync", ids[-1])
            await asyncio.to_thread(xdotool, env, "key", "alt+a")
            return await reply
        assert asyncio.run(pair())["type"] == "settings_response"
        saved = json.loads((tmp_path / "config" / "desktop.json").read_text())
        assert [o.lower() for o in saved["owners"]] == [owner.address.lower()]

        before = screenshot(env, "before.png")
        # the tray menu: a right-click on the icon, as a person would
        xdotool(env, "mousemove", str(icon["x"] + icon["w"] // 2), str(icon["y"] + icon["h"] // 2), "click", "3")
        menu = poll(lambda: next((w for w in windows(env) if w["name"] == "Flowork" and w["depth"] <= 5
                                  and w["h"] > 150), None), what="the tray menu", detail=detail)
        shot = screenshot(env, "tray-menu.png")
        assert colours(shot, menu) > 20, "the tray menu screenshot is blank"
        assert changed_pixels(before, shot, menu) > menu["w"] * menu["h"] // 4
        xdotool(env, "key", "Escape")

        # an approval from a real workflow: the native dialog appears
        async def ask() -> str:
            async with await EngineClient.connect(url, owner.key) as client:
                await start(client, approval_flow(), preset_name="Smoke test")
                return (await client.next_event("MANUAL_APPROVAL_REQUESTED"))["approval_id"]
        approval_id = asyncio.run(ask())
        title = "Approval needed: Smoke test — Flowork"
        dialog = poll(lambda: next((w for w in windows(env) if w["name"].startswith(title) and w["h"] > 50), None),
                      what="the approval dialog", detail=detail)
        time.sleep(0.5)  # let it paint (a screenshot only: nothing is asserted on timing)
        shot = screenshot(env, "approval-dialog.png")
        assert colours(shot, dialog) > 20, "the approval dialog screenshot is blank"

        # answered elsewhere (a web GUI): the dialog goes away
        async def answer() -> None:
            async with await EngineClient.connect(url, owner.key) as client:
                await client.request("manual_approval_response", approval_id=approval_id, decision="APPROVED")
        asyncio.run(answer())
        poll(lambda: not any(w["name"].startswith(title) for w in windows(env)), what="the dialog to close", detail=detail)
    finally:
        code = app.stop()
    assert code == 0, app.output()
    (SCREENSHOTS / "before.png").unlink(missing_ok=True)


def tray_icon(env: dict[str, str]) -> dict[str, Any] | None:
    return next((w for w in windows(env) if w["name"] == "Flowork" and w["depth"] > 5
                 and w["w"] <= 64 and w["h"] <= 64), None)


def test_a_tray_started_after_flowork_is_moved_into(x_server, tmp_path):
    """The login race on a real display: no tray at first (the status window shows), then
    trayer starts and Flowork's icon appears in it."""
    env, log = x_server
    app = Flowork(["--port", "0", "--config-dir", str(tmp_path / "config"), "--data-dir",
                   str(tmp_path / "data"), "--log-dir", str(tmp_path / "logs")], env=env)
    tray = None
    def detail() -> str:
        return f"windows:\n{windows_text(env)}\nflowork said:\n{app.output()}"
    try:
        app.wait_for(r"no system tray here: a status window is shown")
        window = poll(lambda: next((w for w in windows(env) if w["name"] == "Flowork" and w["h"] > 80), None),
                      what="the status window", detail=detail)
        time.sleep(0.5)  # let it paint (a screenshot only: nothing is asserted on timing)
        shot = screenshot(env, "status-window-no-tray.png")
        assert colours(shot, window) > 20
        tray = start_trayer(env, log)
        icon = poll(lambda: tray_icon(env), what="Flowork's icon in the late tray", detail=detail)
        time.sleep(0.5)
        shot = screenshot(env, "late-tray.png")
        assert colours(shot, icon) > 5
    finally:
        code = app.stop()
        if tray is not None:
            stop(tray)
    assert code == 0, app.output()
