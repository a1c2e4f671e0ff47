"""The Flowork window: open to first paint with 100,000 runs stored; the UI thread's longest stall
while the engine runs 1,000 two-node runs per second with the window open.

The real tray app (DesktopApp, offscreen, throw-away folders, no OS keyring) in its own process,
its engine in process as always. 100,000 finished runs are written into its store in one
transaction. Open to first paint: from `open_window()` (the window is made anew each time) to
the first paint of the runs table with rows in it; the first open and the median of the others.
Lag probe: with the window open on its runs, following the newest, a 5 ms Qt timer records the
longest gap between two of its ticks, while a client in another process sends signed
`execute_workflow` frames for a set_data -> log_message workflow at a steady 1,000 per second
(at most 64 runs in flight, so an engine slower than that runs flat out without a backlog) and
reads every frame the engine sends back; the same again with the window closed is the baseline. Also reported: the runs that finished per second,
the window's table rows and the process's resident memory before and after (bounded, not
growing with the runs).

Targets: open to first paint ≤ 300 ms; longest UI stall ≤ 50 ms at 1,000 runs per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (REPO_ROOT, Table, address_of, fmt_mb, fmt_ms, header, median, new_key,
                          parse_args, temp_dir)

SPECS = [("set_data", {"data": {"greeting": "hello"}}), ("log_message", {"message": "hello"})]
PROBE_MS = 5
IN_FLIGHT = 64  # runs started and not yet ended, at most (as bench_workflow_rate): no backlog


# -- the client process: paced execute_workflow frames ---------------------------------------

async def drive(url: str, key: str, rate: float, seconds: float) -> dict[str, Any]:
    from bench.workflows import JobDriver, chain, execute_frames
    from engine.client import Signer
    count = int(rate * seconds)
    jobs = execute_frames(Signer(key), chain(SPECS), count, prefix="lag")
    driver = await JobDriver.connect(url)
    gate = asyncio.Semaphore(IN_FLIGHT)
    try:
        futures = []
        start = time.perf_counter()
        for i, (job_id, text) in enumerate(jobs):
            ahead = start + i / rate - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
            await gate.acquire()
            future = driver.terminal(job_id)
            future.add_done_callback(lambda _f: gate.release())
            futures.append(future)
            await driver.ws.send(text)
        sent = time.perf_counter() - start
        await asyncio.wait_for(asyncio.gather(*futures), 300)
        done = time.perf_counter() - start
        failed = sum(driver.status[j]["status"] != "SUCCEEDED" for j, _ in jobs)
        return {"count": count, "send_s": sent, "done_s": done, "failed": failed,
                "errors": driver.errors[:3]}
    finally:
        await driver.close()


# -- the app process -------------------------------------------------------------------------

def measure(params: dict[str, Any]) -> dict[str, Any]:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from desktop.event_loop import DesktopEventLoop
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setQuitOnLastWindowClosed(False)
    loop = DesktopEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        return loop.run_until_complete(_measure(params))


async def _measure(params: dict[str, Any]) -> dict[str, Any]:
    import psutil
    import shiboken6
    from PySide6.QtCore import QEvent, QObject

    from desktop.app import DesktopApp
    from desktop.autostart import Autostart
    from desktop.config import DesktopConfig

    folder = Path(params["folder"])
    key = new_key()
    owner = address_of(key)
    config = DesktopConfig(folder=folder / "config", data_dir=folder / "data", log_dir=folder / "log")
    config.update(port=0, owners=(owner,))
    desktop = DesktopApp(config, tray=True, hidden=True, opener=lambda _url: True,
                         autostart=Autostart(system="Linux", home=folder))
    await desktop.start()
    while desktop.engine is None:
        await asyncio.sleep(0.05)
    engine = desktop.engine
    # Keep every run: the default retention (500 per owner) would trim the 100,000 at once.
    await engine.settings.save(owner.lower(), {"history_max_jobs": 10_000_000,
                                               "history_retention_days": 36500})
    stored = int(params["stored"])
    now = time.time()

    def fill(conn: Any) -> None:
        statuses = ("SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "FAILED", "STOPPED")
        conn.executemany(
            "INSERT INTO jobs (job_id, address, preset_name, mode, status, start_time, end_time, "
            "error) VALUES (?, ?, ?, 'EXECUTE', ?, ?, ?, ?)",
            [(f"stored-{i:07d}", owner.lower(), f"Import {i % 25}", statuses[i % 5],
              now - stored + i, now - stored + i + 1.2, "timeout" if i % 5 == 3 else None)
             for i in range(stored)])
    filled = time.perf_counter()
    await engine.db.transaction(fill)
    fill_s = time.perf_counter() - filled
    from desktop.main import freeze_startup_objects
    freeze_startup_objects()  # as `flowork` does once it has started

    class FirstPaint(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.at: float | None = None
            self.model: Any = None

        def eventFilter(self, obj: Any, event: Any) -> bool:
            if (event.type() == QEvent.Type.Paint and self.at is None and self.model is not None
                    and self.model.rowCount() > 0):
                self.at = time.perf_counter()
            return False

    opens: list[float] = []
    for _ in range(int(params["opens"])):
        probe = FirstPaint()
        started = time.perf_counter()
        window = desktop.window.open()
        probe.model = window.runs.model
        window.runs.table.viewport().installEventFilter(probe)
        while probe.at is None:
            await asyncio.sleep(0.001)
            if time.perf_counter() - started > 30:
                raise RuntimeError("the window never painted its runs")
        opens.append(probe.at - started)
        window.runs.table.viewport().removeEventFilter(probe)
        window.hide()
        desktop.window.window = None
        shiboken6.delete(window)
        await asyncio.sleep(0.2)

    # the lag probe: with the window open on its runs, and (the baseline) with it closed
    process = psutil.Process()
    rss_before = process.memory_info().rss
    phases: dict[str, list[dict[str, Any]]] = {"window": [], "closed": []}
    order = ["closed", "window"] * int(params["rounds"])
    for i, phase in enumerate(order if params["rounds"] < 2 else order[:2] + order[2:][::-1]):
        if phase == "window":
            window = desktop.window.open()
        else:
            desktop.window.hide()
        await asyncio.sleep(1.0)
        phases[phase].append(await _probe(engine, key, params))
    rows = window.runs.model.rowCount()
    newest = window.runs.model.run_at(0)
    rss_after = process.memory_info().rss
    result = {"opens": opens, "fill_s": fill_s, "phases": phases, "rows": rows,
              "rss_before": rss_before, "rss_after": rss_after,
              "newest_shown": newest.job_id if newest else None,
              "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    await desktop.shutdown()
    return result


async def _probe(engine: Any, key: str, params: dict[str, Any]) -> dict[str, Any]:
    """Runs from a client process at the offered rate; the longest gap of a 5 ms Qt timer, and
    the longest garbage-collector pause, meanwhile."""
    import gc
    from PySide6.QtCore import QTimer
    gaps: list[float] = []
    last = [time.perf_counter()]
    gc_pauses: list[float] = []
    gc_started = [0.0]

    def tick() -> None:
        t = time.perf_counter()
        gaps.append(t - last[0])
        last[0] = t

    def on_gc(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses.append(time.perf_counter() - gc_started[0])
    timer = QTimer()
    timer.setInterval(PROBE_MS)
    timer.timeout.connect(tick)
    gc.callbacks.append(on_gc)
    cpu = os.times()
    timer.start()
    try:
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.bench_window", "--drive",
            json.dumps({"url": engine.url, "key": key, "rate": params["rate"], "seconds": params["seconds"]}),
            cwd=str(REPO_ROOT), stdout=asyncio.subprocess.PIPE)
        out, _ = await client.communicate()
    finally:
        timer.stop()
        gc.callbacks.remove(on_gc)
    used = os.times()
    gaps.sort()
    return {"driven": json.loads(out.decode().strip().splitlines()[-1]),
            "max_gap": gaps[-1] if gaps else 0.0,
            "p99_gap": gaps[int(len(gaps) * 0.99)] if gaps else 0.0,
            "max_gc": max(gc_pauses, default=0.0),
            "cpu_s": (used.user + used.system) - (cpu.user + cpu.system),
            "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def main(argv: list[str] | None = None) -> int:
    def extra(p: argparse.ArgumentParser) -> None:
        p.add_argument("--measure", help=argparse.SUPPRESS)
        p.add_argument("--drive", help=argparse.SUPPRESS)
    args = parse_args(__doc__.splitlines()[0], argv, extra)
    if args.drive:
        p = json.loads(args.drive)
        print(json.dumps(asyncio.run(drive(p["url"], p["key"], p["rate"], p["seconds"]))), flush=True)
        return 0
    if args.measure:
        print(json.dumps(measure(json.loads(args.measure))), flush=True)
        return 0
    stored, opens, rate, seconds, rounds = (10_000, 3, 200, 2.0, 1) if args.quick else (100_000, 7, 1000, 10.0, 2)
    header("The Flowork window: open to first paint, UI stalls under load (offscreen)", args.quick)
    from bench.bench_tray import isolated_env
    with temp_dir() as tmp:
        env = isolated_env(tmp / "home")
        params = {"folder": str(tmp / "app"), "stored": stored, "opens": opens, "rate": rate,
                  "seconds": seconds, "rounds": rounds}
        proc = subprocess.run([sys.executable, "-m", "bench.bench_window", "--measure", json.dumps(params)],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True, timeout=1800)
        if proc.returncode != 0:
            print(proc.stdout)
            return proc.returncode
        r = json.loads(proc.stdout.strip().splitlines()[-1])
    first, rest = r["opens"][0], median(r["opens"][1:]) if len(r["opens"]) > 1 else r["opens"][0]
    loads = [p["load"] for ps in r["phases"].values() for p in ps if p.get("load") is not None]
    t = Table(f"{stored:,} runs stored; {rounds} round(s) of {int(rate * seconds):,} two-node runs sent at "
              f"{rate:,} per second, with the window open and closed (alternating); load average "
              f"{min(loads, default=0):.1f} to {max(loads, default=0):.1f} during the rounds")
    t.row(f"window open to first paint with {stored:,} runs, first open", fmt_ms(first), "", "",
          "≤ 300 ms", first <= 0.3)
    t.row(f"window open to first paint, median of {len(r['opens']) - 1} more", fmt_ms(rest), "", "",
          "≤ 300 ms", rest <= 0.3)
    shown, closed = r["phases"]["window"], r["phases"]["closed"]
    worst = max(p["max_gap"] for p in shown)
    base = max(p["max_gap"] for p in closed)
    t.row(f"longest UI-thread stall ({PROBE_MS} ms probe), window open (baseline: closed)",
          fmt_ms(worst), fmt_ms(base), f"{worst / base:.2f}×" if base else "", "≤ 50 ms", worst <= 0.05)
    t.row("99th percentile probe interval, window open (baseline: closed)",
          fmt_ms(max(p["p99_gap"] for p in shown)), fmt_ms(max(p["p99_gap"] for p in closed)), "", "reported")
    t.row("longest garbage-collector pause, window open (closed)", fmt_ms(max(p["max_gc"] for p in shown)),
          fmt_ms(max(p["max_gc"] for p in closed)), "", "reported")
    rate_open = min(p["driven"]["count"] / p["driven"]["done_s"] for p in shown)
    rate_closed = min(p["driven"]["count"] / p["driven"]["done_s"] for p in closed)
    t.row("runs finished per second, window open (closed)", f"{rate_open:,.0f} /s", f"{rate_closed:,.0f} /s",
          "", f"{rate:,} /s offered")
    t.row("app process CPU seconds per round, window open (closed)",
          f"{median(p['cpu_s'] for p in shown):.1f} s", f"{median(p['cpu_s'] for p in closed):.1f} s", "", "reported")
    failed = sum(p["driven"]["failed"] for ps in r["phases"].values() for p in ps)
    t.row("failed runs", str(failed), "", "", "0", failed == 0)
    t.row("window's table rows at the end (bounded)", str(r["rows"]), "", "", "≤ 500", r["rows"] <= 500)
    t.row("resident memory before / after the rounds", f"{fmt_mb(r['rss_before'])} / {fmt_mb(r['rss_after'])}",
          "", "", "reported")
    t.note(f"The {stored:,} stored runs were written in {r['fill_s']:.1f} s (one transaction). The "
           f"newest run shown at the end: {r['newest_shown']}.")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
