"""Round trip of `request_settings` with a freshly signed frame, one client, against a bare
`websockets` echo server.

Both servers run in their own process on loopback; the same client code sends the same kind of
frame text (signed by `engine.client.Signer`, a new millisecond each, so the engine verifies
every signature for real) and waits for the reply with its request id. Rounds alternate between
the two servers; latencies are pooled per server.

Target: the engine's median at most 2 times the echo's; p99 reported.
"""

from __future__ import annotations

import asyncio

from bench.common import (PlainClient, Table, engine_args, fmt_ratio, fmt_us, header, median,
                          new_key, parse_args, percentile, server_process, signed_frames)
from engine.client import Signer


async def run_round(client: PlainClient, frames: list[str], prefix: str) -> list[float]:
    return [await client.round_trip(text, f"{prefix}{i}") for i, text in enumerate(frames)]


async def measure(echo_url: str, engine_url: str, signer: Signer, count: int, rounds: int
                  ) -> tuple[list[float], list[float]]:
    echo, engine = await PlainClient.connect(echo_url), await PlainClient.connect(engine_url)
    try:
        warm = signed_frames(signer, 20, "request_settings", prefix="w")
        await run_round(echo, warm, "w")
        await run_round(engine, warm, "w")
        echo_t: list[float] = []
        engine_t: list[float] = []
        for r in range(rounds):
            prefix = f"q{r}-"
            frames = signed_frames(signer, count, "request_settings", prefix=prefix)
            order = [(echo, echo_t), (engine, engine_t)]
            for client, sink in (order if r % 2 == 0 else order[::-1]):
                sink.extend(await run_round(client, frames, prefix))
        return echo_t, engine_t
    finally:
        await echo.close()
        await engine.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    count, rounds = (50, 2) if args.quick else (500, 8)
    header("request_settings round trip, 1 client", args.quick)
    key = new_key()
    signer = Signer(key)
    with server_process("echo") as echo, server_process("engine", *engine_args(signer.address)) as eng:
        echo_t, engine_t = asyncio.run(asyncio.wait_for(
            measure(echo.url, eng.url, signer, count, rounds), 600))
    e50, b50 = median(engine_t), median(echo_t)
    t = Table(f"request_settings round trip, 1 client ({rounds} interleaved rounds of {count})")
    t.row("median", fmt_us(e50), fmt_us(b50), fmt_ratio(e50 / b50), "≤ 2× echo", e50 / b50 <= 2)
    e99, b99 = percentile(engine_t, 99), percentile(echo_t, 99)
    t.row("p99", fmt_us(e99), fmt_us(b99), fmt_ratio(e99 / b99), "reported")
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
