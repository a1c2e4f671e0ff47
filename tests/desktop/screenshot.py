"""`python -m tests.desktop.screenshot OUT.png`: save the whole X screen ($DISPLAY) as a PNG.

Run as its own process with the xcb platform, so the test process can stay offscreen."""

from __future__ import annotations

import sys

from PySide6.QtGui import QGuiApplication


def main() -> int:
    app = QGuiApplication(sys.argv[:1])
    return 0 if app.primaryScreen().grabWindow(0).save(sys.argv[1]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
