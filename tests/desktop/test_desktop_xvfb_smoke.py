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
import socket
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
from tests.desktop.test_desktop_runs import failing_flow
from tests.runtime_support import collect, edge, final, node, start, workflow

SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
ROOT_CHILD_DEPTH = 5  # xwininfo's indent for a window directly under the root
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


def start_xvfb(xvfb: str, log: Path, size: str = "1024x600x24") -> tuple[subprocess.Popen[bytes], int]:
    """Xvfb on a display number it picks itself (-displayfd), so parallel runs never collide."""
    read_fd, write_fd = os.pipe()
    with open(log, "ab") as err:
        server = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", size,
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
    require_tool("openbox")
    require_tool("xdotool")
    require_tool("xwininfo")
    log = tmp_path / "x-display.log"
    server, number = start_xvfb(xvfb, log)
    env = dict(os.environ, DISPLAY=f":{number}", QT_QPA_PLATFORM="xcb")
    wm = start_window_manager(env, log)
    try:
        yield env, log
    finally:
        stop(wm)
        stop(server)


def start_window_manager(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """openbox: windows get title bars (the screenshots show their titles) and focus."""
    with open(log, "ab") as err:
        wm = subprocess.Popen(["openbox", "--sm-disable"], env=env, stdout=subprocess.DEVNULL, stderr=err)
    poll(lambda: wm.poll() is not None or _wm_running(env), what="openbox",
         detail=lambda: log.read_text(errors="replace"))
    assert wm.poll() is None, f"openbox exited:\n{log.read_text(errors='replace')}"
    return wm


def _wm_running(env: dict[str, str]) -> bool:
    out = subprocess.run(["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"], env=env, capture_output=True,
                         text=True).stdout
    return "window id" in out


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


def tray_icon(env: dict[str, str]) -> dict[str, Any] | None:
    return next((w for w in windows(env) if w["name"] == "Flowork" and w["depth"] > ROOT_CHILD_DEPTH
                 and w["w"] <= 64 and w["h"] <= 64), None)


def window_titled(env: dict[str, str], title: str, min_h: int = 50) -> dict[str, Any] | None:
    """A top-level window on screen: framed by the window manager, so deeper than a root child.
    xwininfo also lists a window Qt has created but not yet mapped (a direct child of the root,
    at the place it asked for); photographing that box finds only the background."""
    return next((w for w in windows(env) if w["name"].startswith(title) and w["h"] >= min_h
                 and w["depth"] > ROOT_CHILD_DEPTH), None)


def window_named(env: dict[str, str], name: str, min_width: int = 500) -> dict[str, Any] | None:
    # Under the window manager a top-level window sits inside its frame, so any depth will do.
    return next((w for w in windows(env) if w["name"] == name and w["w"] >= min_width), None)


def same_window(env: dict[str, str], box: dict[str, Any]) -> dict[str, Any] | None:
    """Where the window of an earlier box is now: the window manager may still move it."""
    return next((w for w in windows(env) if w["name"] == box["name"] and w["depth"] == box["depth"]
                 and w["w"] == box["w"] and w["h"] == box["h"]), None)


def top_menu(env: dict[str, str]) -> dict[str, Any] | None:
    """The tray menu: an override-redirect popup, a direct child of the root."""
    return next((w for w in windows(env) if w["name"] == "Flowork" and w["depth"] <= ROOT_CHILD_DEPTH
                 and w["h"] > 150 and w["w"] < 800 and w["y"] < 100), None)


def open_menu(env: dict[str, str], icon: dict[str, Any], detail: Callable[[], str]) -> dict[str, Any]:
    """Right-click the icon, as a person would (and again if the first click went unseen, as a
    person would too: an icon just embedded may miss it)."""
    poll(lambda: top_menu(env) is None, what="the previous menu to close", detail=detail)
    for attempt in range(3):
        xdotool(env, "mousemove", str(icon["x"] + icon["w"] // 2), str(icon["y"] + icon["h"] // 2), "click", "3")
        try:
            return poll(lambda: top_menu(env), timeout=8, what="the tray menu", detail=detail)
        except AssertionError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def photograph(env: dict[str, str], name: str, box: dict[str, Any] | None = None,
               timeout: float = 15.0, min_colours: int = 20) -> QImage:
    """A screenshot once the window has painted (for people: nothing is asserted on timing).
    A window that is listed but not painted yet (a loaded machine) is photographed again until
    it shows more than `min_colours` colours, for up to `timeout` seconds; still blank then, it
    fails."""
    deadline = time.monotonic() + timeout
    time.sleep(0.6)
    shot = screenshot(env, name)
    while box is not None and colours(shot, box) <= min_colours and time.monotonic() < deadline:
        time.sleep(0.5)
        box = same_window(env, box) or box
        shot = screenshot(env, name)
    if box is not None:
        assert colours(shot, box) > min_colours, f"{name} is blank"
    return shot


def press(env: dict[str, str], title: str, key: str) -> None:
    """A key in the window whose title matches, once it has the focus."""
    ids = xdotool(env, "search", "--name", title).split()
    xdotool(env, "windowactivate", "--sync", ids[-1])
    xdotool(env, "key", key)


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


def test_new_user_on_a_real_display(x_display, tmp_path, owner, stranger):
    """A fresh profile as a new user meets it: pairing (Allow by keyboard), the tray menu, the
    status window, About and Settings (by their menu mnemonics), an approval, a failing run (its
    notice, the red cross, Recent runs), Stop while a workflow runs (the question), and an
    address turned away (its notice). Each is photographed into artifacts/screenshots/."""
    env = x_display
    app = Flowork(["--hidden", "--port", "0", "--webhook-port", "0", "--config-dir", str(tmp_path / "config"), "--data-dir",
                   str(tmp_path / "data"), "--log-dir", str(tmp_path / "logs")], env=env)
    def detail() -> str:
        return f"windows:\n{windows_text(env)}\nflowork said:\n{app.output()}"
    try:
        url = app.wait_for(r"is running in the tray; engine at (ws://\S+?)\. Logs").group(1)
        icon = poll(lambda: tray_icon(env), what="the tray icon", detail=detail)

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
                window = await asyncio.to_thread(window_titled, env, question)
            await asyncio.to_thread(photograph, env, "pairing-dialog.png", window)
            ids = (await asyncio.to_thread(xdotool, env, "search", "--name", "^Allow a new owner")).split()
            await asyncio.to_thread(xdotool, env, "windowfocus", "--sync", ids[-1])
            await asyncio.to_thread(xdotool, env, "key", "alt+a")
            return await reply
        assert run_async(pair())["type"] == "settings_response"
        saved = json.loads((tmp_path / "config" / "desktop.json").read_text())
        assert [o.lower() for o in saved["owners"]] == [owner.address.lower()]

        before = screenshot(env, "before.png")
        menu = open_menu(env, icon, detail)  # a right-click on the icon, as a person would
        shot = photograph(env, "tray-menu.png", menu)
        assert changed_pixels(before, shot, menu) > menu["w"] * menu["h"] // 4
        # the bold header opens the status window
        xdotool(env, "mousemove", str(menu["x"] + 40), str(menu["y"] + 12), "click", "1")
        status = poll(lambda: window_titled(env, "Flowork", 100), what="the status window", detail=detail)
        photograph(env, "status-window.png", status)
        press(env, "^Flowork$", "Escape")  # closes it (Flowork stays in the tray)
        poll(lambda: not window_titled(env, "Flowork", 100), what="the status window to close", detail=detail)

        open_menu(env, icon, detail)
        xdotool(env, "key", "a")  # About Flowork, by its mnemonic
        about = poll(lambda: window_titled(env, "About — Flowork"), what="About", detail=detail)
        photograph(env, "about.png", about)
        xdotool(env, "key", "Escape")

        open_menu(env, icon, detail)
        xdotool(env, "key", "n")  # Settings
        settings = poll(lambda: window_titled(env, "Settings — Flowork", 200), what="Settings", detail=detail)
        photograph(env, "settings.png", settings)
        xdotool(env, "key", "Escape")

        # an approval from a real workflow: the native dialog appears
        async def ask() -> str:
            async with await EngineClient.connect(url, owner.key) as client:
                await start(client, approval_flow(), preset_name="Smoke test")
                return (await client.next_event("MANUAL_APPROVAL_REQUESTED"))["approval_id"]
        approval_id = run_async(ask())
        title = "Approval needed: Smoke test — Flowork"
        dialog = poll(lambda: window_titled(env, title), what="the approval dialog", detail=detail)
        photograph(env, "approval-dialog.png", dialog)

        # answered elsewhere (a web GUI): the dialog goes away
        async def answer() -> None:
            async with await EngineClient.connect(url, owner.key) as client:
                await client.request("manual_approval_response", approval_id=approval_id, decision="APPROVED")
        run_async(answer())
        poll(lambda: not window_titled(env, title), what="the dialog to close", detail=detail)

        # a failing run: a notice (the tray's own balloon here: no notification service) and
        # the red cross, then Recent runs
        async def fail() -> None:
            async with await EngineClient.connect(url, owner.key) as client:
                job_id = await start(client, failing_flow(), preset_name="Nightly import")
                assert final(await collect(client, job_id))["status"] == "FAILED"
        run_async(fail())
        photograph(env, "failed-run-notice.png")
        xdotool(env, "mousemove", "880", "70", "click", "1")  # a click on the notice: the run's details
        run = poll(lambda: window_named(env, "Flowork"), what="the window on the run's details",
                   detail=detail)
        time.sleep(1.0)  # its detail is read from the engine's store
        photograph(env, "run-details.png", run)  # the window stays open behind the menu
        menu = open_menu(env, icon, detail)
        xdotool(env, "key", "c")  # Recent runs
        poll(lambda: sum(1 for w in windows(env) if w["name"] == "Flowork" and w["depth"] <= ROOT_CHILD_DEPTH
                         and w["h"] > 20) >= 2, what="the Recent runs submenu", detail=detail)
        photograph(env, "recent-runs.png", menu)
        xdotool(env, "key", "Escape")
        xdotool(env, "key", "Escape")

        # Stop engine while a workflow runs: the question
        async def slow() -> None:
            client = await EngineClient.connect(url, owner.key)
            await start(client, workflow([node("t", "manual_trigger"), node("w", "delay", seconds=60)],
                                         [edge("t", "w")]), preset_name="Long job")
            await client.close()
        run_async(slow())
        open_menu(env, icon, detail)
        xdotool(env, "key", "t")  # Stop engine
        confirm = poll(lambda: window_titled(env, "Stop engine? — Flowork"), what="the question", detail=detail)
        photograph(env, "confirm-stop.png", confirm)
        press(env, "^Stop engine\\?", "Escape")  # Cancel: the engine keeps running
        poll(lambda: not window_titled(env, "Stop engine?"), what="the question to close", detail=detail)

        # an address that is not an owner: turned away, and the person is told
        async def stranger_tries() -> dict:
            async with await EngineClient.connect(url, stranger.key, origin="https://flowork.cloud") as client:
                return await client.request("request_settings", check=False)
        assert "not authorized" in run_async(stranger_tries())["error"]
        photograph(env, "refused-address-notice.png")
        assert f"refused {stranger.address}" in (tmp_path / "logs" / "flowork-desktop.log").read_text()
    finally:
        code = app.stop()
    assert code == 0, app.output()
    (SCREENSHOTS / "before.png").unlink(missing_ok=True)


def test_the_window_shows_runs_a_timeline_approvals_and_charts_on_a_real_display(x_display, tmp_path, owner):
    """The real `flowork` on Xvfb with a tray: a click on the tray icon opens the window; a failed,
    a looped and a running run, then an approval, come from a signed client; the arrow keys pick
    runs and Ctrl+Tab the tabs, as a person would; each view is photographed."""
    from tests.desktop.test_desktop_window import failing_flow, looped_flow, slow_flow
    from tests.test_engine_presets import save
    env = x_display
    config = tmp_path / "config"
    config.mkdir()
    (config / "desktop.json").write_text(json.dumps({"port": 0, "owners": [owner.address]}))
    app = Flowork(["--hidden", "--port", "0", "--config-dir", str(config), "--data-dir",
                   str(tmp_path / "data"), "--log-dir", str(tmp_path / "logs")], env=env)

    def detail() -> str:
        return f"windows:\n{windows_text(env)}\nflowork said:\n{app.output()}"

    def shot(name: str, box: dict[str, Any]) -> QImage:
        return photograph(env, name, box)

    looped = looped_flow(("Start", "Fetch", "Check", "Fix up"), retries=1)
    try:
        url = app.wait_for(r"is running in the tray; engine at (ws://\S+?)\. Logs").group(1)
        icon = poll(lambda: next((w for w in windows(env) if w["name"] == "Flowork" and w["depth"] > ROOT_CHILD_DEPTH
                                  and w["w"] <= 64 and w["h"] <= 64), None), what="the tray icon", detail=detail)

        async def runs() -> str:
            async with await EngineClient.connect(url, owner.key) as client:
                failed = await start(client, failing_flow(), preset_name="Nightly upload")
                await collect(client, failed)
                await save(client, "Import orders", looped)
                done = await start(client, looped, preset_name="Import orders")
                await collect(client, done)
                return await start(client, slow_flow(600), preset_name="Weekly report")
        running = asyncio.run(runs())
        xdotool(env, "mousemove", str(icon["x"] + icon["w"] // 2), str(icon["y"] + icon["h"] // 2), "click", "1")
        window = poll(lambda: window_named(env, "Flowork"), what="the window", detail=detail)
        ids = xdotool(env, "search", "--name", "^Flowork$").split()
        target = next(i for i in ids if int(xdotool(env, "getwindowgeometry", "--shell", i)
                                            .split("WIDTH=")[1].split()[0]) >= 500)
        xdotool(env, "windowfocus", "--sync", target)
        xdotool(env, "key", "Down", "Down", "Down")  # the third run from the top: the failed one
        shot("window-runs.png", window)
        xdotool(env, "key", "Up")  # the looped run: its timeline
        shot("window-timeline.png", window)

        async def ask() -> None:
            async with await EngineClient.connect(url, owner.key) as client:
                await start(client, approval_flow(), preset_name="Deploy")
                await client.next_event("MANUAL_APPROVAL_REQUESTED")
        asyncio.run(ask())
        title = "Approval needed: Deploy — Flowork"
        poll(lambda: any(w["name"].startswith(title) and w["h"] > 50 for w in windows(env)),
             what="the approval dialog", detail=detail)
        dialog_id = xdotool(env, "search", "--name", "^Approval needed: Deploy").split()[-1]
        xdotool(env, "windowfocus", "--sync", dialog_id)
        xdotool(env, "key", "Escape")  # the dialog goes; the request stays pending
        xdotool(env, "windowfocus", "--sync", target)
        xdotool(env, "key", "ctrl+Tab")
        # a click on the request's row (the table's first row, below the tab bar and its header)
        xdotool(env, "mousemove", str(window["x"] + 60), str(window["y"] + 68), "click", "1")
        approvals = shot("window-approvals.png", window)
        xdotool(env, "key", "ctrl+Tab")  # Automations (the engine offers them): none saved yet
        shot("window-automations.png", window)
        xdotool(env, "key", "ctrl+Tab")
        time.sleep(3)  # a couple of status samples more for the charts
        charts = shot("window-engine.png", window)
        assert changed_pixels(approvals, charts, window) > window["w"] * window["h"] // 10
        assert running
    finally:
        code = app.stop()
    assert code == 0, app.output()


def test_port_in_use_on_a_real_display(x_display, tmp_path):
    env = x_display
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    app = Flowork(["--port", str(port), "--config-dir", str(tmp_path / "config"), "--data-dir",
                   str(tmp_path / "data"), "--log-dir", str(tmp_path / "logs")], env=env)
    try:
        app.wait_for(r"engine port in use")
        dialog = poll(lambda: window_titled(env, "Port in use — Flowork"), what="the port dialog",
                      detail=lambda: windows_text(env) + app.output())
        photograph(env, "port-in-use.png", dialog)
        assert not any("Flowork is running" in line for line in app.lines)
    finally:
        code = app.stop()
        holder.close()
    assert code == 0, app.output()


def test_settings_fit_a_1280x800_screen_at_200_percent(tmp_path):
    xvfb = require_tool("Xvfb")
    require_tool("trayer")
    require_tool("openbox")
    log = tmp_path / "x-display.log"
    server, number = start_xvfb(xvfb, log, size="1280x800x24")
    env = dict(os.environ, DISPLAY=f":{number}", QT_QPA_PLATFORM="xcb", QT_SCALE_FACTOR="2")
    wm = start_window_manager(env, log)
    tray = start_trayer(env, log)
    app = Flowork(["--hidden", "--no-engine", "--port", "0", "--config-dir", str(tmp_path / "config"),
                   "--data-dir", str(tmp_path / "data"), "--log-dir", str(tmp_path / "logs")], env=env)
    detail = lambda: windows_text(env) + app.output()  # noqa: E731
    try:
        app.wait_for(r"is running in the tray")
        icon = poll(lambda: next((w for w in windows(env) if w["name"] == "Flowork" and w["depth"] > ROOT_CHILD_DEPTH
                                  and w["w"] <= 128), None), what="the tray icon", detail=detail)
        open_menu(env, icon, detail)
        xdotool(env, "key", "n")
        settings = poll(lambda: window_titled(env, "Settings — Flowork", 200), what="Settings", detail=detail)
        photograph(env, "settings-1280x800-at-200-percent.png", settings)
        assert settings["y"] + settings["h"] <= 800, settings  # Save is on the screen
    finally:
        code = app.stop()
        for proc in (tray, wm, server):
            stop(proc)
    assert code == 0, app.output()


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
        photograph(env, "status-window-no-tray.png", window)
        tray = start_trayer(env, log)
        icon = poll(lambda: tray_icon(env), what="Flowork's icon in the late tray", detail=detail)
        photograph(env, "late-tray.png", icon, min_colours=5)
    finally:
        code = app.stop()
        if tray is not None:
            stop(tray)
    assert code == 0, app.output()


def test_an_approval_survives_quitting_the_tray_app_on_a_real_display(x_display, tmp_path, owner):
    """Durable jobs as a person meets them (issue 13): a workflow waiting for an approval,
    started from a signed client, its dialog put aside; Quit Flowork from the tray menu, and in
    its question "Quit Flowork" (which keeps the workflow); `flowork` started again: the same
    approval is asked again (its dialog is back, and the client hears the same approval_id);
    answered, the job ends SUCCEEDED with the data of the nodes before and after the approval.
    Photographed for people."""
    from tests.desktop.test_desktop_approvals import approval_flow
    env = x_display
    config = tmp_path / "config"
    config.mkdir()
    (config / "desktop.json").write_text(json.dumps({"port": 0, "owners": [owner.address]}))
    args = ["--hidden", "--port", "0", "--webhook-port", "0", "--config-dir", str(config),
            "--data-dir", str(tmp_path / "data"), "--log-dir", str(tmp_path / "logs")]
    title = "Approval needed: Deploy"
    wf = approval_flow()
    wf["nodes"].insert(1, node("before", "set_data", data={"before": "checked"}))
    wf["connections"][0] = edge("t", "before")
    wf["connections"].insert(1, edge("before", "ask"))

    def started(app: Flowork) -> tuple[str, dict[str, Any]]:
        url = app.wait_for(r"is running in the tray; engine at (ws://\S+?)\. Logs").group(1)
        return url, poll(lambda: tray_icon(env), what="the tray icon",
                         detail=lambda: f"{windows_text(env)}\nflowork said:\n{app.output()}")

    first = Flowork(args, env=env)
    try:
        url, icon = started(first)

        async def ask() -> tuple[str, str]:
            async with await EngineClient.connect(url, owner.key) as client:
                job_id = await start(client, wf, preset_name="Deploy")
                asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
                return job_id, asked["approval_id"]
        job_id, approval_id = run_async(ask())
        dialog = poll(lambda: window_titled(env, title), what="the approval dialog")
        photograph(env, "durable-1-asked.png", dialog)
        press(env, f"^{title}", "Escape")  # put aside: the request stays pending
        open_menu(env, icon, lambda: windows_text(env))
        xdotool(env, "key", "q")  # Quit Flowork
        question = poll(lambda: window_titled(env, "Quit Flowork? — Flowork"), what="the question")
        photograph(env, "durable-2-quit-question.png", question)
        press(env, "^Quit Flowork\\?", "alt+q")  # "Quit Flowork": the workflow is kept
        assert first.proc.wait(60) == 0, first.output()
    finally:
        first.stop()

    second = Flowork(args, env=env)
    try:
        url, _ = started(second)
        dialog = poll(lambda: window_titled(env, title), what="the approval asked again")
        photograph(env, "durable-3-asked-again.png", dialog)

        async def asked_again() -> str:
            async with await EngineClient.connect(url, owner.key) as client:
                await client.request("request_settings")  # signs in: pending requests are re-sent
                return (await client.next_event("MANUAL_APPROVAL_REQUESTED"))["approval_id"]
        assert run_async(asked_again()) == approval_id
        # Approve, as a person does: a click (the button takes no keyboard focus, so that a
        # stray key never approves). It is the left one of the two at the dialog's lower right.
        xdotool(env, "mousemove", str(dialog["x"] + dialog["w"] - 139), str(dialog["y"] + dialog["h"] - 28),
                "click", "1")

        async def answer() -> dict:
            async with await EngineClient.connect(url, owner.key) as client:
                await client.request("request_settings")
                for _ in range(200):
                    data = (await client.request("request_job_status", job_id=job_id))["status_data"]
                    if data["status"] != "RUNNING":
                        return data
                    await asyncio.sleep(0.1)
                return data
        data = run_async(answer())
        assert data["status"] == "SUCCEEDED", data
        assert data["result"]["data"]["before"] == "checked" and data["result"]["data"]["result"] == "approved"
        assert data["result"]["data"]["approval"]["decided_by"] == "desktop", data
        photograph(env, "durable-4-answered.png")
    finally:
        code = second.stop()
    assert code == 0, second.output()
