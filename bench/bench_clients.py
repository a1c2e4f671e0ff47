"""100 concurrent clients, each sending signed `request_settings` one after another, against the
same clients and frames on a bare `websockets` echo server.

Servers run in their own processes on loopback; all clients are connected before timing starts.
Each frame carries its own signature (a new millisecond), so the engine verifies every one.
Rounds alternate between the two servers. A request without its reply within 30 s is lost.

Targets: the engine's aggregate throughput at least half the echo's; no request lost; p99 reported.
"""

from __future__ import annotations

import asyncio
import time

from bench.common import (PlainClient, Table, engine_args, fmt_ratio, fmt_us, header, median,
                          new_key, parse_args, percentile, plain_clients, server_process, signed_frames)
from engine.client import Signer


async def one_client(client: PlainClient, frames: list[str], prefix: str) -> tuple[list[float], int]:
    latencies, lost = [], 0
    for i, text in enumerate(frames):
        try:
            latencies.append(await client.round_trip(text, f"{prefix}{i}", timeout=30))
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            lost += 1
    return latencies, lost


async def one_round(clients: list[PlainClient], frames: list[list[str]], prefix: str
                    ) -> tuple[float, list[float], int]:
    """(requests per second, latencies, lost) for every client sending its frames."""
    start = time.perf_counter()
    results = await asyncio.gather(*(one_client(c, f, prefix) for c, f in zip(clients, frames)))
    elapsed = time.perf_counter() - start
    latencies = [t for lat, _ in results for t in lat]
    lost = sum(n for _, n in results)
    return len(latencies) / elapsed, latencies, lost


async def measure(echo_url: str, engine_url: str, signers: list[Signer], per_client: int,
                  rounds: int) -> dict[str, tuple[list[float], list[float], int]]:
    out: dict[str, tuple[list[float], list[float], int]] = {"echo": ([], [], 0), "engine": ([], [], 0)}
    async with plain_clients(echo_url, len(signers)) as echo, \
            plain_clients(engine_url, len(signers)) as engine:
        warm = [signed_frames(s, 3, "request_settings", prefix="w") for s in signers]
        await one_round(echo, warm, "w")
        await one_round(engine, warm, "w")
        for r in range(rounds):
            prefix = f"q{r}-"
            frames = [signed_frames(s, per_client, "request_settings", prefix=prefix) for s in signers]
            order = [("echo", echo), ("engine", engine)]
            for name, clients in (order if r % 2 == 0 else order[::-1]):
                rate, lat, lost = await one_round(clients, frames, prefix)
                rates, all_lat, lost_total = out[name]
                rates.append(rate)
                all_lat.extend(lat)
                out[name] = (rates, all_lat, lost_total + lost)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    clients, per_client, rounds = (100, 3, 2) if args.quick else (100, 40, 6)
    header(f"{clients} concurrent clients", args.quick)
    # One owner with one key per client, as when many GUI tabs of several people connect: the
    # engine allows each address.
    signers = [Signer(new_key()) for _ in range(clients)]
    owners = [a for s in signers for a in ("--owner", s.address)]
    with server_process("echo") as echo, server_process("engine", *owners) as eng:
        result = asyncio.run(asyncio.wait_for(
            measure(echo.url, eng.url, signers, per_client, rounds), 900))
    e_rates, e_lat, e_lost = result["engine"]
    b_rates, b_lat, b_lost = result["echo"]
    e_rate, b_rate = median(e_rates), median(b_rates)
    sent = clients * per_client * rounds
    t = Table(f"{clients} clients × {per_client} sequential signed requests, {rounds} interleaved rounds")
    t.row("aggregate throughput", f"{e_rate:,.0f} req/s", f"{b_rate:,.0f} req/s",
          fmt_ratio(e_rate / b_rate), "≥ 0.5× echo", e_rate / b_rate >= 0.5)
    t.row("requests lost", f"{e_lost} of {sent}", f"{b_lost} of {sent}", "", "0", e_lost == 0)
    t.row("median latency", fmt_us(median(e_lat)), fmt_us(median(b_lat)),
          fmt_ratio(median(e_lat) / median(b_lat)), "reported")
    t.row("p99 latency", fmt_us(percentile(e_lat, 99)), fmt_us(percentile(b_lat, 99)),
          fmt_ratio(percentile(e_lat, 99) / percentile(b_lat, 99)), "reported")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
