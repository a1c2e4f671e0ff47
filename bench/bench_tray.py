"""Tray app start to engine ready (offscreen), against `python -c "import PySide6.QtWidgets"`;
idle CPU over 30 s; resident memory.

`flowork` (python -m desktop --hidden, in its own process, offscreen, with throw-away config,
data and log folders and no OS keyring) is ready when it prints the engine's URL; the benchmark
then opens a WebSocket to that URL to check the engine really answers the handshake. Also
measured the same way: the Engine alone inside a QApplication on a qasync loop (bench.servers
qt-engine), which is what the tray adds its windows to. Starts alternate with the baseline;
medians are reported. Idle: after start-up settles, the process's CPU time (children included)
over 30 s, divided by 30 s; resident memory at the end.

Targets: report both start times; idle CPU under 1 percent; resident memory reported.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import (REPO_ROOT, Table, _readline, fmt_mb, fmt_ms, fmt_ratio, header, median,
                          new_key, address_of, parse_args, stop_process, temp_dir)

URL_IN_LINE = re.compile(r"engine at (ws://\S+?)\.(?:\s|$)")


def isolated_env(home: Path) -> dict[str, str]:
    """The app sees a throw-away home, offscreen Qt, no OS keyring and no session bus: nothing of
    the user's."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "QT_QPA_PLATFORM": "offscreen",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring", "HOME": str(home),
           # No notification ever reaches the developer's own desktop session.
           "DBUS_SESSION_BUS_ADDRESS": f"unix:path={home}/no-session-bus"}
    for var, sub in (("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"),
                     ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    for var in list(env):
        if var.startswith("FLOWORK_"):
            del env[var]
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def import_baseline(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import PySide6.QtWidgets"], env=env, check=True, timeout=120)
    return time.perf_counter() - start


def launch(kind: str, folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], float, str]:
    """Start the app; return (process, seconds to engine ready, engine URL)."""
    if kind == "flowork":
        cmd = [sys.executable, "-m", "desktop", "--hidden", "--port", str(free_port()),
               "--config-dir", str(folder / "config"), "--data-dir", str(folder / "data"),
               "--log-dir", str(folder / "log")]
    else:
        cmd = [sys.executable, "-m", "bench.servers", "qt-engine", "--owner", address_of(new_key()),
               "--data-dir", str(folder / "data"), "--config", '{"status_interval": 10}']
    start = time.perf_counter()
    with open(folder / "stderr.txt", "w") as errors:  # the app's log lines, kept out of the table
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=errors, text=True, bufsize=1)
    try:
        deadline = time.monotonic() + 120
        while True:
            line = _readline(proc, max(1.0, deadline - time.monotonic()))
            if kind == "qt-engine" and line.startswith("READY "):
                import json
                url = json.loads(line[6:])["url"]
                break
            match = URL_IN_LINE.search(line)
            if match:
                url = match.group(1)
                break
            if "running in the tray" in line:
                raise RuntimeError(f"the app started without its engine: {line.strip()}")
        ready = time.perf_counter() - start
        asyncio.run(check_handshake(url))
        return proc, ready, url
    except BaseException:
        stop(proc)
        raise


async def check_handshake(url: str) -> None:
    from websockets.asyncio.client import connect
    async with connect(url, open_timeout=30) as ws:
        await ws.ping()


def tree(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    root = psutil.Process(proc.pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def rss(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def idle(proc: subprocess.Popen[str], settle_s: float, idle_s: float) -> tuple[float, int]:
    """(CPU percent of one core over idle_s, resident bytes) of the process and its children."""
    time.sleep(settle_s)
    procs = tree(proc)
    before, start = cpu_seconds(procs), time.monotonic()
    time.sleep(idle_s)
    used, elapsed = cpu_seconds(procs) - before, time.monotonic() - start
    return 100.0 * used / elapsed, rss(procs)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the app quits cleanly on SIGTERM
    stop_process(proc)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    starts, settle_s, idle_s = (1, 1.0, 3.0) if args.quick else (5, 3.0, 30.0)
    header("Tray app start, idle CPU and memory (offscreen)", args.quick)
    have_app = (REPO_ROOT / "desktop" / "main.py").exists()
    kinds = (["flowork"] if have_app else []) + ["qt-engine"]
    times: dict[str, list[float]] = {k: [] for k in [*kinds, "import"]}
    idle_result: dict[str, tuple[float, int]] = {}
    with temp_dir() as tmp:
        env = isolated_env(tmp / "home")
        import_baseline(env)  # warm the page cache for both sides
        for i in range(starts):
            for kind in (kinds if i % 2 == 0 else kinds[::-1]):
                times["import"].append(import_baseline(env))
                run_dir = tmp / f"{kind}-{i}"
                run_dir.mkdir()
                proc, ready, _url = launch(kind, run_dir, env)
                try:
                    times[kind].append(ready)
                    if i == starts - 1:
                        idle_result[kind] = idle(proc, settle_s, idle_s)
                finally:
                    stop(proc)
    base = median(times["import"])
    t = Table(f"start to engine ready, median of {starts} (offscreen); idle over {idle_s:.0f} s")
    t.row("import PySide6.QtWidgets (baseline)", fmt_ms(base), fmt_ms(base), "1.00×", "reported")
    labels = {"flowork": "`flowork` (tray app)", "qt-engine": "Engine in QApplication + qasync"}
    for kind in kinds:
        ready = median(times[kind])
        t.row(f"{labels[kind]}: start to engine ready", fmt_ms(ready), fmt_ms(base),
              fmt_ratio(ready / base), "reported")
    for kind in kinds:
        cpu, mem = idle_result[kind]
        t.row(f"{labels[kind]}: idle CPU", f"{cpu:.2f} %", "", "", "< 1 %", cpu < 1.0)
        t.row(f"{labels[kind]}: resident memory", fmt_mb(mem), "", "", "reported")
    if not have_app:
        t.note("desktop/main.py does not exist yet: only the Engine inside a QApplication was measured.")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
