"""Webhook -> 2 nodes -> response: 16 keep-alive HTTP clients, 5,000 requests, against Node-RED
and a bare aiohttp server doing the same visible work.

Engine (own process, loopback): a signed client saves a preset webhook_trigger (answer when the
run ends, runs in parallel) -> set_data -> set_data; 16 aiohttp clients, one keep-alive
connection each, POST a small JSON body to its webhook URL one request after the other and
read the run's final data as the answer. Every request is a full run: recorded, its events
published. A second rule in the same engine keeps only unsuccessful runs in the history
(`keep_history: failed_or_stopped`, n8n's "save successful executions: off"): like for like
with Node-RED, which keeps no record of a request; its rows are reported beside the target.
Baseline (own process): a bare aiohttp server that parses the body, adds two fields and
answers it. Node-RED (bench/nodered.py, its own process): `http in` -> 2 function nodes
(each adds a field) -> `http response`, the same requests from the same clients. Rounds
alternate. CPU per run is the server process's CPU time / requests.

Target: runs per second ≥ 1× Node-RED. Without Node.js and npm the Node-RED rows say so (an
error in CI, where they are installed).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp

from bench import nodered as nr
from bench.common import (Table, engine_args, fmt_ms, fmt_ratio, header, median, new_key,
                          parse_args, percentile, server_process)
from bench.workflows import edge, node, workflow
from engine.client import EngineClient

CLIENTS = 16


def red_flow() -> list[dict[str, Any]]:
    return [nr.http_in("/hook", "wa"), nr.function("wa", "msg.payload.a = 1; return msg;", "wb"),
            nr.function("wb", "msg.payload.b = 2; return msg;", "wr"), nr.http_response("wr")]


def preset(keep_history: str = "all") -> dict[str, Any]:
    return workflow([node("t", "webhook_trigger", respond="when_finished", overlap="parallel",
                          max_parallel="64", keep_history=keep_history),
                     node("a", "set_data", data={"a": 1}), node("b", "set_data", data={"b": 2})],
                    [edge("t", "a"), edge("a", "b")])


async def load(url: str, total: int) -> tuple[float, list[float], int]:
    """(seconds, latencies, failures) for `total` requests from CLIENTS keep-alive clients."""
    per_client = [total // CLIENTS + (1 if i < total % CLIENTS else 0) for i in range(CLIENTS)]
    latencies: list[float] = []
    failures = 0

    async def client(count: int) -> None:
        nonlocal failures
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http:
            for i in range(count):
                started = time.perf_counter()
                async with http.post(url, json={"n": i, "text": "hello"}) as response:
                    body = await response.json(content_type=None)
                    if response.status != 200 or body.get("b") != 2 or (body.get("body") or body).get("n") != i:
                        failures += 1
                latencies.append(time.perf_counter() - started)

    start = time.perf_counter()
    await asyncio.gather(*(client(n) for n in per_client))
    return time.perf_counter() - start, latencies, failures


async def webhook_url(eng: Any, key: str, keep_history: str = "all") -> str:
    """Save a preset whose webhook rule keeps `keep_history`; its URL."""
    client = await EngineClient.connect(eng.url, key)
    try:
        wf = preset(keep_history)
        name = f"webhook bench ({keep_history})"
        await client.request("save_preset", name=name, workflow_data=wf,
                             signature=client.signer.sign_workflow(wf))
        rules = (await client.request("request_triggers"))["triggers"]
        return next(rule["webhook_url"] for rule in rules if rule["preset_name"] == name)
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    total, rounds = (300, 2) if args.quick else (5000, 3)
    header("Webhook -> 2 nodes -> response", args.quick)
    key = new_key()
    from eth_account import Account
    address = Account.from_key(key).address
    results: dict[str, list[tuple[float, list[float], int, float]]] = {
        "engine": [], "lean": [], "bare": [], "red": []}
    problem = nr.available()
    if problem and nr.required():
        raise SystemExit(f"Node-RED cannot run: {problem}")
    with server_process("engine", *engine_args(address, extra=["--config", '{"webhook_port": 0}'])) as eng, \
            server_process("http") as bare, \
            (nr.NodeRed(red_flow(), ready_path="/hook") if not problem else contextlib.nullcontext()) as red:
        url = asyncio.run(webhook_url(eng, key))
        lean_url = asyncio.run(webhook_url(eng, key, "failed_or_stopped"))
        servers = [("engine", eng, url), ("lean", eng, lean_url), ("bare", bare, bare.url)]
        if red is not None:
            servers.append(("red", red, red.url("/hook")))
        for _, _, target in servers:
            asyncio.run(load(target, 100))  # warm-up
        for r in range(rounds):
            for name, proc, target in (servers if r % 2 == 0 else servers[::-1]):
                cpu = proc.cpu_seconds()
                seconds, latencies, failures = asyncio.run(load(target, total))
                results[name].append((seconds, latencies, failures, proc.cpu_seconds() - cpu))
    t = Table(f"{total:,} requests per round from {CLIENTS} keep-alive clients, {rounds} interleaved rounds")

    def figures(name: str) -> dict[str, float]:
        rows = results[name]
        all_latencies = [x for row in rows for x in row[1]]
        return {"rate": median(total / row[0] for row in rows),
                "p50": percentile(all_latencies, 50), "p99": percentile(all_latencies, 99),
                "cpu": median(row[3] / total for row in rows),
                "failures": sum(row[2] for row in rows)}

    e, lean, b = figures("engine"), figures("lean"), figures("bare")
    if results["red"]:
        n = figures("red")
        label = f"Node-RED {nr.version()}"
        t.row(f"runs per second vs {label}", f"{e['rate']:,.0f} /s", f"{n['rate']:,.0f} /s",
              fmt_ratio(e["rate"] / n["rate"]), "≥ 1× Node-RED", e["rate"] >= n["rate"])
        t.row("latency p50 / p99 vs Node-RED", f"{fmt_ms(e['p50'])} / {fmt_ms(e['p99'])}",
              f"{fmt_ms(n['p50'])} / {fmt_ms(n['p99'])}", fmt_ratio(e["p99"] / n["p99"]), "reported")
        t.row("server CPU per run vs Node-RED", fmt_ms(e["cpu"]), fmt_ms(n["cpu"]),
              fmt_ratio(e["cpu"] / n["cpu"]), "reported")
        t.row("successful runs not kept: runs per second vs Node-RED", f"{lean['rate']:,.0f} /s",
              f"{n['rate']:,.0f} /s", fmt_ratio(lean["rate"] / n["rate"]), "reported")
        t.row("successful runs not kept: p50 / p99 vs Node-RED",
              f"{fmt_ms(lean['p50'])} / {fmt_ms(lean['p99'])}", f"{fmt_ms(n['p50'])} / {fmt_ms(n['p99'])}",
              fmt_ratio(lean["p99"] / n["p99"]), "reported")
        t.row("successful runs not kept: server CPU per run vs Node-RED", fmt_ms(lean["cpu"]),
              fmt_ms(n["cpu"]), fmt_ratio(lean["cpu"] / n["cpu"]), "reported")
        t.row("Node-RED requests not answered 200 with the data", "", str(n["failures"]), "", "0",
              n["failures"] == 0)
    else:
        t.row("runs per second vs Node-RED", f"{e['rate']:,.0f} /s", f"n/a ({problem})", "", "≥ 1× Node-RED")
    t.row("runs per second vs a bare aiohttp server", f"{e['rate']:,.0f} /s", f"{b['rate']:,.0f} /s",
          fmt_ratio(e["rate"] / b["rate"]), "reported")
    t.row("latency p50", fmt_ms(e["p50"]), fmt_ms(b["p50"]), fmt_ratio(e["p50"] / b["p50"]), "reported")
    t.row("latency p99", fmt_ms(e["p99"]), fmt_ms(b["p99"]), fmt_ratio(e["p99"] / b["p99"]), "reported")
    t.row("server CPU per run", fmt_ms(e["cpu"]), fmt_ms(b["cpu"]), fmt_ratio(e["cpu"] / b["cpu"]), "reported")
    t.row("requests not answered 200 with the run's data", str(e["failures"] + lean["failures"]),
          str(b["failures"]), "", "0", e["failures"] + lean["failures"] == 0)
    t.note("The load generator runs in this process on the same machine; every server shares it equally.")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
