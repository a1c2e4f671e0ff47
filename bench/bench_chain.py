"""A 1,000-node chain: the engine's time per node with the module work taken out, against direct
calls of the same module in a loop.

Engine (own process, loopback): one client runs a chain of 1,000 set_data nodes and reads every
frame until SUCCEEDED; the time is from sending `execute_workflow` to receiving the terminal
status. Baseline (this process): the same module's `run` awaited 1,000 times in a loop with a
bare context. Per-node overhead = (engine time - direct time) / 1,000. Also measured: the same
chain with no client of its owner connected (no event delivery), timed by the engine's own
start/end, and the engine's CPU time per node. Rounds alternate.

Target: report the per-node overhead; at most 50 microseconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.common import (PlainClient, Table, engine_args, fmt_ms, fmt_ratio, fmt_us, header,
                          median, new_key, parse_args, server_process, signed_frames)
from bench.workflows import BareContext, JobDriver, chain, execute_frames, load_builtin, new_payload
from engine.client import Signer

CONFIG = {"data": {"step": 1}}


async def direct(nodes: int) -> float:
    set_data = load_builtin("set_data")
    payload = new_payload()
    start = time.perf_counter()
    for _ in range(nodes):
        payload = await set_data.run(BareContext(CONFIG), payload)
    return time.perf_counter() - start


async def unheard_run(eng: Any, signer: Signer, wf: dict[str, Any]) -> float:
    """The chain with no client of its owner connected (the starter leaves once the job is
    accepted): the runtime's own cost, without event delivery. The engine's start/end times."""
    starter = await PlainClient.connect(eng.url)
    # Signed in with a small frame first: the engine takes at most 64 KiB before that.
    await starter.round_trip(signed_frames(signer, 1, "request_settings", prefix="in")[0], "in0")
    job_id, text = execute_frames(signer, wf, 1, prefix="quiet")[0]
    await starter.round_trip(text, job_id, timeout=60)
    starter.ws.transport.abort()
    while (await asyncio.to_thread(eng.command, "status"))["running_jobs"]:
        await asyncio.sleep(0.01)
    checker = await PlainClient.connect(eng.url)
    try:
        frame = signed_frames(signer, 1, "request_job_status", prefix="s", job_id=job_id)[0]
        await checker.ws.send(frame)
        while True:
            reply = json.loads(await asyncio.wait_for(checker.ws.recv(), 30))
            if reply.get("request_id") == "s0":
                break
    finally:
        await checker.close()
    data = reply.get("status_data") or {}
    if data.get("status") != "SUCCEEDED":
        raise RuntimeError(f"the unheard chain did not succeed: {reply}")
    return float(data["end_time"]) - float(data["start_time"])


async def measure(eng: Any, signer: Signer, nodes: int, rounds: int) -> dict[str, list[float]]:
    wf = chain([("set_data", CONFIG)] * nodes)
    driver = await JobDriver.connect(eng.url, signer)
    out: dict[str, list[float]] = {"engine": [], "direct": [], "engine_own": [], "frames": [], "cpu": [], "quiet": []}
    try:
        await driver.run(execute_frames(signer, wf, 1, prefix="warm"), timeout=300)
        for r in range(rounds):
            jobs = execute_frames(signer, wf, 1, prefix=f"chain{r}")

            async def engine_round() -> None:
                before, cpu = driver.frames, eng.cpu_seconds()
                out["engine"].append(await driver.run(jobs, timeout=300))
                out["cpu"].append(eng.cpu_seconds() - cpu)
                data = driver.status[jobs[0][0]]
                if data.get("status") != "SUCCEEDED":
                    raise RuntimeError(f"the chain did not succeed: {data}")
                if data.get("start_time") and data.get("end_time"):
                    out["engine_own"].append(float(data["end_time"]) - float(data["start_time"]))
                out["frames"].append(driver.frames - before)

            async def direct_round() -> None:
                out["direct"].append(await direct(nodes))

            async def quiet_round() -> None:
                out["quiet"].append(await unheard_run(eng, signer, wf))

            for step in ([engine_round, quiet_round, direct_round] if r % 2
                         else [direct_round, quiet_round, engine_round]):
                await step()
    finally:
        await driver.close()
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    nodes, rounds = (100, 2) if args.quick else (1000, 7)
    header(f"A {nodes}-node chain", args.quick)
    signer = Signer(new_key())
    # The default loop guard (max_node_runs 10,000) allows the chain; the frame limit must hold
    # a 1,000-node workflow (about 200 KB).
    with server_process("engine", *engine_args(signer.address)) as eng:
        if not eng.info.get("runtime"):
            print("The engine has no workflow runtime yet (engine/runtime/runtime.py): skipped.")
            return 0
        out = asyncio.run(asyncio.wait_for(measure(eng, signer, nodes, rounds), 1200))
    engine_t, direct_t = median(out["engine"]), median(out["direct"])
    per_node = (engine_t - direct_t) / nodes
    t = Table(f"{nodes}-node chain of set_data (median of {rounds} interleaved rounds)")
    t.row("whole chain, client-observed", fmt_ms(engine_t), fmt_ms(direct_t), fmt_ratio(engine_t / direct_t),
          "reported")
    if out["engine_own"]:
        t.row("whole chain, engine's own start/end", fmt_ms(median(out["engine_own"])), fmt_ms(direct_t),
              fmt_ratio(median(out["engine_own"]) / direct_t), "reported")
    t.row("engine time per node, module work excluded", fmt_us(per_node), fmt_us(direct_t / nodes) + " (module)",
          "", "≤ 50 µs", per_node <= 50e-6)
    quiet = median(out["quiet"])
    t.row("engine time per node, no client listening (engine's own start/end)",
          fmt_us((quiet - direct_t) / nodes), "", "", "≤ 50 µs (for context)", (quiet - direct_t) / nodes <= 50e-6)
    cpu_per_node = (median(out["cpu"]) - direct_t) / nodes
    t.row("engine CPU per node, module work excluded", fmt_us(cpu_per_node), "", "",
          "reported (independent of other load)")
    t.row("frames streamed per run", f"{median(out['frames']):,.0f}", "", "", "reported")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
