"""2-node workflow executions per second with all events streamed to a client, against the same
number of bare asyncio tasks calling the two module functions directly.

Engine (own process, loopback): one client sends signed `execute_workflow` frames for a
set_data -> log_message workflow, at most 64 jobs running at once, and reads every frame the
engine sends (replies, status updates, node metrics, connection updates, log lines) until each
job's SUCCEEDED. (With far more jobs in flight, the bursts exceed the client's outbox of 1,024
frames and the engine drops droppable frames by design: then not all events are streamed.)
Also measured with the data folder on tmpfs, where a commit costs no fsync wait. Baseline (this process): the same number of asyncio tasks, each awaiting
set_data's and log_message's `run` with a bare context. Rounds alternate.

Targets: report the ratio and executions per second; at least 1,000 per second on 2 cores.
"""

from __future__ import annotations

import asyncio
import shutil
from typing import Any
import tempfile
import time
from pathlib import Path

from bench.common import (Table, engine_args, fmt_ratio, header, median, new_key, parse_args,
                          server_process, temp_dir)
from bench.workflows import (BareContext, JobDriver, chain, execute_frames, load_builtin, new_payload)
from engine.client import Signer

WINDOW = 64
SPECS = [("set_data", {"data": {"greeting": "hello"}}), ("log_message", {"message": "hello"})]


async def bare_round(count: int) -> float:
    set_data, log_message = load_builtin("set_data"), load_builtin("log_message")

    async def one() -> None:
        payload = await set_data.run(BareContext(SPECS[0][1]), new_payload())
        await log_message.run(BareContext(SPECS[1][1]), payload)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return count / (time.perf_counter() - start)


async def measure(eng: Any, signer: Signer, count: int, rounds: int) -> tuple[list[float], list[float], dict]:
    driver = await JobDriver.connect(eng.url, signer)
    facts: dict = {}
    try:
        wf = chain(SPECS)
        await driver.run(execute_frames(signer, wf, 20, prefix="warm"), window=WINDOW)
        engine_rates, bare_rates = [], []
        for r in range(rounds):
            jobs = execute_frames(signer, wf, count, prefix=f"r{r}")
            frames_before = driver.frames

            async def engine_round() -> None:
                cpu = eng.cpu_seconds()
                elapsed = await driver.run(jobs, window=WINDOW)
                engine_rates.append(count / elapsed)
                facts.setdefault("cpu_per_job", []).append((eng.cpu_seconds() - cpu) / count)

            async def baseline_round() -> None:
                bare_rates.append(await bare_round(count))

            steps = [engine_round, baseline_round] if r % 2 else [baseline_round, engine_round]
            for step in steps:
                await step()
            statuses = [driver.status[job_id]["status"] for job_id, _ in jobs]
            facts["failed"] = facts.get("failed", 0) + sum(s != "SUCCEEDED" for s in statuses)
            facts["frames_per_job"] = (driver.frames - frames_before) / count
        facts["errors"] = driver.errors[:3]
        # Read while the client is still connected: the count lives with its connection.
        facts["dropped"] = (await asyncio.to_thread(eng.command, "status"))["dropped"]
        return engine_rates, bare_rates, facts
    finally:
        await driver.close()


def run_variant(signer: Signer, count: int, rounds: int, data_dir: str | None
                ) -> tuple[float, float, dict] | None:
    extra = ["--data-dir", data_dir] if data_dir else []
    with server_process("engine", *engine_args(signer.address, extra=extra)) as eng:
        if not eng.info.get("runtime"):
            return None
        engine_rates, bare_rates, facts = asyncio.run(asyncio.wait_for(
            measure(eng, signer, count, rounds), 1200))
    return median(engine_rates), median(bare_rates), facts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    count, rounds = (200, 2) if args.quick else (2000, 4)
    header("2-node workflow executions per second", args.quick)
    signer = Signer(new_key())
    t = Table(f"2-node workflows (set_data -> log_message), {count} per round, {rounds} interleaved "
              f"rounds, ≤ {WINDOW} running at once")
    variants = [("data folder on disk", None)]
    if not args.quick and Path("/dev/shm").is_dir():
        variants.append(("data folder on tmpfs (no fsync wait)", "/dev/shm"))
    for label, base in variants:
        with temp_dir() as tmp_default:
            folder = tempfile.mkdtemp(prefix="flowork-bench-", dir=base) if base else str(tmp_default)
            try:
                result = run_variant(signer, count, rounds, folder)
            finally:
                if base:
                    shutil.rmtree(folder, ignore_errors=True)
        if result is None:
            print("The engine has no workflow runtime yet (engine/runtime/runtime.py): skipped.")
            return 0
        e, b, facts = result
        t.row(f"executions per second, {label}", f"{e:,.0f} /s", f"{b:,.0f} /s", fmt_ratio(e / b),
              "≥ 1,000 /s; ratio reported", e >= 1000)
        cpu = median(facts["cpu_per_job"])
        t.row(f"engine CPU per execution, {label}", f"{cpu * 1e3:.2f} ms = {1 / cpu:,.0f} per CPU-second",
              "", "", "reported (independent of other load)")
        t.row(f"jobs not SUCCEEDED, {label}", str(facts["failed"]), "", "", "0", facts["failed"] == 0)
        t.row(f"frames streamed per job, {label}", f"{facts['frames_per_job']:.1f}", "", "",
              "all (none dropped)", facts["dropped"] == 0)
        if facts["errors"]:
            t.note(f"error replies ({label}): {facts['errors']}")
        if facts["dropped"]:
            t.note(f"{label}: the engine dropped {facts['dropped']} droppable frames for the client")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
