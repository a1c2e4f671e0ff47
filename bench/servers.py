"""The servers the benchmarks talk to, each in its own process so the clients' CPU is not the
server's: `python -m bench.servers echo` (a bare `websockets` echo server, the baseline) or
`python -m bench.servers engine --owner 0x... [--root DIR]` (the real Engine), or `qt-engine`
(the Engine inside a QApplication on a qasync loop, as the tray app runs it).

The first stdout line is `READY {"url": ..., "pid": ...}`. Then each stdin line is a command
answered with one JSON line (`rss`, and the engine's benchmark commands); end of stdin stops the
server. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Awaitable, Callable

Command = Callable[[list[str]], Awaitable[dict[str, Any]]]


async def _echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


def _rss() -> int:
    import psutil
    return psutil.Process(os.getpid()).memory_info().rss


async def _serve_commands(commands: dict[str, Command]) -> None:
    """Answer command lines until stdin closes."""
    commands = {"rss": lambda _args: _const({"rss": _rss()}), **commands}
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        name, *args = line.split()
        if name == "quit":
            return
        func = commands.get(name)
        try:
            answer = await func(args) if func else {"error": f"unknown command {name!r}"}
        except Exception as exc:  # noqa: BLE001 - the benchmark reports it
            logging.exception("command %s failed", name)
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


async def _const(value: dict[str, Any]) -> dict[str, Any]:
    return value


def _ready(url: str, **extra: Any) -> None:
    print("READY " + json.dumps({"url": url, "pid": os.getpid(), **extra}), flush=True)


async def run_echo(args: argparse.Namespace) -> None:
    from websockets.asyncio.server import serve
    # The same transport settings as the engine's server, so only the engine's work differs.
    async with serve(_echo, "127.0.0.1", 0, max_size=4 * 1024 * 1024, max_queue=16,
                     ping_interval=20, ping_timeout=20, close_timeout=5) as server:
        port = server.sockets[0].getsockname()[1]
        _ready(f"ws://127.0.0.1:{port}/")
        await _serve_commands({})


async def run_http(args: argparse.Namespace) -> None:
    """A bare aiohttp server doing a webhook run's visible work: parse the JSON body, add two
    fields (the two nodes), answer it as JSON. The floor under the engine's webhook figures."""
    from aiohttp import web

    async def hook(request: web.Request) -> web.Response:
        data = await request.json()
        data = {**data, "a": 1}
        data = {**data, "b": 2}
        return web.json_response(data)

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_route("*", "/webhook/{token}", hook)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    _ready(f"http://127.0.0.1:{port}/webhook/bench")
    try:
        await _serve_commands({})
    finally:
        await runner.cleanup()


def make_engine(data_dir: Path, owners: list[str], roots: list[Path], **overrides: Any) -> Any:
    """An Engine on an ephemeral loopback port, with its secrets key in memory (the benchmark
    never touches the user's keyring or data folder)."""
    from cryptography.fernet import Fernet

    from engine.app import Engine
    from engine.config import EngineConfig
    from engine.store.secret_key import KeySource
    options: dict[str, Any] = dict(host="127.0.0.1", port=0, engine_id="bench-engine",
                                   data_dir=data_dir, owners=tuple(owners),
                                   roots=tuple(r.resolve() for r in roots), status_interval=3600.0)
    config = EngineConfig(**{**options, **overrides})
    return Engine(config, key_source=KeySource(Fernet.generate_key(), "memory", "benchmark"))


async def run_engine(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="flowork-bench-data-") as tmp:
        # Logging as the real engine does it (a rotating file at INFO), minus the terminal.
        from engine.logging_setup import setup_logging
        setup_logging(Path(tmp) / "log", to_stderr=False)
        overrides = json.loads(args.config) if args.config else {}
        engine = make_engine(Path(args.data_dir or tmp), args.owner, [Path(r) for r in args.root],
                             **overrides)
        await engine.start()
        try:
            from bench import engine_commands
            commands = engine_commands.commands_for(engine)
            _ready(engine.url, runtime=engine.runtime is not None)
            await _serve_commands(commands)
        finally:
            await engine.stop()


def run_qt_engine(args: argparse.Namespace) -> None:
    """The Engine inside a QApplication on a qasync loop, as the tray app runs it (offscreen)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication
    from desktop.event_loop import DesktopEventLoop
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setQuitOnLastWindowClosed(False)
    loop = DesktopEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        loop.run_until_complete(run_engine(args))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.servers")
    p.add_argument("kind", choices=("echo", "engine", "qt-engine", "http"))
    p.add_argument("--owner", action="append", default=[])
    p.add_argument("--root", action="append", default=[])
    p.add_argument("--data-dir")
    p.add_argument("--config", help="EngineConfig overrides as a JSON object")
    args = p.parse_args(argv)
    stderr = logging.StreamHandler(sys.stderr)  # warnings only; the engine's INFO goes to its file
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter(f"[{args.kind} server] %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(stderr)
    try:
        if args.kind == "qt-engine":
            run_qt_engine(args)
        else:
            runner = {"echo": run_echo, "http": run_http}.get(args.kind, run_engine)
            asyncio.run(runner(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
