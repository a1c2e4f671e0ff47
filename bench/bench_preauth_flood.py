"""The owner's round trip while strangers flood the engine with compressed bombs (issue 11).

Strangers who know only the engineId open permessage-deflate connections and send ~4 KiB
frames that inflate to ~4 MB of JSON, reconnecting whenever the engine closes them
(`bench/flood.py`, in its own process). Meanwhile the owner, on one connection, sends freshly
signed `request_settings` frames one after the other, and opens a new connection (the time to
its first reply is reported). Quiet and flooded phases alternate in the same run; the baseline
is the owner's round trip in the quiet phases.

Target: the owner's median under the flood at most 2 times the quiet median.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from bench.common import (REPO_ROOT, PlainClient, Table, engine_args, fmt_mb, fmt_ms, fmt_ratio,
                          fmt_us, header, median, new_key, parse_args, percentile,
                          server_process, signed_frames)
from engine.client import Signer


async def owner_round_trips(client: PlainClient, signer: Signer, count: int, prefix: str) -> list[float]:
    frames = signed_frames(signer, count, "request_settings", prefix=prefix)
    return [await client.round_trip(text, f"{prefix}{i}") for i, text in enumerate(frames)]


async def first_reply(url: str, signer: Signer) -> float:
    """Seconds from opening a new connection to the reply to its first frame."""
    start = time.perf_counter()
    client = await PlainClient.connect(url)
    try:
        await client.round_trip(signed_frames(signer, 1, "request_settings", prefix="c")[0], "c0")
        return time.perf_counter() - start
    finally:
        await client.close()


def start_flood(url: str, connections: int, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.flood", url, str(connections), str(seconds)],
                            cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("FLOODING"):
        raise RuntimeError(f"the flood did not start: {line!r}")
    return proc


async def measure(engine, signer: Signer, sizes: list[int], count: int, rounds: int) -> list[dict]:
    client = await PlainClient.connect(engine.url)
    results = []
    try:
        await owner_round_trips(client, signer, 20, "w")
        for size in sizes:
            quiet: list[float] = []
            flooded: list[float] = []
            connects: list[float] = []
            cpu_share: list[float] = []
            rss_quiet, rss_flood = engine.rss(), 0
            stats = {}
            for r in range(rounds):
                quiet += await owner_round_trips(client, signer, count, f"q{size}-{r}-")
                flood = start_flood(engine.url, size, 3600)
                try:
                    await asyncio.sleep(0.5)  # the flood is under way
                    cpu0, wall0 = engine.cpu_seconds(), time.monotonic()
                    connects.append(await first_reply(engine.url, signer))
                    flooded += await owner_round_trips(client, signer, count, f"f{size}-{r}-")
                    rss_flood = max(rss_flood, engine.rss())
                    cpu_share.append((engine.cpu_seconds() - cpu0) / (time.monotonic() - wall0))
                finally:
                    assert flood.stdin is not None
                    flood.stdin.close()
                    assert flood.stdout is not None
                    out = flood.stdout.read()
                    flood.wait(timeout=30)
                    for line in out.splitlines():
                        if line.startswith("{"):
                            for key, value in json.loads(line).items():
                                stats[key] = stats.get(key, 0) + value
                await asyncio.sleep(0.5)  # the engine has closed what is left of the flood
            results.append({"size": size, "quiet": quiet, "flooded": flooded, "connects": connects,
                            "rss_quiet": rss_quiet, "rss_flood": rss_flood, "stats": stats,
                            "cpu": max(cpu_share)})
    finally:
        await client.close()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    sizes, count, rounds = ([4], 100, 1) if args.quick else ([4, 16, 48], 400, 3)
    header("owner round trip under a pre-auth compressed-frame flood", args.quick)
    signer = Signer(new_key())
    with server_process("engine", *engine_args(signer.address)) as engine:
        results = asyncio.run(asyncio.wait_for(measure(engine, signer, sizes, count, rounds), 1800))
    t = Table(f"request_settings round trip of the owner, quiet vs flooded ({rounds} alternating "
              f"rounds of {count} each)")
    for res in results:
        q50, f50 = median(res["quiet"]), median(res["flooded"])
        t.row(f"median, {res['size']} flooding connections", fmt_us(f50), fmt_us(q50),
              fmt_ratio(f50 / q50), "≤ 2× quiet", f50 / q50 <= 2)
        q99, f99 = percentile(res["quiet"], 99), percentile(res["flooded"], 99)
        t.row(f"p99, {res['size']} flooding connections", fmt_us(f99), fmt_us(q99),
              fmt_ratio(f99 / q99), "reported")
        t.row(f"new owner connection to first reply, {res['size']} flooding",
              fmt_ms(max(res["connects"])), "", "", "reported (worst)")
        t.row(f"engine memory, {res['size']} flooding", fmt_mb(res["rss_flood"]),
              fmt_mb(res["rss_quiet"]), fmt_ratio(res["rss_flood"] / res["rss_quiet"]), "reported")
        t.row(f"engine CPU while flooded, {res['size']} flooding", f"{res['cpu'] * 100:.0f} %",
              "", "", "reported (of one core)")
        s = res["stats"]
        t.note(f"{res['size']} flooding connections: {s.get('opened', 0)} connections opened, "
               f"{s.get('sent', 0)} bombs sent, {s.get('refused', 0)} handshakes refused, "
               f"permessage-deflate accepted on {s.get('deflate', 0)}")
    t.note("each bomb is ~4 KiB on the wire and ~4 MB inflated; before signing in a connection "
           "may send 64 KiB (inflated), so each bomb costs the engine 64 KiB of inflating and a close")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
