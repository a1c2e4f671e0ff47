"""request_drives and request_directory_list over a real socket: containment (symlinks, `..`,
relative and outside paths), order, item fields, pages."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from engine.app import Engine
from engine.client import EngineClient
from tests.conftest import EngineFactory, Wallet


async def listing(client: EngineClient, path: str | Path, **fields: Any) -> dict[str, Any]:
    return await client.request("request_directory_list", path=str(path), check=False, **fields)


async def test_drives_are_the_shared_folders(client: EngineClient, shared_dir: Path) -> None:
    reply = await client.request("request_drives")
    assert reply["type"] == "drives_list_response"
    assert reply["drives"] == [{"name": shared_dir.name, "type": "drive", "path": str(shared_dir.resolve())}]


async def test_without_shared_folders_drives_are_empty_and_listing_says_why(
        make_engine: EngineFactory, owner: Wallet, tmp_path: Path) -> None:
    engine = await make_engine(roots=())
    async with await EngineClient.connect(engine.url, owner.key) as client:
        reply = await client.request("request_drives")
        assert reply["drives"] == [] and "--root" in reply["message"]
        refused = await listing(client, tmp_path)
        assert refused["code"] == "forbidden" and "No folder is shared" in refused["error"]


async def test_sharing_changes_take_effect_at_once(engine: Engine, client: EngineClient, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    engine.set_roots([other])
    assert [d["path"] for d in (await client.request("request_drives"))["drives"]] == [str(other.resolve())]


async def test_folders_first_then_names_case_insensitively(client: EngineClient, shared_dir: Path) -> None:
    for name in ("b.txt", "A.txt", "c.TXT", ".hidden"):
        (shared_dir / name).write_text("12345")
    for name in ("zeta", "Alpha", "beta"):
        (shared_dir / name).mkdir()
    reply = await listing(client, shared_dir)
    assert reply["type"] == "directory_list_response" and reply["path"] == str(shared_dir.resolve())
    names = [item["name"] for item in reply["items"]]
    assert names == ["Alpha", "beta", "zeta", ".hidden", "A.txt", "b.txt", "c.TXT"]
    items = {i["name"]: i for i in reply["items"]}
    assert items["Alpha"]["type"] == "directory" and items["Alpha"]["size"] is None
    assert items["A.txt"] == {"name": "A.txt", "type": "file", "path": str(shared_dir.resolve() / "A.txt"),
                              "size": 5, "modified": pytest.approx(os.stat(shared_dir / "A.txt").st_mtime),
                              "hidden": False}
    assert items[".hidden"]["hidden"] is True
    assert (reply["total"], reply["offset"], reply["has_more"]) == (7, 0, False)


async def test_big_folders_come_in_pages(client: EngineClient, shared_dir: Path) -> None:
    for i in range(25):
        (shared_dir / f"f{i:03d}").write_text("")
    seen: list[str] = []
    offset = 0
    while True:
        page = await listing(client, shared_dir, offset=offset, limit=10)
        assert page["total"] == 25 and page["limit"] == 10 and len(page["items"]) <= 10
        seen += [i["name"] for i in page["items"]]
        if not page["has_more"]:
            break
        offset += 10
    assert seen == [f"f{i:03d}" for i in range(25)]
    past = await listing(client, shared_dir, offset=100)
    assert past["items"] == [] and past["total"] == 25
    too_big = await listing(client, shared_dir, limit=5001)
    assert too_big["code"] == "invalid_field" and too_big["field"] == "limit"


async def test_subfolders_list_and_dotdot_inside_is_fine(client: EngineClient, shared_dir: Path) -> None:
    (shared_dir / "a" / "b").mkdir(parents=True)
    (shared_dir / "a" / "b" / "deep.txt").write_text("x")
    reply = await listing(client, shared_dir / "a" / "b")
    assert [i["name"] for i in reply["items"]] == ["deep.txt"]
    back = await listing(client, f"{shared_dir}/a/b/../b")
    assert [i["name"] for i in back["items"]] == ["deep.txt"]
    assert back["path"] == f"{shared_dir}/a/b/../b"  # as asked: the GUI matches it exactly


def outside_paths(shared_dir: Path, tmp_path: Path) -> list[str]:
    secret = tmp_path / "secret"
    secret.mkdir(exist_ok=True)
    (secret / "key.pem").write_text("private")
    (shared_dir / "escape").symlink_to(secret, target_is_directory=True)
    (shared_dir / "root-link").symlink_to("/", target_is_directory=True)
    (shared_dir / "loop").symlink_to(shared_dir / "loop")
    sibling = tmp_path / (shared_dir.name + "-sibling")  # shares the prefix, not the folder
    sibling.mkdir(exist_ok=True)
    return [str(secret), f"{shared_dir}/..", f"{shared_dir}/../secret", f"{shared_dir}/escape",
            f"{shared_dir}/escape/", f"{shared_dir}/root-link/etc", str(sibling), "/", "/etc",
            f"{shared_dir}/./../{shared_dir.name}/../secret"]


async def test_nothing_outside_a_shared_folder_can_be_listed(client: EngineClient, shared_dir: Path,
                                                             tmp_path: Path) -> None:
    for path in outside_paths(shared_dir, tmp_path):
        reply = await listing(client, path)
        assert reply["code"] == "forbidden", path
        assert "outside the shared folders" in reply["error"] and reply["path"] == path
        assert "items" not in reply
    loop = await listing(client, f"{shared_dir}/loop")
    assert loop["code"] in ("forbidden", "not_found") and "items" not in loop


@pytest.mark.parametrize("path", ["relative/path", ".", "..", "escape", "./x", "~nobody-such-user/x"])
async def test_relative_paths_are_refused(client: EngineClient, shared_dir: Path, path: str) -> None:
    reply = await listing(client, path)
    assert reply["code"] in ("invalid_field", "forbidden") and "items" not in reply


async def test_symlinks_that_stay_inside_are_followed(client: EngineClient, shared_dir: Path) -> None:
    (shared_dir / "real").mkdir()
    (shared_dir / "real" / "doc.txt").write_text("x")
    (shared_dir / "alias").symlink_to(shared_dir / "real", target_is_directory=True)
    (shared_dir / "dangling").symlink_to(shared_dir / "missing")
    top = {i["name"]: i for i in (await listing(client, shared_dir))["items"]}
    assert top["alias"]["type"] == "directory" and top["dangling"]["type"] == "file"
    assert top["dangling"]["size"] is None
    reply = await listing(client, shared_dir / "alias")
    assert reply["path"] == str(shared_dir / "alias")  # as asked: the GUI matches it exactly
    assert [i["name"] for i in reply["items"]] == ["doc.txt"]


async def test_files_missing_paths_and_bad_text_get_clear_errors(client: EngineClient, shared_dir: Path) -> None:
    (shared_dir / "note.txt").write_text("x")
    not_dir = await listing(client, shared_dir / "note.txt")
    assert not_dir["code"] == "invalid_field" and "is not a folder" in not_dir["error"]
    missing = await listing(client, shared_dir / "nope")
    assert missing["code"] == "not_found" and "does not exist" in missing["error"]
    nul = await listing(client, f"{shared_dir}/a\x00b")
    assert nul["code"] == "invalid_field"
    long = await listing(client, "/" + "a" * 5000)
    assert long["code"] == "invalid_field" and long["field"] == "path"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads every folder")
async def test_an_unreadable_folder_is_reported(client: EngineClient, shared_dir: Path) -> None:
    locked = shared_dir / "locked"
    locked.mkdir(mode=0o000)
    try:
        reply = await listing(client, locked)
        assert reply["code"] == "forbidden" and "may not read" in reply["error"]
    finally:
        locked.chmod(0o700)
