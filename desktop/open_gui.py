"""Open the web GUI in the user's browser, with the engine's WebSocket URL and ID in the link.

In a frozen Linux build PyInstaller points LD_LIBRARY_PATH at the bundle; a browser started with
that would load our libraries, so the original value (LD_LIBRARY_PATH_ORIG) is put back for the
moment the browser is launched.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

Opener = Callable[[str], bool]


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
