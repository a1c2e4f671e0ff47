"""A client that never reads while a job emits 100,000 events, against the engine with no clients.

Each phase starts a fresh engine (own process, loopback) with a benchmark module installed in its
components folder (`bench_emit`: logs N lines, yielding to the loop every 20). A starter client
sends `execute_workflow` for one bench_emit node (count 100,000) and disconnects once the job is
accepted. In the "stalled client" phase a client of the job's owner has authenticated and then
never reads again (its socket buffers fill, then the engine's outbox for it). In the baseline
phase no client of that owner is connected. In both, a probe client of another owner measures
`request_settings` round trips every 5 ms while the job runs, and the engine's resident memory is
sampled every 50 ms. Phases alternate, each on a fresh engine.

Targets: engine memory growth at most 50 MB; the probe's median round trip within 2 times the
baseline's.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from bench.common import (PlainClient, Table, engine_args, fmt_mb, fmt_ratio, fmt_us, header,
                          median, new_key, parse_args, percentile, server_process, signed_frames,
                          temp_dir)
from bench.workflows import chain, execute_frames
from engine.client import Signer

WARM = 60
EMIT_MANIFEST = {
    "id": "bench_emit", "name": "Benchmark: emit log lines", "version": "1.0.0", "type": "module",
    "entry_point": "module.py", "description": "Logs `count` lines (for the slow-client benchmark).",
    "properties": [{"id": "count", "type": "integer", "label": "Lines", "default": 1000}],
    "output_ports": [{"name": "output", "display_name": "Output"}],
}
EMIT_CODE = '''"""Benchmark module: log `count` lines, yielding to the event loop every 20 (a well-behaved
async module: it never holds the loop for long)."""

import asyncio
import os


async def run(ctx, payload):
    count = int(ctx.config.get("count") or 1000)
    for i in range(count):
        # Varied text, as real log lines are: compression cannot shrink the stream to nothing.
        ctx.log(f"event {i} of {count}: {os.urandom(32).hex()}")
        if i % 20 == 19:
            await asyncio.sleep(0)
    return payload
'''


def install_emit_module(data_dir: Path) -> None:
    folder = data_dir / "components" / "modules" / "bench_emit"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(EMIT_MANIFEST, indent=2))
    (folder / "module.py").write_text(EMIT_CODE)


async def stalled_client(url: str, signer: Signer):
    """Authenticates with one signed request, then never reads again. Its socket's receive
    buffer is small (as on a slow link), so the kernel cannot quietly absorb the whole stream."""
    import socket
    from urllib.parse import urlsplit
    from websockets.asyncio.client import connect
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
    ws = await connect(url, sock=sock, max_size=None, max_queue=1, ping_interval=None)
    await ws.send(signed_frames(signer, 1, "request_settings", prefix="stall")[0])
    await asyncio.sleep(0.2)  # let it authenticate before the job starts
    return ws


async def run_phase(eng, owner: Signer, prober: Signer, events: int, stalled: bool) -> dict:
    probe = await PlainClient.connect(eng.url)
    frames = signed_frames(prober, 6000, "request_settings", prefix="p")
    idle = [await probe.round_trip(frames[i], f"p{i}") for i in range(WARM)]  # also the idle figure
    stall_ws = await stalled_client(eng.url, owner) if stalled else None
    before = (await asyncio.to_thread(eng.command, "status"))["rss"]
    starter = await PlainClient.connect(eng.url)
    job_id, text = execute_frames(owner, chain([("bench_emit", {"count": events})]), 1, prefix="emit")[0]
    await starter.round_trip(text, job_id, timeout=60)
    # Gone at once: a closing handshake would first have to read through the job's events.
    starter.ws.transport.abort()
    started = time.perf_counter()
    rtts: list[float] = []
    peak = before
    i = WARM
    next_status = 0.0
    while True:
        now = time.perf_counter()
        if now >= next_status:
            status = await asyncio.to_thread(eng.command, "status")
            peak = max(peak, status["rss"])
            if status["running_jobs"] == 0:
                break
            next_status = now + 0.05
        if i < len(frames):
            rtts.append(await probe.round_trip(frames[i], f"p{i}", timeout=60))
            i += 1
        if now - started > 600:
            raise TimeoutError("the emitting job did not end within 10 minutes")
        await asyncio.sleep(0.005)
    duration = time.perf_counter() - started
    final = await asyncio.to_thread(eng.command, "status")
    checker = await PlainClient.connect(eng.url)
    check = signed_frames(owner, 1, "request_job_status", prefix="s", job_id=job_id)[0]
    await checker.ws.send(check)
    while True:
        reply = json.loads(await asyncio.wait_for(checker.ws.recv(), 30))
        if reply.get("request_id") == "s0":
            break
    await checker.close()
    await probe.close()
    if stall_ws is not None:
        stall_ws.transport.abort()
    return {"rtts": rtts, "idle": idle[10:], "growth": max(0, peak - before), "before": before, "peak": peak,
            "duration": duration, "dropped": final["dropped"],
            "status": (reply.get("status_data") or {}).get("status") or reply.get("error")}


def one_phase(events: int, stalled: bool) -> dict:
    owner, prober = Signer(new_key()), Signer(new_key())
    with temp_dir() as data:
        install_emit_module(data)
        args = engine_args(owner.address, extra=["--owner", prober.address, "--data-dir", str(data)])
        with server_process("engine", *args) as eng:
            if not eng.info.get("runtime"):
                return {}
            return asyncio.run(asyncio.wait_for(run_phase(eng, owner, prober, events, stalled), 900))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    events, rounds = (2000, 1) if args.quick else (100_000, 2)
    header(f"A client that never reads, while a job emits {events:,} events", args.quick)
    results: dict[bool, list[dict]] = {False: [], True: []}
    for r in range(rounds):
        for stalled in ((False, True) if r % 2 == 0 else (True, False)):
            result = one_phase(events, stalled)
            if not result:
                print("The engine has no workflow runtime yet (engine/runtime/runtime.py): skipped.")
                return 0
            results[stalled].append(result)
    base, slow = results[False], results[True]
    b_rtt = [t for r in base for t in r["rtts"]]
    s_rtt = [t for r in slow for t in r["rtts"]]
    growth, b_growth = max(r["growth"] for r in slow), max(r["growth"] for r in base)
    t = Table(f"one job emitting {events:,} log events; {rounds} fresh engine(s) per phase, alternating")
    t.row("engine memory growth", fmt_mb(growth), fmt_mb(b_growth), "", "≤ 50 MB", growth <= 50 * 2**20)
    if s_rtt and b_rtt:
        t.row("other client's round trip, median", fmt_us(median(s_rtt)), fmt_us(median(b_rtt)),
              fmt_ratio(median(s_rtt) / median(b_rtt)), "≤ 2× baseline", median(s_rtt) / median(b_rtt) <= 2)
        t.row("other client's round trip, p99", fmt_us(percentile(s_rtt, 99)), fmt_us(percentile(b_rtt, 99)),
              fmt_ratio(percentile(s_rtt, 99) / percentile(b_rtt, 99)), "reported")
    else:
        t.row("other client's round trip", "no sample" if not s_rtt else f"{len(s_rtt)} samples",
              "no sample" if not b_rtt else f"{len(b_rtt)} samples", "", "≤ 2× baseline", False)
        t.note("a phase ended before the probe's first round trip (see the job status row)")
    idle = [t for r in base + slow for t in r["idle"]]
    t.row("other client's round trip with no job running (context)", fmt_us(median(idle)), "", "", "reported")
    t.row("job duration", f"{median(r['duration'] for r in slow):.2f} s",
          f"{median(r['duration'] for r in base):.2f} s", "", "reported")
    t.row("job status", ", ".join(str(r["status"]) for r in slow), ", ".join(str(r["status"]) for r in base),
          "", "SUCCEEDED", all(r["status"] == "SUCCEEDED" for r in slow + base))
    t.row("frames dropped for the stalled client", f"{max(r['dropped'] for r in slow):,}", "", "",
          "reported (droppable events only)")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
