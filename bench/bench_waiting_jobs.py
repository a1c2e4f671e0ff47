"""10,000 jobs waiting for a manual approval: engine memory per waiting job, then all approved.

Engine (own process, loopback, `suspend_after_s` 0.5 s): one client starts N jobs, each a
manual approval (1 hour to answer) followed by a set_data node, in batches of 250, and waits
after each batch until the engine has released the waiting ones from memory (the engine
process's `released_job_count()`), so at most about two batches are ever in memory at once.
Once all N are released, the engine's memory is read after a full garbage collection: its own
pages (USS, without shared libraries) and resident size (RSS). The baseline is the same
engine, in the same run, that did the same warm-up (5 jobs approved after being released, a
client connected) and then waited with no job: memory per waiting job = (engine with N -
engine with 0) / N. Then every approval is answered with a signed `manual_approval_response`
and every job must end SUCCEEDED (answered 250 at a time, each batch done before the next).

`--tracemalloc` also counts the Python heap (tracemalloc started after the warm-up in both
engines: what the waiting jobs' objects hold, without the allocator's free pages); it slows the
engine down and its own bookkeeping inflates USS, so it is off by default.

Target: ≤ 4 KiB of engine memory (USS) per waiting job, with 10,000 waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from bench.common import (Table, engine_args, fmt_mb, fresh_auth_blocks, header, new_key, parse_args,
                          server_process, signed_frames)
from bench.workflows import JobDriver, edge, execute_frames, node, workflow
from engine.client import Signer

TARGET_BYTES = 4 * 1024
BATCH = 250
WARM_JOBS = 5
TRACE_FRAMES = 12      # frames kept per traced allocation: who called json.loads, too
SIGNATURE_CACHE = 8192  # engine/auth/frame_auth.py keeps this many verified signatures


def asking_workflow() -> dict[str, Any]:
    ask = node("ask", "manual_approval", message="Waiting for the benchmark", timeout_s=3600)
    after = node("after", "set_data", data={"approved": True})
    link = {**edge("ask", "after"), "source_port_name": "APPROVED"}
    return workflow([ask, after], [link])


def approval_frames(signer: Signer, approvals: list[str]) -> list[str]:
    return [json.dumps({"auth": auth, "payload": {"type": "manual_approval_response",
                                                  "request_id": f"ok-{i}", "approval_id": approval_id,
                                                  "decision": "APPROVED"}})
            for i, (approval_id, auth) in enumerate(zip(approvals, fresh_auth_blocks(signer, len(approvals))))]


class WaitingBench:
    """One benchmark engine process and its client."""

    def __init__(self, eng: Any, driver: JobDriver, signer: Signer) -> None:
        self.eng, self.driver, self.signer = eng, driver, signer

    async def command(self, line: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.eng.command, line, 300.0)

    async def wait_released(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (await self.command("status"))["released_jobs"] < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} jobs were released from memory in {timeout:g} s")
            await asyncio.sleep(0.1)

    async def start_waiting(self, count: int, prefix: str, timeout: float) -> list[str]:
        """Start `count` asking jobs in batches, each batch released before the next starts."""
        job_ids: list[str] = []
        released_before = (await self.command("status"))["released_jobs"]
        for first in range(0, count, BATCH):
            frames = execute_frames(self.signer, asking_workflow(), min(BATCH, count - first),
                                    prefix=f"{prefix}{first}")
            for job_id, text in frames:
                await self.driver.ws.send(text)
                job_ids.append(job_id)
            # The previous batch is out of memory before the next one comes in.
            await self.wait_released(released_before + max(0, len(job_ids) - BATCH), timeout)
        await self.wait_released(released_before + count, timeout)
        return job_ids

    async def approve(self, job_ids: list[str], timeout: float) -> tuple[float, list[str]]:
        """Answer every job's approval, a batch at a time (each batch's jobs end before the
        next is answered: one client reading every event of thousands of jobs waking at once
        falls behind, and the engine rightly closes a connection 4,096 essential frames
        behind); (seconds until all ended, their statuses)."""
        deadline = time.monotonic() + timeout
        while any(j not in self.driver.approvals for j in job_ids):
            if time.monotonic() > deadline:
                raise TimeoutError("not every job asked for its approval")
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        statuses: list[str] = []
        for first in range(0, len(job_ids), BATCH):
            batch = job_ids[first:first + BATCH]
            done = [self.driver.terminal(j) for j in batch]
            for text in approval_frames(self.signer, [self.driver.approvals[j] for j in batch]):
                await self.driver.ws.send(text)
            ended = await asyncio.wait_for(asyncio.gather(*done), max(1.0, deadline - time.monotonic()))
            statuses += [data["status"] for data in ended]
        return time.perf_counter() - started, statuses


async def fill_signature_cache(url: str, signer: Signer, count: int) -> None:
    """`count` signed request_settings, each with a fresh signature, pipelined on a connection
    of their own: the engine's cache of verified signatures (bounded, 8,192) is as full in the
    engine with no job as in the one that verified a signature per job start."""
    from websockets.asyncio.client import connect
    async with connect(url, max_size=None, ping_interval=None) as ws:
        for first in range(0, count, 1000):
            frames = signed_frames(signer, min(1000, count - first), "request_settings", prefix=f"fill{first}-")
            for text in frames:
                await ws.send(text)
            for _ in frames:
                await asyncio.wait_for(ws.recv(), 60)


async def measure(eng: Any, signer: Signer, jobs: int, trace: bool, settle_s: float,
                  fill: int) -> dict[str, Any]:
    driver = await JobDriver.connect(eng.url, signer)
    bench = WaitingBench(eng, driver, signer)
    try:
        warm = await bench.start_waiting(WARM_JOBS, "warm", 120)
        _, warm_statuses = await bench.approve(warm, 120)
        assert warm_statuses == ["SUCCEEDED"] * WARM_JOBS, warm_statuses
        await fill_signature_cache(eng.url, signer, fill)
        if trace:
            await bench.command(f"trace {TRACE_FRAMES}")
        before = await bench.command("memory")
        started = time.perf_counter()
        job_ids = await bench.start_waiting(jobs, "wait", 1800) if jobs else []
        start_s = time.perf_counter() - started
        await asyncio.sleep(settle_s)
        waiting = await bench.command("memory")
        top = (await bench.command("top 12"))["top"] if trace and jobs else []
        status = await bench.command("status")
        approve_s, statuses = await bench.approve(job_ids, 1800) if jobs else (0.0, [])
        after = await bench.command("memory")
        return {"before": before, "waiting": waiting, "after": after, "start_s": start_s,
                "approve_s": approve_s, "succeeded": statuses.count("SUCCEEDED"),
                "running_jobs": status["running_jobs"], "released": waiting["released_jobs"],
                "errors": driver.errors[:3], "top": top}
    finally:
        await driver.close()


def run_engine(signer: Signer, jobs: int, suspend_after_s: float, trace: bool, settle_s: float,
               fill: int) -> dict[str, Any] | None:
    config = json.dumps({"suspend_after_s": suspend_after_s, "webhook_port": 0})
    with server_process("engine", *engine_args(signer.address), "--config", config) as eng:
        if not eng.info.get("runtime"):
            return None
        if eng.command("status").get("released_jobs") is None:
            return {"unsupported": True}
        return asyncio.run(asyncio.wait_for(measure(eng, signer, jobs, trace, settle_s, fill), 3600))


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, help="waiting jobs (default 10,000; 200 with --quick)")
    p.add_argument("--suspend-after-s", type=float, default=0.5,
                   help="the engine's suspend_after_s: how long a job waits before it is released")
    p.add_argument("--tracemalloc", action="store_true", help="also count the Python heap (slower)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv, _options)
    jobs = args.jobs if args.jobs is not None else (200 if args.quick else 10_000)
    settle_s = 1.0
    fill = min(SIGNATURE_CACHE, jobs)
    header(f"{jobs:,} jobs waiting for an approval", args.quick)
    signer = Signer(new_key())
    base = run_engine(signer, 0, args.suspend_after_s, args.tracemalloc, settle_s, fill)
    if base is None or base.get("unsupported"):
        print("The engine does not release waiting jobs from memory yet (durable jobs, "
              "Runtime.released_job_count): skipped.")
        return 0
    r = run_engine(signer, jobs, args.suspend_after_s, args.tracemalloc, settle_s, fill)
    assert r is not None
    per_uss = (r["waiting"]["uss"] - base["waiting"]["uss"]) / max(1, jobs)
    per_rss = (r["waiting"]["rss"] - base["waiting"]["rss"]) / max(1, jobs)
    own = (r["waiting"]["uss"] - r["before"]["uss"]) / max(1, jobs)
    t = Table(f"{jobs:,} jobs waiting for a manual approval, released from memory after "
              f"{args.suspend_after_s:g} s (baseline: the same engine with none)")
    t.row("jobs released from memory while waiting", f"{r['released']:,} of {jobs:,}", "", "",
          "all", r["released"] == jobs)
    t.row("engine memory per waiting job (USS vs the engine with none)", f"{per_uss / 1024:,.2f} KiB",
          f"{fmt_mb(base['waiting']['uss'])} with none", f"{fmt_mb(r['waiting']['uss'])} with {jobs:,}",
          "≤ 4 KiB", per_uss <= TARGET_BYTES)
    t.row("engine memory per waiting job (RSS vs the engine with none)", f"{per_rss / 1024:,.2f} KiB",
          f"{fmt_mb(base['waiting']['rss'])} with none", f"{fmt_mb(r['waiting']['rss'])} with {jobs:,}",
          "reported")
    t.row("the same engine's USS growth from before the jobs, per job", f"{own / 1024:,.2f} KiB", "", "",
          "reported")
    if args.tracemalloc:
        heap = (r["waiting"]["traced"] - r["before"]["traced"]
                - (base["waiting"]["traced"] - base["before"]["traced"])) / max(1, jobs)
        t.row("Python heap per waiting job (tracemalloc)", f"{heap / 1024:,.2f} KiB", "", "", "reported")
        if r["top"]:
            t.note("the largest heap lines below are the engine's with the jobs, not net of the one "
                   "without: the engine/auth lines and json.loads from engine/protocol/frames.py are "
                   "its bounded cache of verified signatures (the parsed auth texts are its keys), "
                   "as full in both")
        for item in r["top"]:
            t.note(f"heap while waiting: {item['bytes'] / max(1, jobs):,.0f} bytes per job in "
                   f"{item['count']:,} blocks at {item['where']}")
    t.row("unfinished jobs the engine counts (its status: running_jobs)", f"{r['running_jobs']:,}", "", "", "reported")
    t.row("starting them all (batches of 250, each released before the next)",
          f"{r['start_s']:.1f} s", "", "", "reported")
    t.row("jobs SUCCEEDED after every approval was answered", f"{r['succeeded']:,} of {jobs:,}", "", "",
          "all", r["succeeded"] == jobs)
    t.row("all approved jobs done after", f"{r['approve_s']:.1f} s", "", "", "reported")
    t.row("engine USS: before → all waiting → all done",
          f"{fmt_mb(r['before']['uss'])} → {fmt_mb(r['waiting']['uss'])} → {fmt_mb(r['after']['uss'])}",
          "", "", "reported")
    if r["errors"]:
        t.note(f"error replies: {r['errors']}")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
