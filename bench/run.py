"""Run every benchmark (`make bench`, or `make bench-quick` for the quick mode CI uses).

`python -m bench.run [--quick] [--only NAME ...] [--output FILE]` prints the machine's details,
then each script's table. Each script runs in its own process, one after the other (they
would disturb each other's timings). The exit code is non-zero when a script fails to run;
a missed target is a line in a table, not a failure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import REPO_ROOT, machine_info

SCRIPTS = ("bench_auth", "bench_roundtrip", "bench_clients", "bench_listing", "bench_tray",
           "bench_preauth_flood", "bench_window",
           "bench_workflow_rate", "bench_chain", "bench_many_jobs", "bench_waiting_jobs", "bench_slow_client",
           "bench_schedules", "bench_webhook",
           "bench_datasets", "bench_vs_nodered")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small counts (CI checks the scripts run)")
    p.add_argument("--only", nargs="+", choices=SCRIPTS, help="run only these scripts")
    p.add_argument("--output", type=Path, help="also write everything printed to this file")
    args = p.parse_args(argv)
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    say("# Flowork benchmarks" + (" (quick mode)" if args.quick else ""))
    say("")
    say(f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: " +
        ", ".join(f"{k} {v}" for k, v in machine_info().items()))
    failed = []
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    for name in args.only or SCRIPTS:
        cmd = [sys.executable, "-m", f"bench.{name}"] + (["--quick"] if args.quick else [])
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True,
                              timeout=3600)
        say(proc.stdout.rstrip())
        say(f"\n({name}: {time.monotonic() - started:.0f} s)")
        if proc.returncode != 0:
            failed.append(name)
            say(f"\n**{name} failed with exit code {proc.returncode}** (its error output is above)")
    if failed:
        say(f"\nFailed to run: {', '.join(failed)}")
    if args.output:
        args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
