"""Issue 11, "Shared folders can reach the engine's own secrets": the home folder is shared (the
natural thing to do) and the engine's data, config and log folders live inside it. A second
owner tries every message and module on them, over a real socket, on real files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keyring
import keyring.backends.fail
import pytest

from engine.app import Engine
from engine.client import EngineClient
from tests.conftest import EngineFactory, Wallet
from tests.runtime_support import collect, edge, final, node, start, workflow

REFUSAL = "never reads, lists or writes it through a shared folder"


@pytest.fixture
async def home_shared(make_engine: EngineFactory, owner: Wallet, stranger: Wallet,
                      tmp_path: Path) -> tuple[Engine, Path]:
    """An engine whose data and log folders are inside the shared home folder, with a second
    owner (`stranger` is allowed here) who wants the first owner's secrets."""
    home = tmp_path / "home"
    data = home / ".local" / "share" / "flowork"
    logs = home / ".local" / "state" / "flowork" / "log"
    desktop_config = home / ".config" / "flowork"
    for folder in (data, logs, desktop_config):
        folder.mkdir(parents=True)
    (desktop_config / "secrets.json").write_text('{"tunnel_token": "tok"}')
    (logs / "flowork-engine.log").write_text("log line\n")
    (home / "notes.txt").write_text("mine")
    keyring.set_keyring(keyring.backends.fail.Keyring())  # no keyring: the key is secrets.key
    engine = await make_engine(data_dir=data, log_dir=logs, roots=(home,),
                               owners=(owner.address, stranger.address),
                               protected=(desktop_config,))
    (data / "config.json").write_text(json.dumps({"engine_id": "test-engine"}))
    return engine, home


async def job(client: EngineClient, module: str, **config: Any) -> dict[str, Any]:
    wf = workflow([node("t", "manual_trigger"), node("f", module, **config)], [edge("t", "f")])
    return final(await collect(client, await start(client, wf)))


def targets(engine: Engine, home: Path) -> list[Path]:
    data = engine.config.data_dir
    return [data / "secrets.key", data / "engine.sqlite3", data / "config.json",
            home / ".local" / "state" / "flowork" / "log" / "flowork-engine.log",
            home / ".config" / "flowork" / "secrets.json"]


async def test_no_message_lists_the_engines_folders(home_shared, make_client, stranger: Wallet) -> None:
    engine, home = home_shared
    assert (engine.config.data_dir / "secrets.key").exists()  # the file fallback is in use
    async with await EngineClient.connect(engine.url, stranger.key) as client:
        for folder in (engine.config.data_dir, home / ".local" / "state" / "flowork" / "log",
                       home / ".config" / "flowork", engine.config.data_dir / "components"):
            if not folder.exists():
                continue
            reply = await client.request("request_directory_list", path=str(folder), check=False)
            assert reply["code"] == "forbidden" and REFUSAL in reply["error"], reply
        # Their parents list everything else, and not them.
        share = await client.request("request_directory_list", path=str(home / ".local" / "share"))
        assert "flowork" not in [i["name"] for i in share["items"]]
        top = await client.request("request_directory_list", path=str(home))
        assert "notes.txt" in [i["name"] for i in top["items"]]


async def test_no_module_reads_or_writes_them(home_shared, stranger: Wallet) -> None:
    engine, home = home_shared
    before = {p: p.read_bytes() for p in targets(engine, home)}
    async with await EngineClient.connect(engine.url, stranger.key) as client:
        for path in targets(engine, home):
            status = await job(client, "read_file", path=str(path), encoding="base64")
            assert status["status"] == "FAILED" and REFUSAL in status["error"], (path, status)
            status = await job(client, "write_file", path=str(path),
                               content=json.dumps({"owners": [client.address], "host": "0.0.0.0"}))
            assert status["status"] == "FAILED" and REFUSAL in status["error"], (path, status)
            status = await job(client, "write_file", path=str(path), content="x", append=True)
            assert status["status"] == "FAILED" and REFUSAL in status["error"], (path, status)
        # New files in those folders cannot be made either.
        status = await job(client, "write_file", path=str(engine.config.data_dir / "new.json"), content="{}")
        assert status["status"] == "FAILED" and REFUSAL in status["error"], status
        # Ordinary files of the share still work.
        assert (await job(client, "read_file", path=str(home / "notes.txt")))["status"] == "SUCCEEDED"
    assert {p: p.read_bytes() for p in targets(engine, home) if p.name != "engine.sqlite3"} == \
        {p: b for p, b in before.items() if p.name != "engine.sqlite3"}
    assert not (engine.config.data_dir / "new.json").exists()


async def test_links_and_hard_links_into_them_are_refused(home_shared, stranger: Wallet) -> None:
    engine, home = home_shared
    data = engine.config.data_dir
    (home / "to-data").symlink_to(data)
    (home / "to-key").symlink_to(data / "secrets.key")
    (home / "relative-to-data").symlink_to(Path(".local") / "share" / "flowork")
    os.link(data / "secrets.key", home / "key-copy")  # same inode, another name
    async with await EngineClient.connect(engine.url, stranger.key) as client:
        for path in (home / "to-data" / "secrets.key", home / "to-key",
                     home / "relative-to-data" / "config.json", home / "key-copy"):
            status = await job(client, "read_file", path=str(path))
            assert status["status"] == "FAILED" and REFUSAL in status["error"], (path, status)
        reply = await client.request("request_directory_list", path=str(home / "to-data"), check=False)
        assert reply["code"] == "forbidden" and REFUSAL in reply["error"]
        listed = {i["name"]: i for i in (await client.request("request_directory_list", path=str(home)))["items"]}
        assert listed["to-data"]["size"] is None and listed["to-data"]["modified"] is None
        assert "key-copy" not in listed  # the key under another name is not even named


async def test_sharing_the_data_folder_itself_reaches_nothing(make_engine: EngineFactory, owner: Wallet,
                                                              data_dir: Path) -> None:
    engine = await make_engine(roots=(data_dir,))
    async with await EngineClient.connect(engine.url, owner.key) as client:
        reply = await client.request("request_directory_list", path=str(data_dir), check=False)
        assert reply["code"] == "forbidden" and "the engine's data folder" in reply["error"]
        status = await job(client, "read_file", path=str(data_dir / "secrets.key"))
        assert status["status"] == "FAILED" and REFUSAL in status["error"]
