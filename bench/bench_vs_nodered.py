"""This engine against Node-RED (bench/nodered.py), same machine, same run, interleaved rounds.

1. Client-driven 2-node runs per second, 16 in flight: Node-RED `http in` -> 2 function nodes ->
   `http response` over keep-alive HTTP; this engine signed `execute_workflow` (pre-signed, a
   fresh signature per frame) -> 2 set_data -> every frame read up to the terminal status.
   CPU per run of each engine's process. Target: >= 1x Node-RED.
2. Per-node overhead: a 1,000-node chain minus a 2-node chain, one run at a time, timed by each
   engine's own clock (Node-RED: hrtime in the first and last function node; this engine: the
   job's start/end), this engine with a GUI client reading every frame and with none; Node-RED
   function nodes and change nodes. Target: <= 1x Node-RED's function node.
3. Fan-out: a node's output wired to 10 nodes, each mutating its own copy of a ~100 KB object
   graph (850 records with nested objects, built fresh per run by the node before the window);
   from the fan node done to the 10th sink done (Node-RED: hrtime; this engine: the node
   metrics' timestamps); and the same with {"x": 1}. Targets: 100 KB <= 0.5x, tiny <= 1x.

Without Node.js and npm the Node-RED columns say so (an error in CI, where they are installed).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from bench import nodered as nr
from bench.common import (PlainClient, Table, engine_args, fmt_ratio, fmt_us, header, median,
                          new_key, parse_args, server_process, signed_frames, temp_dir)
from bench.workflows import JobDriver, chain, edge, execute_frames, node, workflow
from engine.client import Signer

IN_FLIGHT = 16
FAN = 10
RECORDS = 850

BUILD_PY = f'''
async def run(ctx, payload):
    """A fresh ~100 KB object graph (or a tiny one), built before the measured window."""
    if ctx.config.get("tiny"):
        return {{"data": {{"x": 1}}, "history": payload["history"]}}
    records = [{{"id": i, "name": "record %d" % i, "tags": ["alpha", "beta"],
                 "meta": {{"created": 1700000000 + i, "owner": {{"id": i % 7, "team": "t%d" % (i % 3)}}}}}}
               for i in range({RECORDS})]
    return {{"data": {{"records": records}}, "history": payload["history"]}}
'''
TOUCH_PY = '''
async def run(ctx, payload):
    """Mutates its own copy, as a branch may."""
    data = payload["data"]
    if "records" in data:
        data["records"][0]["touched"] = ctx.node_id
    else:
        data["x"] = ctx.node_id
    return payload
'''
BUILD_JS = f'''
if (msg.payload.tiny) {{ msg.payload = {{x: 1}}; return msg; }}
const records = [];
for (let i = 0; i < {RECORDS}; i++) {{
  records.push({{id: i, name: "record " + i, tags: ["alpha", "beta"],
                meta: {{created: 1700000000 + i, owner: {{id: i % 7, team: "t" + (i % 3)}}}}}});
}}
msg.payload = {{records: records}};
return msg;
'''


def install_components(data_dir: Path) -> None:
    for module_id, code in (("bench_build", BUILD_PY), ("bench_touch", TOUCH_PY)):
        folder = data_dir / "components" / "modules" / module_id
        folder.mkdir(parents=True, exist_ok=True)
        # Pure functions of their input, like Node-RED's function nodes here: safe to run
        # again after a crash, so no commit before each run (engine README, "Durable jobs").
        (folder / "manifest.json").write_text(json.dumps({"name": module_id, "properties": [],
                                                          "idempotent": True,
                                                          "output_ports": [{"name": "output"}]}))
        (folder / "module.py").write_text(code)


# -- Node-RED flows ----------------------------------------------------------------------------

def nr_two() -> list[dict[str, Any]]:
    return [nr.http_in("/two", "f1"), nr.function("f1", "msg.payload.greeting = 'hello'; return msg;", "f2"),
            nr.function("f2", "msg.payload.done = true; return msg;", "r2"), nr.http_response("r2")]


def nr_chain(path: str, nodes: int, kind: str) -> list[dict[str, Any]]:
    """`nodes` nodes; the first and last are function nodes holding the clock."""
    p = path.strip("/")
    ids = [f"{p}-{i}" for i in range(nodes)]
    out = [nr.http_in(path, ids[0]), nr.http_response(f"{p}-resp")]
    for i, node_id in enumerate(ids):
        then = ids[i + 1] if i + 1 < nodes else f"{p}-resp"
        if i == 0:
            out.append(nr.function(node_id, "msg.t0 = global.get('hrtime')(); msg.payload.step = 1; return msg;", then))
        elif i == nodes - 1:
            out.append(nr.function(node_id, "msg.payload.step = 1; msg.payload = {ns: Number(global.get('hrtime')() - msg.t0)}; return msg;", then))
        elif kind == "change":
            out.append(nr.change_set(node_id, "payload.step", "1", "num", then))
        else:
            out.append(nr.function(node_id, "msg.payload.step = 1; return msg;", then))
    return out


def nr_fanout() -> list[dict[str, Any]]:
    sinks = [f"sink{i}" for i in range(FAN)]
    sink_body = ("if (msg.payload.records) { msg.payload.records[0].touched = node.name; } else { msg.payload.x = node.name; }\n"
                 "const n = (global.get('fan_n') || 0) + 1; global.set('fan_n', n);\n"
                 f"if (n < {FAN}) return null;\n"
                 "global.set('fan_n', 0);\n"
                 "msg.payload = {ns: Number(global.get('hrtime')() - global.get('fan_t0'))};\nreturn msg;")
    out = [nr.http_in("/fan", "build"), nr.function("build", BUILD_JS, "fan"),
           nr.function("fan", "global.set('fan_n', 0); global.set('fan_t0', global.get('hrtime')()); return msg;", *sinks),
           nr.http_response("fan-resp")]
    out += [nr.function(s, sink_body, "fan-resp") for s in sinks]
    return out


CHAIN_N = {True: 100, False: 1000}


def all_flows(quick: bool) -> list[dict[str, Any]]:
    n = CHAIN_N[quick]
    return (nr_two() + nr_chain("/fn-long", n, "function") + nr_chain("/fn-short", 2, "function")
            + nr_chain("/chg-long", n, "change") + nr_chain("/chg-short", 2, "change") + nr_fanout())


# -- measurements ------------------------------------------------------------------------------

async def nr_rate(red: nr.NodeRed, count: int) -> tuple[float, float]:
    """(runs per second, CPU seconds per run) with IN_FLIGHT keep-alive clients."""
    raw = nr.KeepAliveClient.request(red.port, "/two", b'{"x": 1}')
    clients = [await nr.KeepAliveClient.connect(red.port) for _ in range(IN_FLIGHT)]
    left = count

    async def worker(c: nr.KeepAliveClient) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await asyncio.wait_for(c.post(raw), 60)

    try:
        cpu = red.cpu_seconds()
        start = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients))
        elapsed = time.perf_counter() - start
        return count / elapsed, (red.cpu_seconds() - cpu) / count
    finally:
        for c in clients:
            await c.close()


async def nr_once(red: nr.NodeRed, path: str, body: bytes = b'{"x": 1}') -> float:
    c = await nr.KeepAliveClient.connect(red.port)
    try:
        reply = await asyncio.wait_for(c.post(nr.KeepAliveClient.request(red.port, path, body)), 120)
        return json.loads(reply)["ns"] / 1e9
    finally:
        await c.close()


async def engine_rate(eng: Any, driver: JobDriver, signer: Signer, count: int) -> tuple[float, float, int]:
    wf = chain([("set_data", {"data": {"greeting": "hello"}}), ("set_data", {"data": {"done": True}})])
    jobs = execute_frames(signer, wf, count, prefix="rate")
    cpu = eng.cpu_seconds()
    elapsed = await driver.run(jobs, window=IN_FLIGHT)
    failed = sum(driver.status[j]["status"] != "SUCCEEDED" for j, _ in jobs)
    return count / elapsed, (eng.cpu_seconds() - cpu) / count, failed


async def engine_chain(driver: JobDriver, signer: Signer, nodes: int) -> float:
    wf = chain([("set_data", {"data": {"step": 1}})] * nodes)
    job_id, text = execute_frames(signer, wf, 1, prefix=f"chain{nodes}")[0]
    await driver.run([(job_id, text)], timeout=300)
    data = driver.status[job_id]
    if data.get("status") != "SUCCEEDED":
        raise RuntimeError(f"the chain did not succeed: {data}")
    return float(data["end_time"]) - float(data["start_time"])


async def engine_chain_unheard(eng: Any, signer: Signer, nodes: int) -> float:
    from bench.bench_chain import unheard_run
    return await unheard_run(eng, signer, chain([("set_data", {"data": {"step": 1}})] * nodes))


class MetricReader:
    """A GUI-like client that keeps the node metrics of the jobs it starts."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.metrics: dict[str, list[dict[str, Any]]] = {}
        self.done: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            job_id = frame.get("job_id")
            if frame.get("type") == "NODE_EXECUTION_METRIC":
                self.metrics.setdefault(job_id, []).append(frame)
            elif frame.get("type") == "workflow_status_update" and frame["status_data"]["status"] in ("SUCCEEDED", "FAILED", "STOPPED"):
                future = self.done.get(job_id)
                if future is not None and not future.done():
                    future.set_result(frame["status_data"])

    async def fan_window(self, signer: Signer, tiny: bool) -> float:
        nodes = [node("build", "bench_build", tiny=tiny), node("fan", "set_data", data={})]
        nodes += [node(f"sink{i}", "bench_touch") for i in range(FAN)]
        edges = [edge("build", "fan")] + [edge("fan", f"sink{i}") for i in range(FAN)]
        job_id, text = execute_frames(signer, workflow(nodes, edges), 1, prefix="fan")[0]
        self.done[job_id] = asyncio.get_running_loop().create_future()
        await self.ws.send(text)
        status = await asyncio.wait_for(self.done[job_id], 120)
        if status["status"] != "SUCCEEDED":
            raise RuntimeError(f"the fan-out did not succeed: {status}")
        ok = [m for m in self.metrics.pop(job_id, []) if m["status"] == "SUCCESS"]
        fan_done = next(m["timestamp"] for m in ok if m["node_id"] == "fan")
        sinks = [m["timestamp"] for m in ok if m["node_id"].startswith("sink")]
        if len(sinks) != FAN:
            raise RuntimeError(f"{len(sinks)} of {FAN} sinks reported")
        return max(sinks) - fan_done

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()


