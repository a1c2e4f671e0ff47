"""Issue 11, "A folder swapped for a symlink while in use escapes the share": another local user
who can rename things inside a shared folder swaps a subfolder with a symlink to an outside
folder, atomically and over and over (`renameat2(RENAME_EXCHANGE)`, through ctypes), while the
owner lists, reads and writes. Nothing outside may ever be shown, read or written."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from pathlib import Path

import pytest

from engine.app import Engine
from engine.client import EngineClient
from engine.protocol.errors import EngineError

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="renameat2 is Linux-only")

AT_FDCWD = -100
RENAME_EXCHANGE = 2


def _renameat2():
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    func = libc.renameat2
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return func


class Swapper:
    """Exchanges two names atomically in a loop on its own thread, until stopped."""

    def __init__(self, a: Path, b: Path) -> None:
        self.a, self.b = bytes(a), bytes(b)
        self.swaps = 0
        self._stop = threading.Event()
        self._call = _renameat2()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._call(AT_FDCWD, self.a, AT_FDCWD, self.b, RENAME_EXCHANGE) != 0:
                raise OSError(ctypes.get_errno(), "renameat2 failed")
            self.swaps += 1

    def __enter__(self) -> "Swapper":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def race(shared_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """shared/sub is a real folder; shared/swap is a link to an outside folder; they swap."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "outside-secret.txt").write_text("OUTSIDE")
    (outside / "victim.txt").write_text("OUTSIDE-ORIGINAL")
    sub = shared_dir / "sub"
    sub.mkdir()
    (sub / "inside.txt").write_text("inside")
    (sub / "victim.txt").write_text("inside-original")
    (shared_dir / "swap").symlink_to(outside)
    return sub, outside


def outside_untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["outside-secret.txt", "victim.txt"]
    assert (outside / "victim.txt").read_text() == "OUTSIDE-ORIGINAL"


async def test_listings_over_the_socket_never_show_the_outside_folder(
        engine: Engine, client: EngineClient, shared_dir: Path, race: tuple[Path, Path]) -> None:
    sub, outside = race
    shown, refused = 0, 0
    with Swapper(sub, shared_dir / "swap") as swapper:
        for _ in range(400):
            reply = await client.request("request_directory_list", path=str(sub), check=False)
            if "error" in reply:
                refused += 1
                assert reply["code"] in ("forbidden", "not_found", "invalid_field"), reply
                continue
            names = {item["name"] for item in reply["items"]}
            assert "outside-secret.txt" not in names, reply
            shown += 1
        assert swapper.swaps > 400
    assert shown > 0  # the real folder was listed whenever it was in place
    outside_untouched(outside)


def test_reads_and_writes_never_reach_the_outside_folder(engine: Engine, shared_dir: Path,
                                                        race: tuple[Path, Path]) -> None:
    """The file modules' own operations (engine.files), thousands of times in a worker thread,
    as a sync module calls them."""
    sub, outside = race
    folders = engine.shared_folders
    reads = writes = 0
    with Swapper(sub, shared_dir / "swap") as swapper:
        for i in range(1000):
            try:
                data, _real = folders.read_bytes(str(sub / "victim.txt"), 1024)
                assert data == b"inside-original", data
                reads += 1
            except EngineError:
                pass
            try:
                folders.write_bytes(str(sub / f"written-{i}.txt"), b"owner's data")
                writes += 1
            except EngineError:
                pass
            try:
                folders.write_bytes(str(sub / "victim.txt"), b"inside-original", append=False)
            except EngineError:
                pass
            try:
                listing = folders.list_directory(str(sub / "."))
                assert "outside-secret.txt" not in {i["name"] for i in listing.items}
            except EngineError:
                pass
        assert swapper.swaps > 1000
    assert reads > 0 and writes > 0
    outside_untouched(outside)
    # Whatever was written landed in the real folder, wherever it was at the time.
    real_sub = sub if sub.is_dir() and not sub.is_symlink() else shared_dir / "swap"
    assert len(list(real_sub.glob("written-*.txt"))) == writes


async def test_file_modules_in_jobs_never_reach_the_outside_folder(
        engine: Engine, client: EngineClient, shared_dir: Path, race: tuple[Path, Path]) -> None:
    from tests.runtime_support import collect, edge, final, node, start, workflow
    sub, outside = race
    wf = workflow([node("t", "manual_trigger"),
                   node("r", "read_file", path=str(sub / "victim.txt")),
                   node("w", "write_file", path=str(sub / "from-job.txt"), content="{{data.content}}")],
                  [edge("t", "r"), edge("r", "w")])
    with Swapper(sub, shared_dir / "swap"):
        for _ in range(60):
            status = final(await collect(client, await start(client, wf)))
            if status["status"] == "SUCCEEDED":
                assert "OUTSIDE" not in str(status.get("result")), status
    outside_untouched(outside)
