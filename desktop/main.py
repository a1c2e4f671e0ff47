"""`flowork`: the tray app where there is a display, the headless engine where there is none.

The Qt event loop is a qasync loop (desktop/event_loop.py), so the engine runs in this process
on the same loop as the tray. A login start (--autostart, or --hidden) opens no window.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from typing import Sequence

from engine import __version__
from engine.config import LOG_LEVELS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flowork", description="Flowork Desktop: the Flowork Core "
                                "Engine in your tray. Without a display it runs the headless engine.")
    p.add_argument("--hidden", action="store_true", help="start without opening any window")
    p.add_argument("--autostart", action="store_true", help="started at login (implies --hidden)")
    p.add_argument("--port", type=int, help="listen on this port (saved in the settings)")
    p.add_argument("--webhook-port", type=int, help="the automations' webhook port (default 12346, "
                   "0 = any free port; saved in the settings)")
    p.add_argument("--config-dir", type=Path, help="where the desktop settings live (default: the "
                   "user's config folder)")
    p.add_argument("--data-dir", type=Path, help="where the engine keeps its data")
    p.add_argument("--log-dir", type=Path, help="where the rotating log file goes")
    p.add_argument("--no-engine", action="store_true", help="open the tray without starting the engine")
    p.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS,
                   default=(os.environ.get("FLOWORK_LOG_LEVEL") or "INFO").strip().upper(),
                   help="the log's level (default INFO, or $FLOWORK_LOG_LEVEL); job log lines are "
                        "written at DEBUG")
    p.add_argument("--version", action="version", version=f"flowork {__version__}")
    return p


def has_display() -> bool:
    """False on a Linux/BSD machine without X11 or Wayland (a server, an SSH session)."""
    if sys.platform in ("win32", "darwin"):
        return True
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc"):
        return True
    if os.environ.get("WAYLAND_DISPLAY"):
        return True
    display = os.environ.get("DISPLAY", "")
    local = re.fullmatch(r":(\d+)(?:\.\d+)?", display)
    if local and not Path(f"/tmp/.X11-unix/X{local.group(1)}").exists():
        return False  # a stale DISPLAY (an old SSH session, sudo): Qt would abort on it
    return bool(display)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not has_display():
        print("flowork: no display found (DISPLAY and WAYLAND_DISPLAY are unset or point to no "
              "running display), so the tray cannot open; running the headless engine instead "
              "(the same as flowork-engine).",
              file=sys.stderr, flush=True)
        from engine import cli
        engine_args: list[str] = []
        if args.port is not None:
            engine_args += ["--port", str(args.port)]
        if args.webhook_port is not None:
            engine_args += ["--webhook-port", str(args.webhook_port)]
        if args.data_dir is not None:
            engine_args += ["--data-dir", str(args.data_dir)]
        if args.log_dir is not None:
            engine_args += ["--log-dir", str(args.log_dir)]
        engine_args += ["--log-level", args.log_level]
        return cli.main(engine_args)
    return run_gui(args)


def freeze_startup_objects() -> None:
    """Move everything made at start-up (modules, Qt wrappers, the engine) out of the cyclic
    garbage collector's reach: a full collection otherwise walks all of it and, on a busy
    engine, pauses the shared loop (and the window) for 100 ms and more."""
    import gc
    gc.collect()
    gc.freeze()


def run_gui(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.config import DesktopConfig, config_dir
    from desktop.event_loop import DesktopEventLoop
    from desktop.single_instance import SingleInstance

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Flowork")
    app.setApplicationDisplayName("Flowork")
    app.setDesktopFileName("flowork")
    app.setQuitOnLastWindowClosed(False)
    folder = args.config_dir or config_dir()
    single = SingleInstance(folder)
    if not single.acquire():
        if single.ask_first_to_show():
            print("flowork: Flowork is already running; asked it to show itself.", flush=True)
            return 0
        print("flowork: another Flowork holds the lock but does not answer; if it hangs, end it "
              "and start again.", file=sys.stderr, flush=True)
        return 1

    from engine.logging_setup import setup_logging
    from desktop.app import DesktopApp
    from desktop.icons import app_icon
    from desktop.log_tail import LogTail

    config = DesktopConfig(folder=folder, data_dir=args.data_dir, log_dir=args.log_dir)
    # A windowed build (or a login start) may have no stderr at all.
    log_file = setup_logging(Path(config.log_dir), file_name="flowork-desktop.log",  # type: ignore[arg-type]
                             level=args.log_level, to_stderr=sys.stderr is not None)
    tail = LogTail()
    if args.port is not None:
        config.update(port=args.port)
    if args.webhook_port is not None:
        config.update(webhook_port=args.webhook_port)
    app.setWindowIcon(app_icon())
    loop = DesktopEventLoop(app)
    asyncio.set_event_loop(loop)
    desktop = DesktopApp(config, hidden=args.hidden or args.autostart, log_tail=tail)
    single.show_requested.connect(desktop.show_status_window)
    # Let Python see SIGINT/SIGTERM while Qt waits: a tick, and a handler that quits cleanly.
    ticker = QTimer()
    ticker.timeout.connect(lambda: None)
    ticker.start(300)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: loop.call_soon_threadsafe(desktop.quit))

    async def run() -> None:
        await desktop.start(start_engine=not args.no_engine)
        freeze_startup_objects()
        engine = desktop.supervisor.engine
        print(f"Flowork {__version__} is running in the tray"
              + ("" if desktop.tray else " (no system tray here: a status window is shown)")
              + (f"; engine at {engine.url}" if engine else f"; engine {desktop.supervisor.state.value}")
              + f". Logs: {log_file or 'terminal only'}", flush=True)
        await desktop.finished.wait()

    try:
        with loop:
            loop.run_until_complete(run())
    finally:
        ticker.stop()
        single.release()
    print("flowork: stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
