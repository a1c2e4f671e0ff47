"""Verifying a fresh GUI-style auth block, against bare libsecp256k1 recovery plus keccak.

Engine: `FrameAuthenticator.authenticate` (format, freshness, recovery, checksum, allow-list) on
auth blocks signed by `engine.client.Signer`, each with its own millisecond (so none is cached),
through a new authenticator per round. Cached: the same blocks again through the warm cache.
Baseline: `coincurve.PublicKey.from_signature_and_message` on keccak of the EIP-191 envelope,
then keccak of the public key: the least any verifier of these frames must do.

Targets: fresh at most 1.5 times the baseline; a cached repeat at least 50 times cheaper.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import coincurve
from eth_hash.auto import keccak

from bench.common import Table, fmt_ratio, fmt_us, fresh_auth_blocks, header, median, new_key, parse_args
from engine.auth.frame_auth import FrameAuthenticator, OwnerList
from engine.client import Signer


def bare_recover(message: str, signature: str) -> bytes:
    """The baseline: recovery and the two hashes, nothing else."""
    raw = bytes.fromhex(signature[2:])
    data = message.encode()
    digest = keccak(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data)
    public = coincurve.PublicKey.from_signature_and_message(raw[:64] + bytes([raw[64] - 27]), digest,
                                                            hasher=None)
    return keccak(public.format(compressed=False)[1:])[-20:]


CHUNK = 25


def per_op(func: Callable[[dict[str, str]], Any], blocks: list[dict[str, str]]) -> float:
    start = time.perf_counter()
    for block in blocks:
        func(block)
    return (time.perf_counter() - start) / len(blocks)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    count, rounds = (200, 3) if args.quick else (2000, 9)
    header("Auth block verification", args.quick)
    signer = Signer(new_key())
    blocks = fresh_auth_blocks(signer, count)
    expected = bytes.fromhex(signer.address[2:])
    assert all(bare_recover(b["message"], b["signature"]) == expected for b in blocks[:5])

    base_t, fresh_t, cached_t, ratios = [], [], [], []
    baseline = lambda b: bare_recover(b["message"], b["signature"])  # noqa: E731
    for i in range(rounds):
        auth = FrameAuthenticator("bench-engine", OwnerList.of([signer.address]))
        # Interleave in small chunks, alternating which side goes first: on a busy machine a
        # burst of load then hits both sides alike.
        base_sum = fresh_sum = 0.0
        for c in range(0, count, CHUNK):
            chunk = blocks[c:c + CHUNK]
            if (c // CHUNK + i) % 2:
                fresh_sum += per_op(auth.authenticate, chunk) * len(chunk)
                base_sum += per_op(baseline, chunk) * len(chunk)
            else:
                base_sum += per_op(baseline, chunk) * len(chunk)
                fresh_sum += per_op(auth.authenticate, chunk) * len(chunk)
        base_t.append(base_sum / count)
        fresh_t.append(fresh_sum / count)
        ratios.append(fresh_sum / base_sum)
        cached_t.append(per_op(auth.authenticate, blocks))
        assert auth.authenticate(blocks[0]) == signer.address

    base, fresh, cached = median(base_t), median(fresh_t), median(cached_t)
    t = Table(f"verifying a GUI auth block ({count} fresh blocks, interleaved in chunks of {CHUNK}, "
              f"median of {rounds} rounds; the ratio is the median of the rounds' ratios)")
    ratio = median(ratios)
    t.row("fresh auth block", fmt_us(fresh), fmt_us(base), fmt_ratio(ratio),
          "≤ 1.5× baseline", ratio <= 1.5)
    t.row("cached repeat", fmt_us(cached), fmt_us(fresh) + " (fresh)", f"{fresh / cached:,.0f}× cheaper",
          "≥ 50× cheaper than fresh", fresh / cached >= 50)
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
