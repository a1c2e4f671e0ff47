"""Summarize py-spy's collapsed stacks (`--format raw`): the functions with the most samples,
self and inclusive. `python -m bench.profile_summary FILE [--top N] [--grep TEXT]`."""

from __future__ import annotations

import argparse
from collections import Counter


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_summary")
    p.add_argument("file")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--grep", default="", help="only stacks containing this text")
    args = p.parse_args(argv)
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    with open(args.file, encoding="utf-8") as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or (args.grep and args.grep not in stack):
                continue
            n = int(count)
            samples += n
            frames = stack.split(";")
            own[frames[-1]] += n
            for frame in set(frames):
                total[frame] += n
    print(f"{samples} samples")
    print("\nself:")
    for frame, n in own.most_common(args.top):
        print(f"{100 * n / samples:6.1f}%  {frame}")
    print("\ninclusive:")
    for frame, n in total.most_common(args.top):
        print(f"{100 * n / samples:6.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
