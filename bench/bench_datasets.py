"""What appending a dataset row per run costs: workflow runs per second with a dataset_append
node and without it, in the same engine, rounds interleaved.

Engine (own process, loopback, data folder on disk): one client runs three workflows like
bench_workflow_rate (at most 64 jobs at once, every event read until each job's SUCCEEDED):
  - with: set_data -> dataset_append -> log_message (one row per run, committed before the
    node succeeds; many runs share a commit),
  - same shape: set_data -> set_data -> log_message (the same node count and events, no
    storage): the ratio against it is what the row itself costs,
  - plain: set_data -> log_message (bench_workflow_rate's workflow): the ratio against it also
    counts the third node's events.
Rounds rotate the order. After the run, the dataset must hold one row per appending run.

Targets: the row costs at most 10 %: runs per second with / same shape ≥ 0.90, and the engine
process's CPU time per run with / same shape ≤ 1.10 (CPU time depends less on what else runs on
the machine); the other ratio and the load average are reported.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from bench.common import Table, engine_args, fmt_ratio, header, median, new_key, parse_args, server_process
from bench.workflows import JobDriver, chain, execute_frames
from engine.client import EngineClient, Signer

WINDOW = 64
DATASET = "bench-runs"
WORKFLOWS = {
    "with": chain([("set_data", {"data": {"greeting": "hello", "n": 1}}),
                   ("dataset_append", {"dataset": DATASET}), ("log_message", {"message": "hello"})]),
    "same shape": chain([("set_data", {"data": {"greeting": "hello", "n": 1}}),
                         ("set_data", {"data": {"stored": False}}), ("log_message", {"message": "hello"})]),
    "plain": chain([("set_data", {"data": {"greeting": "hello", "n": 1}}),
                    ("log_message", {"message": "hello"})]),
}


async def measure(eng: Any, key: str, count: int, rounds: int) -> dict[str, Any]:
    signer = Signer(key)
    async with await EngineClient.connect(eng.url, key) as client:
        await client.request("create_dataset", name=DATASET)
    driver = await JobDriver.connect(eng.url, signer)
    rates: dict[str, list[float]] = {name: [] for name in WORKFLOWS}
    cpu: dict[str, list[float]] = {name: [] for name in WORKFLOWS}
    facts: dict[str, Any] = {"failed": 0, "appended": 0, "load": [os.getloadavg()[0]]}
    try:
        for name, wf in WORKFLOWS.items():
            await driver.run(execute_frames(signer, wf, 20, prefix=f"warm-{name[:4]}"), window=WINDOW)
        facts["appended"] += 20
        order = list(WORKFLOWS)
        for r in range(rounds):
            for name in order[r % 3:] + order[:r % 3]:
                jobs = execute_frames(signer, WORKFLOWS[name], count, prefix=f"r{r}-{name[:4]}")
                before = eng.cpu_seconds()
                elapsed = await driver.run(jobs, window=WINDOW)
                rates[name].append(count / elapsed)
                cpu[name].append((eng.cpu_seconds() - before) / count)
                facts["failed"] += sum(driver.status[job_id]["status"] != "SUCCEEDED" for job_id, _ in jobs)
                if name == "with":
                    facts["appended"] += count
            facts["load"].append(os.getloadavg()[0])
        facts["errors"] = driver.errors[:3]
    finally:
        await driver.close()
    async with await EngineClient.connect(eng.url, key) as client:
        listed = await client.request("request_datasets_list")
        facts["rows"] = next(d["count"] for d in listed["datasets"] if d["name"] == DATASET)
    facts["rates"] = {name: median(values) for name, values in rates.items()}
    facts["cpu"] = {name: median(values) for name, values in cpu.items()}
    return facts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    count, rounds = (150, 3) if args.quick else (2000, 6)
    header("dataset_append per run: runs per second with and without it", args.quick)
    key = new_key()
    with server_process("engine", *engine_args(Signer(key).address)) as eng:
        if not eng.info.get("runtime"):
            print("The engine has no workflow runtime yet (engine/runtime/runtime.py): skipped.")
            return 0
        facts = asyncio.run(asyncio.wait_for(measure(eng, key, count, rounds), 1800))
    rates, cpu = facts["rates"], facts["cpu"]
    t = Table(f"3-node workflows with and without a dataset_append node, {count:,} runs per round, "
              f"{rounds} rotating rounds, ≤ {WINDOW} running at once, data folder on disk")
    with_storage = rates["with"] / rates["same shape"]
    t.row("runs per second: with dataset_append vs the same shape without storage",
          f"{rates['with']:,.0f} /s", f"{rates['same shape']:,.0f} /s", fmt_ratio(with_storage),
          "≥ 0.90× (the row costs ≤ 10 %)", with_storage >= 0.90)
    t.row("runs per second: with dataset_append vs plain set_data -> log_message",
          f"{rates['with']:,.0f} /s", f"{rates['plain']:,.0f} /s", fmt_ratio(rates["with"] / rates["plain"]),
          "reported (includes a third node's events)")
    cpu_ratio = cpu["with"] / cpu["same shape"]
    t.row("engine CPU per run: with dataset_append vs the same shape", f"{cpu['with'] * 1e3:.3f} ms",
          f"{cpu['same shape'] * 1e3:.3f} ms", fmt_ratio(cpu_ratio),
          "≤ 1.10× (less dependent on other load)", cpu_ratio <= 1.10)
    t.row("rows stored", f"{facts['rows']:,}", f"{facts['appended']:,} appending runs", "",
          "one per run", facts["rows"] == facts["appended"])
    t.row("runs not SUCCEEDED", str(facts["failed"]), "", "", "0", facts["failed"] == 0)
    t.note("load average (1 min) during the run: " +
           ", ".join(f"{value:.1f}" for value in facts["load"]))
    if facts["errors"]:
        t.note(f"error replies: {facts['errors']}")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
