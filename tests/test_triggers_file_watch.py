"""File watch triggers end to end: real files written in a shared folder start runs; folders
outside the shared folders are refused, and a folder that stops being shared disables its rule."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.client import EngineClient, EngineReplyError
from tests.triggers_support import next_run_end, save, triggered, triggers, wait_for


async def write_until_run(client, folder: Path, name: str, *, tries: int = 20) -> dict:
    """The watcher starts in its own thread: write (again) until the run shows it saw one."""
    for attempt in range(tries):
        (folder / f"{attempt}-{name}").write_text(f"attempt {attempt}")
        try:
            return await next_run_end(client, kind="file_watch", timeout=1.5)
        except TimeoutError:
            continue
    raise AssertionError("no run was started by the file changes")


async def test_a_new_file_in_a_shared_folder_starts_a_run(engine, client, shared_dir) -> None:
    inbox = shared_dir / "inbox"
    inbox.mkdir()
    await save(client, "Inbox", triggered("t", "file_watch_trigger", folder=str(inbox),
                                          events="created", pattern="*.csv", debounce_ms="50"))
    [rule] = await triggers(client)
    assert rule["summary"] == f"created in {inbox} (*.csv)"
    end = await write_until_run(client, inbox, "orders.csv")
    data = end["status_data"]["result"]["data"]
    assert data["trigger"] == "file_watch" and data["kind"] == "created"
    assert data["path"].startswith(str(inbox)) and data["name"].endswith("orders.csv")
    assert end["status_data"]["started_by"] == {"kind": "file_watch", "rule_id": rule["rule_id"]}
    await asyncio.sleep(1.0)
    client.pending_events()
    (inbox / "notes.txt").write_text("not a csv")
    await asyncio.sleep(1.0)
    assert not [e for e in client.pending_events() if e.get("type") == "workflow_status_update"]


async def test_deletions_are_seen_when_asked_for(engine, client, shared_dir) -> None:
    await save(client, "Deleted", triggered("t", "file_watch_trigger", folder=str(shared_dir),
                                            events="deleted", debounce_ms="50", overlap="parallel"))
    victims = [shared_dir / f"old-{i}.log" for i in range(20)]
    for victim in victims:
        victim.write_text("x")
    await asyncio.sleep(0.5)
    for attempt, victim in enumerate(victims):
        victim.unlink()
        try:
            end = await next_run_end(client, kind="file_watch", timeout=1.5)
            break
        except TimeoutError:
            continue
    else:
        pytest.fail("no deletion was seen")
    assert end["status_data"]["result"]["data"]["kind"] == "deleted"


@pytest.mark.parametrize("where", ["outside", "link", "missing", "relative"])
async def test_a_folder_outside_the_shared_folders_is_refused(engine, client, tmp_path, shared_dir, where) -> None:
    outside = tmp_path / "private"
    outside.mkdir()
    folder = {"outside": str(outside), "missing": str(shared_dir / "nope"), "relative": "inbox",
              "link": str(shared_dir / "door")}[where]
    if where == "link":
        (shared_dir / "door").symlink_to(outside, target_is_directory=True)
    with pytest.raises(EngineReplyError) as refused:
        await save(client, "Sneaky", triggered("t", "file_watch_trigger", folder=folder))
    frame = refused.value.frame
    assert frame["field"] == "folder" and "Nothing was saved" in frame["error"]
    assert await triggers(client) == []
    with pytest.raises(EngineReplyError):
        await client.request("load_preset", name="Sneaky")


async def test_a_folder_no_longer_shared_disables_the_rule(engine, client, shared_dir, tmp_path) -> None:
    await save(client, "Watched", triggered("t", "file_watch_trigger", folder=str(shared_dir)))
    [rule] = await triggers(client)
    assert rule["enabled"] is True
    other = tmp_path / "other"
    other.mkdir()
    engine.set_roots([other])
    pushed = await client.next_event("triggers_list_response", timeout=10,
                                     where=lambda f: f["triggers"] and not f["triggers"][0]["enabled"])
    reason = pushed["triggers"][0]["disabled_reason"]
    assert "no longer shared" in reason and str(shared_dir) in reason
    assert rule["rule_id"] not in engine.automations._watches
    (shared_dir / "after.txt").write_text("x")
    await asyncio.sleep(1.0)
    assert not [e for e in client.pending_events() if e.get("type") == "workflow_status_update"]
    # sharing it again and enabling the rule brings it back
    engine.set_roots([shared_dir])
    reply = await client.request("set_trigger_enabled", rule_id=rule["rule_id"], enabled=True)
    assert reply["enabled"] is True
    await write_until_run(client, shared_dir, "back.txt")


async def test_a_watch_comes_back_after_a_restart(make_engine, owner, shared_dir) -> None:
    from engine.client import EngineClient
    engine = await make_engine()
    client = await EngineClient.connect(engine.url, owner.key)
    await save(client, "Kept", triggered("t", "file_watch_trigger", folder=str(shared_dir), debounce_ms="50"))
    await client.close()
    await engine.stop()
    again = await make_engine()
    client = await EngineClient.connect(again.url, owner.key)
    try:
        assert len(await triggers(client)) == 1  # signed in: the runs' events reach this client
        await wait_for(lambda: len(again.automations._watches) == 1)
        await write_until_run(client, shared_dir, "restart.txt")
    finally:
        await client.close()


async def test_a_restart_without_the_share_disables_the_rule(make_engine, owner, shared_dir, tmp_path) -> None:
    from engine.client import EngineClient
    engine = await make_engine()
    client = await EngineClient.connect(engine.url, owner.key)
    await save(client, "Unshared", triggered("t", "file_watch_trigger", folder=str(shared_dir)))
    await client.close()
    await engine.stop()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = await make_engine(roots=(elsewhere,))
    client = await EngineClient.connect(again.url, owner.key)
    try:
        [rule] = await triggers(client)
        assert rule["enabled"] is False and "shared folders" in rule["disabled_reason"]
    finally:
        await client.close()


async def test_a_watch_on_a_shared_home_folder_never_fires_for_the_engines_own_files(
        make_engine, owner, tmp_path) -> None:
    """Sharing the home folder is the natural thing to do, and the engine's data and log folders
    live inside it. Their files change all the time (the database, its WAL, the log): a watch on
    home must never start a run for them, nor tell a workflow their names."""
    home = tmp_path / "home"
    data, logs = home / ".local" / "share" / "flowork", home / ".local" / "state" / "flowork" / "log"
    logs.mkdir(parents=True)  # the CLI and the desktop app make it when they set up logging
    engine = await make_engine(data_dir=data, log_dir=logs, roots=(home,))
    async with await EngineClient.connect(engine.url, owner.key) as client:
        await _watch_home(engine, client, home, data, logs)


async def _watch_home(engine, client, home: Path, data: Path, logs: Path) -> None:
    await save(client, "Home", triggered("t", "file_watch_trigger", folder=str(home),
                                         events="created,modified,deleted", debounce_ms="50",
                                         overlap="parallel"))
    first = await write_until_run(client, home, "note.txt")  # the watch is up
    assert first["status_data"]["result"]["data"]["path"].startswith(str(home))
    await asyncio.sleep(1.0)
    client.pending_events()
    for index in range(5):  # the engine writes its database and log; so do we, in its folders
        (data / f"probe-{index}").write_text("x")
        (logs / f"probe-{index}").write_text("x")
        await client.request("save_settings", settings={"language": f"l{index}"})
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)
    ends = [e for e in client.pending_events() if e.get("type") == "workflow_status_update"]
    assert ends == [], [e["status_data"].get("result") for e in ends]
    assert engine.running