async def measure(eng: Any, red: nr.NodeRed | None, signer: Signer, quick: bool) -> dict[str, list[float]]:
    from websockets.asyncio.client import connect
    out: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        out.setdefault(key, []).append(value)

    n = CHAIN_N[quick]
    runs, rounds = (300, 2) if quick else (5000, 5)
    chain_rounds, fan_rounds = (2, 3) if quick else (7, 15)
    driver = await JobDriver.connect(eng.url, signer)
    reader = MetricReader(await connect(eng.url, max_size=None, ping_interval=None))
    try:
        await reader.ws.send(signed_frames(signer, 1, "request_settings")[0])
        # Warm both up.
        await engine_rate(eng, driver, signer, 50)
        await engine_chain(driver, signer, n)
        await reader.fan_window(signer, tiny=False)
        if red is not None:
            await nr_rate(red, 200)
            for path in ("/fn-long", "/chg-long"):
                await nr_once(red, path)
            await nr_once(red, "/fan", b'{"tiny": false}')
        for r in range(max(rounds, chain_rounds, fan_rounds)):
            steps = []
            if r < rounds:
                async def rate_engine() -> None:
                    rate, cpu, failed = await engine_rate(eng, driver, signer, runs)
                    add("rate_engine", rate), add("cpu_engine", cpu), add("rate_failed", failed)

                async def rate_red() -> None:
                    rate, cpu = await nr_rate(red, runs)
                    add("rate_red", rate), add("cpu_red", cpu)
                steps += [rate_engine] + ([rate_red] if red else [])
            if r < chain_rounds:
                async def chain_engine() -> None:
                    cpu0 = eng.cpu_seconds()
                    long = await engine_chain(driver, signer, n)
                    cpu1 = eng.cpu_seconds()
                    short = await engine_chain(driver, signer, 2)
                    cpu2 = eng.cpu_seconds()
                    add("chain_engine", (long - short) / (n - 2))
                    add("chain_cpu_engine", ((cpu1 - cpu0) - (cpu2 - cpu1)) / (n - 2))

                async def chain_quiet() -> None:
                    add("chain_quiet", (await engine_chain_unheard(eng, signer, n)
                                        - await engine_chain_unheard(eng, signer, 2)) / (n - 2))

                async def chain_red() -> None:
                    cpu0 = red.cpu_seconds()
                    long = await nr_once(red, "/fn-long")
                    cpu1 = red.cpu_seconds()
                    short = await nr_once(red, "/fn-short")
                    cpu2 = red.cpu_seconds()
                    add("chain_red_fn", (long - short) / (n - 2))
                    add("chain_cpu_red", ((cpu1 - cpu0) - (cpu2 - cpu1)) / (n - 2))
                    add("chain_red_chg", (await nr_once(red, "/chg-long") - await nr_once(red, "/chg-short")) / (n - 2))
                steps += [chain_engine, chain_quiet] + ([chain_red] if red else [])
            if r < fan_rounds:
                async def fan_engine() -> None:
                    add("fan_big_engine", await reader.fan_window(signer, tiny=False))
                    add("fan_tiny_engine", await reader.fan_window(signer, tiny=True))

                async def fan_red() -> None:
                    add("fan_big_red", await nr_once(red, "/fan", b'{"tiny": false}'))
                    add("fan_tiny_red", await nr_once(red, "/fan", b'{"tiny": true}'))
                steps += [fan_engine] + ([fan_red] if red else [])
            for step in (steps if r % 2 == 0 else steps[::-1]):
                await step()
    finally:
        await driver.close()
        await reader.close()
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    header("This engine against Node-RED", args.quick)
    signer = Signer(new_key())
    problem = nr.available()
    if problem and nr.required():
        raise SystemExit(f"Node-RED cannot run: {problem}")
    with temp_dir() as data_dir:
        install_components(data_dir)
        with server_process("engine", *engine_args(signer.address, extra=["--data-dir", str(data_dir)])) as eng:
            if problem:
                out = asyncio.run(measure(eng, None, signer, args.quick))
            else:
                with nr.NodeRed(all_flows(args.quick), ready_path="/two") as red:
                    out = asyncio.run(asyncio.wait_for(measure(eng, red, signer, args.quick), 3000))
    red_label = f"Node-RED {nr.version()} (Node.js {nr.node_version()})" if not problem else f"Node-RED: {problem}"
    has_red = not problem

    def red(key: str) -> float | None:
        return median(out[key]) if has_red and out.get(key) else None

    n = CHAIN_N[args.quick]
    t = Table(f"vs {red_label}; medians of interleaved rounds")
    rate_e, rate_r = median(out["rate_engine"]), red("rate_red")
    t.row(f"2-node runs per second, {IN_FLIGHT} in flight (engine: signed execute_workflow, all frames read)",
          f"{rate_e:,.0f} /s", f"{rate_r:,.0f} /s" if rate_r else "n/a",
          fmt_ratio(rate_e / rate_r) if rate_r else "", "≥ 1× Node-RED", rate_e >= rate_r if rate_r else None)
    cpu_e, cpu_r = median(out["cpu_engine"]), red("cpu_red")
    t.row("CPU per 2-node run (each engine's process)", fmt_us(cpu_e), fmt_us(cpu_r) if cpu_r else "n/a",
          fmt_ratio(cpu_e / cpu_r) if cpu_r else "", "reported")
    t.row("2-node runs not SUCCEEDED", f"{int(sum(out['rate_failed']))}", "", "", "0", sum(out["rate_failed"]) == 0)
    ce, cq, cf, cc = median(out["chain_engine"]), median(out["chain_quiet"]), red("chain_red_fn"), red("chain_red_chg")
    t.row(f"per-node overhead, {n}-node chain minus 2-node, GUI client reading every frame (engine: set_data)",
          fmt_us(ce), f"{fmt_us(cf)} (function)" if cf else "n/a", fmt_ratio(ce / cf) if cf else "",
          "≤ 1× Node-RED function node", ce <= cf if cf else None)
    cpu_ce, cpu_cr = median(out["chain_cpu_engine"]), red("chain_cpu_red")
    t.row("CPU per node of each engine's process (same chains; independent of other load)", fmt_us(cpu_ce),
          f"{fmt_us(cpu_cr)} (function)" if cpu_cr else "n/a", fmt_ratio(cpu_ce / cpu_cr) if cpu_cr else "",
          "reported")
    t.row("per-node overhead, no client listening", fmt_us(cq), f"{fmt_us(cf)} (function)" if cf else "n/a",
          fmt_ratio(cq / cf) if cf else "", "reported")
    if cc:
        t.row("Node-RED change nodes, per node", "", fmt_us(cc), fmt_ratio(ce / cc), "reported")
    fb, fbr = median(out["fan_big_engine"]), red("fan_big_red")
    t.row(f"fan-out to {FAN} of a ~100 KB object graph, fan node done → 10th sink done", f"{fb * 1e3:,.2f} ms",
          f"{fbr * 1e3:,.2f} ms" if fbr else "n/a", fmt_ratio(fb / fbr) if fbr else "", "≤ 0.5× Node-RED",
          fb <= 0.5 * fbr if fbr else None)
    ft, ftr = median(out["fan_tiny_engine"]), red("fan_tiny_red")
    t.row(f"fan-out to {FAN} of {{\"x\": 1}}", f"{ft * 1e3:,.3f} ms", f"{ftr * 1e3:,.3f} ms" if ftr else "n/a",
          fmt_ratio(ft / ftr) if ftr else "", "≤ 1× Node-RED", ft <= ftr if ftr else None)
    t.note(f"rounds: {len(out['rate_engine'])} × {('300' if args.quick else '5,000')} runs; "
           f"{len(out['chain_engine'])} chain pairs; {len(out['fan_big_engine'])} fan-outs of each size; "
           f"load average at the end {os.getloadavg()[0]:.1f}")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
