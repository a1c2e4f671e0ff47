"""First page of a 100,000-entry folder listing, against `os.scandir` of the same folder.

Engine: a signed `request_directory_list` round trip over a real socket to an engine (own
process) sharing the folder's parent, first page at the default page size. Also shown: the
listing function alone in this process (`SharedFolders.list_directory`), without the socket.
Baseline: reading every entry's name with `os.scandir`, the least any listing must do. Rounds
alternate; the folder is in the page cache for both after the warm-up.

Targets: at most 3 times the baseline; the reply's size bounded (a page, not the folder).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from bench.common import (PlainClient, Table, engine_args, fmt_ms, fmt_ratio, header, median,
                          new_key, parse_args, server_process, signed_frames, temp_dir)
from engine.client import Signer
from engine.files import SharedFolders


def make_folder(folder: Path, entries: int) -> None:
    folder.mkdir()
    subfolders = entries // 100  # some folders among the files, as in a real tree
    for i in range(subfolders):
        (folder / f"Folder {i:06d}").mkdir()
    for i in range(entries - subfolders):
        fd = os.open(folder / f"file-{i:06d}.txt", os.O_CREAT | os.O_WRONLY, 0o644)
        os.close(fd)


def scandir_all(folder: Path) -> float:
    start = time.perf_counter()
    with os.scandir(folder) as entries:
        names = [e.name for e in entries]
    elapsed = time.perf_counter() - start
    assert names
    return elapsed


def list_direct(shared: SharedFolders, folder: Path) -> float:
    start = time.perf_counter()
    listing = shared.list_directory(str(folder))
    elapsed = time.perf_counter() - start
    assert listing.items
    return elapsed


async def request_rounds(url: str, signer: Signer, folder: Path, rounds: int,
                         shared: SharedFolders) -> dict[str, list[float] | int]:
    client = await PlainClient.connect(url)
    times: dict[str, list[float] | int] = {"engine": [], "direct": [], "scandir": []}
    try:
        frames = signed_frames(signer, rounds + 1, "request_directory_list", path=str(folder))
        await client.round_trip(frames[0], "r0", timeout=120)  # warm-up
        scandir_all(folder)
        size_holder: list[int] = []
        for r in range(1, rounds + 1):
            steps = [("scandir", lambda: scandir_all(folder)),
                     ("direct", lambda: list_direct(shared, folder))]
            if r % 2:
                steps.reverse()
            for name, step in steps:
                times[name].append(step())  # type: ignore[union-attr]
            start = time.perf_counter()
            await client.ws.send(frames[r])
            while True:
                text = await asyncio.wait_for(client.ws.recv(), 120)
                if f'"request_id":"r{r}"' in text.replace(" ", ""):
                    break
            times["engine"].append(time.perf_counter() - start)  # type: ignore[union-attr]
            size_holder.append(len(text.encode()))
            assert '"error"' not in text[:200], text[:300]
        times["reply_bytes"] = max(size_holder)
        import json
        reply = json.loads(text)
        times["items"] = len(reply["items"])
        times["total"] = reply["total"]
    finally:
        await client.close()
    return times


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    entries, rounds = (5_000, 3) if args.quick else (100_000, 9)
    header(f"First page of a {entries:,}-entry folder", args.quick)
    signer = Signer(new_key())
    with temp_dir() as root:
        folder = root / "big"
        make_folder(folder, entries)
        shared = SharedFolders([root])
        with server_process("engine", *engine_args(signer.address, root=root)) as eng:
            times = asyncio.run(asyncio.wait_for(
                request_rounds(eng.url, signer, folder.resolve(), rounds, shared), 900))
    engine_t, direct_t, base_t = (median(times[k]) for k in ("engine", "direct", "scandir"))  # type: ignore[arg-type]
    t = Table(f"first page of a {entries:,}-entry folder (median of {rounds} interleaved rounds)")
    t.row("request_directory_list round trip", fmt_ms(engine_t), fmt_ms(base_t),
          fmt_ratio(engine_t / base_t), "≤ 3× os.scandir", engine_t / base_t <= 3)
    t.row("list_directory alone (no socket)", fmt_ms(direct_t), fmt_ms(base_t),
          fmt_ratio(direct_t / base_t), "reported")
    reply_bytes, items = int(times["reply_bytes"]), int(times["items"])  # type: ignore[arg-type]
    t.row("reply size", f"{reply_bytes / 1024:,.0f} KiB ({items} items of {times['total']:,})",
          "", "", "a page, not the folder", items < entries and reply_bytes < 1024 * 1024)
    t.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
