"""Open the web GUI in the user's browser, with the engine's WebSocket URL and ID in the link.

In a frozen Linux build PyInstaller points LD_LIBRARY_PATH at the bundle; a browser started with
that would load our libraries, so the original value (LD_LIBRARY_PATH_ORIG) is put back for the
moment the browser is launched.

On Linux and the BSDs the link goes through xdg-open, whose exit status says whether a browser
took it (Qt's openUrl only says that xdg-open started): a default browser that fails to start
is then reported, and the app shows the link to copy instead of doing nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import sys
from typing import Callable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

log = logging.getLogger(__name__)

Opener = Callable[[str], bool]
XDG_OPEN_WAIT_S = 15.0  # xdg-open still running by then: it is the browser, in the foreground


def gui_link(gui_url: str, ws_url: str, engine_id: str) -> str:
    """The GUI URL with `engineUrl` and `engineId` added to its query (existing ones kept)."""
    parts = urlsplit(gui_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in ("engineUrl", "engineId")]
    query += [("engineUrl", ws_url), ("engineId", engine_id)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), parts.fragment))


@contextlib.contextmanager
def system_library_path() -> Iterator[None]:
    """Inside a frozen Linux build, the user's own LD_LIBRARY_PATH while the block runs."""
    if not (getattr(sys, "frozen", False) and sys.platform.startswith("linux")):
        yield
        return
    saved = os.environ.get("LD_LIBRARY_PATH")
    original = os.environ.get("LD_LIBRARY_PATH_ORIG")
    if original is not None:
        os.environ["LD_LIBRARY_PATH"] = original
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("LD_LIBRARY_PATH", None)
        else:
            os.environ["LD_LIBRARY_PATH"] = saved


def default_opener(url: str) -> bool:
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices
    if QDesktopServices.openUrl(QUrl(url)):
        return True
    import webbrowser
    return webbrowser.open(url)


def open_url(url: str, opener: Opener | None = None) -> bool:
    with system_library_path():
        return bool((opener or default_opener)(url))


def _user_environment() -> dict[str, str]:
    env = dict(os.environ)
    if getattr(sys, "frozen", False) and sys.platform.startswith("linux"):
        original = env.pop("LD_LIBRARY_PATH_ORIG", None)
        env.pop("LD_LIBRARY_PATH", None)
        if original is not None:
            env["LD_LIBRARY_PATH"] = original
    return env


def xdg_open(url: str, program: str, wait_s: float = XDG_OPEN_WAIT_S) -> bool:
    """Blocking (run it in a thread): True if xdg-open handed the URL to a program."""
    try:
        proc = subprocess.Popen([program, url], env=_user_environment(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError as exc:
        log.warning("cannot run %s: %s", program, exc)
        return False
    try:
        code = proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        return True  # never killed: it may be the browser itself
    if code != 0:
        log.warning("%s could not open %s (exit status %d)", program, url.split("?", 1)[0], code)
    return code == 0


async def launch(url: str, opener: Opener | None = None) -> bool:
    """Open `url`; False when nothing took it (the caller shows it to copy)."""
    if opener is None and not sys.platform.startswith(("win32", "darwin")):
        program = shutil.which("xdg-open")
        if program is not None:
            return await asyncio.to_thread(xdg_open, url, program)
    return open_url(url, opener)
