"""1,000 jobs of 10 nodes at once: all succeed; memory per job.

Engine (own process, loopback): one client sends 1,000 signed `execute_workflow` frames without
waiting, each a chain of 10 nodes whose first is an 8-second delay (so that all jobs are alive
at the same time, however fast the engine starts them), then 9 set_data nodes; it reads every frame until each job's terminal status.
The engine's resident memory is sampled every 50 ms: memory per running job = (highest sample
while they all wait - before) / jobs running then, where "while they all wait" is any sample
answered within the delay of the first frame's sending, so no delay can have ended (the
client hears of the ends late: judged by what it heard, the finishing jobs' memory counted as
waiting). The overall peak (when
all 1,000 finish at once, with their frames and history records in flight) is reported too. No baseline: the row asks for the count of successes and the memory.

Targets: all succeed; memory per running job at most 24 KiB.
"""

from __future__ import annotations

import asyncio
import time

from bench.common import Table, engine_args, fmt_mb, header, new_key, parse_args, server_process
from bench.workflows import JobDriver, chain, execute_frames
from engine.client import Signer


def workflow(delay_s: float):
    return chain([("delay", {"seconds": delay_s})] + [("set_data", {"data": {"step": i}}) for i in range(9)])


async def measure(eng, signer: Signer, jobs: int, delay_s: float) -> dict:
    driver = await JobDriver.connect(eng.url, signer)
    samples: list[tuple[float, int, int]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            status = await asyncio.to_thread(eng.command, "status")
            # Stamped once the answer is back: the engine read its memory before this time.
            samples.append((time.perf_counter(), status["rss"], status["running_jobs"]))
            await asyncio.sleep(0.05)

    try:
        await driver.run(execute_frames(signer, workflow(0), 5, prefix="warm"), timeout=120)
        await asyncio.sleep(0.5)
        before = (await asyncio.to_thread(eng.command, "status"))["rss"]
        frames = execute_frames(signer, workflow(delay_s), jobs, prefix="many")
        sampler = asyncio.create_task(sample())
        # No job of the burst can end its delay before `delay_s` after the first frame left.
        first_sent = time.perf_counter()
        elapsed = await driver.run(frames, timeout=900)
        stop.set()
        await sampler
        after = (await asyncio.to_thread(eng.command, "status"))
        statuses = [driver.status[job_id]["status"] for job_id, _ in frames]
        peak_rss = max(s[1] for s in samples)
        peak_running = max(s[2] for s in samples)
        # While they all wait in the delay: before the first delay of the burst can have
        # ended. (Not "before the client heard the first end": the client reads the end
        # burst's frames late, while the engine's memory already holds the finishing jobs.)
        waiting = [s for s in samples if s[0] < first_sent + delay_s] or samples
        waiting_rss = max(s[1] for s in waiting)
        waiting_jobs = max(s[2] for s in waiting)
        return {"elapsed": elapsed, "succeeded": statuses.count("SUCCEEDED"), "jobs": jobs,
                "before": before, "peak": peak_rss, "peak_running": peak_running,
                "waiting_rss": waiting_rss, "waiting_jobs": waiting_jobs,
                "after": after["rss"], "errors": driver.errors[:3], "frames": driver.frames}
    finally:
        stop.set()
        await driver.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    jobs, delay_s = (50, 0.5) if args.quick else (1000, 8.0)
    header(f"{jobs:,} jobs of 10 nodes at once", args.quick)
    signer = Signer(new_key())
    with server_process("engine", *engine_args(signer.address)) as eng:
        if not eng.info.get("runtime"):
            print("The engine has no workflow runtime yet (engine/runtime/runtime.py): skipped.")
            return 0
        r = asyncio.run(asyncio.wait_for(measure(eng, signer, jobs, delay_s), 1200))
    per_job = (r["waiting_rss"] - r["before"]) / max(1, r["waiting_jobs"])
    t = Table(f"{jobs:,} jobs of 10 nodes (a {delay_s:g} s delay, then 9 set_data) sent at once")
    t.row("jobs SUCCEEDED", f"{r['succeeded']:,} of {jobs:,}", "", "", "all", r["succeeded"] == jobs)
    t.row("jobs running at the same time (peak)", f"{r['peak_running']:,}", "", "", "reported")
    t.row("engine memory: before → peak → after", f"{fmt_mb(r['before'])} → {fmt_mb(r['peak'])} → "
          f"{fmt_mb(r['after'])}", "", "", "reported")
    t.row("memory per running job (all waiting in the delay)", f"{per_job / 1024:,.1f} KiB", "", "",
          "≤ 24 KiB", per_job <= 24 * 1024)
    t.row("memory per job at the overall peak (the 1,000 finishing at once)",
          f"{(r['peak'] - r['before']) / max(1, r['peak_running']) / 1024:,.1f} KiB", "", "", "reported")
    t.row("all jobs done after", f"{r['elapsed']:.2f} s", "", "", "reported")
    if r["errors"]:
        t.note(f"error replies: {r['errors']}")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
