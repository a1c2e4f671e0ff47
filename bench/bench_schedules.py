"""100 interval rules firing every second for 60 s while the engine runs other work: fire
lateness and fires missed or doubled, against bare asyncio timers doing the same.

Engine (own process, loopback): a signed client saves 100 presets, each a schedule trigger
(every 1 s) -> set_data, so each becomes a rule anchored at its own fraction of a second. Meanwhile
a second client keeps 8 two-node workflows (set_data -> log_message) running at all times. Every
run started by a schedule is read from its final workflow_status_update: lateness = the job's
start_time - the fire's scheduled_for. A rule fired `missed` times less, or twice for one second,
than the seconds in the window say is counted. Baseline (this process, idle otherwise): 100
anchored loop.call_at timers, each re-armed for the next second, lateness = callback time - due.

Target: p99 lateness ≤ 50 ms, none missed or doubled.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from typing import Any

from bench.common import (Table, engine_args, fmt_ms, fmt_ratio, header, median, new_key,
                          parse_args, percentile, server_process)
from bench.workflows import JobDriver, chain, execute_frames, node, edge, workflow
from engine.client import EngineClient, Signer

OTHER_WINDOW = 8


def schedule_preset(i: int) -> dict[str, Any]:
    return workflow([node("t", "schedule_trigger", schedule_type="interval", interval_value="1",
                          interval_unit="seconds"),
                     node("s", "set_data", data={"rule": i})], [edge("t", "s")])


async def bare_timers(count: int, seconds: float) -> list[float]:
    loop = asyncio.get_running_loop()
    late: list[float] = []
    end = time.time() + seconds

    def fire(due: float) -> None:
        now = time.time()
        late.append(now - due)
        nxt = due + 1.0
        if nxt < end:
            loop.call_at(loop.time() + (nxt - time.time()), fire, nxt)

    base = time.time() + 1.0
    for i in range(count):
        due = base + i / count
        loop.call_at(loop.time() + (due - time.time()), fire, due)
    await asyncio.sleep(seconds + 1.5)
    return late


async def measure(eng: Any, key: str, rules: int, seconds: float) -> dict[str, Any]:
    signer = Signer(key)
    setup = await EngineClient.connect(eng.url, key)
    for i in range(rules):
        wf = schedule_preset(i)
        await setup.request("save_preset", name=f"every-second-{i}", workflow_data=wf,
                            signature=setup.signer.sign_workflow(wf))
    listed = (await setup.request("request_triggers"))["triggers"]
    await setup.close()
    driver = await JobDriver.connect(eng.url, signer)
    other_done = 0
    stop_other = asyncio.Event()

    async def other_work() -> None:
        nonlocal other_done
        wf = chain([("set_data", {"data": {"x": 1}}), ("log_message", {"message": "busy"})])
        while not stop_other.is_set():
            jobs = execute_frames(signer, wf, OTHER_WINDOW * 4, prefix="other")
            await driver.run(jobs, window=OTHER_WINDOW)
            other_done += len(jobs)

    await asyncio.sleep(2.0)  # every rule has fired at least once: their phases are settled
    window_start = time.time()
    cpu = eng.cpu_seconds()
    worker = asyncio.create_task(other_work())
    await asyncio.sleep(seconds)
    window_end = time.time()
    cpu = eng.cpu_seconds() - cpu
    stop_other.set()
    await worker
    await asyncio.sleep(1.5)  # the last fires of the window finish
    fires: dict[str, list[float]] = defaultdict(list)
    late: list[float] = []
    for data in driver.status.values():
        by = data.get("started_by") or {}
        if by.get("kind") != "schedule":
            continue
        event = ((data.get("result") or {}).get("data")) or {}
        due = event.get("scheduled_for")
        if due is None or not window_start <= due < window_end:
            continue
        fires[by["rule_id"]].append(due)
        late.append(data["start_time"] - due)
    await driver.close()
    missed = doubled = 0
    for rule in listed:
        got = fires.get(rule["rule_id"], [])
        if not got:
            missed += math.floor(window_end - window_start)
            continue
        phase = got[0] % 1.0
        first = math.ceil(window_start - phase) + phase
        expected = sum(1 for k in range(int(seconds) + 2) if window_start <= first + k < window_end)
        doubled += len(got) - len(set(round(d, 3) for d in got))
        missed += max(0, expected - len(set(round(d, 3) for d in got)))
    return {"late": late, "missed": missed, "doubled": doubled, "other": other_done,
            "cpu": cpu, "rules": len(listed)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    rules, seconds = (10, 5.0) if args.quick else (100, 60.0)
    header("Schedules: fire lateness under load", args.quick)
    key = new_key()
    signer = Signer(key)
    with server_process("engine", *engine_args(signer.address, extra=["--config", '{"webhook_port": 0}'])) as eng:
        facts = asyncio.run(asyncio.wait_for(measure(eng, key, rules, seconds), seconds + 600))
    bare = asyncio.run(bare_timers(rules, seconds))
    late = facts["late"]
    t = Table(f"{facts['rules']} interval rules every 1 s for {seconds:.0f} s, {OTHER_WINDOW} other "
              f"workflows running at all times")
    p50, p99 = percentile(late, 50), percentile(late, 99)
    b50, b99 = percentile(bare, 50), percentile(bare, 99)
    t.row("fire lateness p50", fmt_ms(p50), fmt_ms(b50), fmt_ratio(p50 / b50) if b50 > 0 else "", "reported")
    t.row("fire lateness p99", fmt_ms(p99), fmt_ms(b99), fmt_ratio(p99 / b99) if b99 > 0 else "",
          "≤ 50 ms", p99 <= 0.050)
    t.row("fire lateness max", fmt_ms(max(late)), fmt_ms(max(bare)), "", "reported")
    t.row("fires in the window", f"{len(late):,}", f"{len(bare):,}", "", "reported")
    t.row("fires missed", str(facts["missed"]), "", "", "0", facts["missed"] == 0)
    t.row("fires doubled", str(facts["doubled"]), "", "", "0", facts["doubled"] == 0)
    t.row("other workflows finished meanwhile", f"{facts['other']:,} ({facts['other'] / seconds:,.0f} /s)",
          "", "", "reported")
    t.row("engine CPU during the window", f"{facts['cpu'] / seconds * 100:.0f}% of one core", "", "", "reported")
    t.note("Lateness is measured from the fire's scheduled time to the start of its job in the "
           "engine (the job record's start_time); the baseline is bare asyncio timers in an "
           "otherwise idle process.")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
