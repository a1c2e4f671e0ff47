"""Settings and variables end to end: defaults, validation, per-user storage, secrets masked in
every reply and encrypted at rest (checked in the SQLite files themselves), pushes to every tab."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.app import DB_FILE, Engine
from engine.client import EngineClient
from engine.store.settings import DEFAULT_SETTINGS, MAX_SETTINGS_BYTES
from engine.store.variables import MASK
from tests.conftest import ClientFactory, EngineFactory, Wallet


# --- settings ----------------------------------------------------------------------------------

async def test_settings_start_as_the_documented_defaults(client: EngineClient) -> None:
    assert (await client.request("request_settings"))["settings"] == DEFAULT_SETTINGS


async def test_saved_settings_merge_over_defaults_and_survive_a_restart(
        make_engine: EngineFactory, owner: Wallet, stranger: Wallet) -> None:
    engine = await make_engine(owners=(owner.address, stranger.address))
    mine = {"theme": "light", "canvas": {"grid": True, "zoom": 1.25}, "name": "Zoë"}
    async with await EngineClient.connect(engine.url, owner.key) as client:
        saved = await client.request("save_settings", settings=mine)
        assert saved["type"] == "settings_response"
        assert saved["settings"] == {**DEFAULT_SETTINGS, **mine}
    await engine.stop()
    engine = await make_engine(owners=(owner.address, stranger.address))
    async with await EngineClient.connect(engine.url, owner.key) as client:
        assert (await client.request("request_settings"))["settings"] == {**DEFAULT_SETTINGS, **mine}
    async with await EngineClient.connect(engine.url, stranger.key) as other:
        assert (await other.request("request_settings"))["settings"] == DEFAULT_SETTINGS


@pytest.mark.parametrize("settings", [None, "dark", [1, 2], 5])
async def test_settings_must_be_an_object(client: EngineClient, settings: object) -> None:
    reply = await client.request("save_settings", settings=settings, check=False)
    assert reply["code"] == "invalid_field" and reply["type"] == "settings_response"


async def test_settings_size_is_bounded_and_nothing_is_stored(client: EngineClient) -> None:
    reply = await client.request("save_settings", settings={"x": "a" * MAX_SETTINGS_BYTES}, check=False)
    assert reply["code"] == "invalid_field" and str(MAX_SETTINGS_BYTES) in reply["error"]
    reply = await client.request("save_settings", settings={str(i): i for i in range(1001)}, check=False)
    assert reply["code"] == "invalid_field"
    assert (await client.request("request_settings"))["settings"] == DEFAULT_SETTINGS


def a_job() -> dict[str, object]:
    from tests.runtime_support import edge, node, workflow
    return workflow([node("t", "manual_trigger"), node("s", "set_data", data={"ok": True})], [edge("t", "s")])


async def test_an_odd_setting_is_refused_naming_its_key_and_jobs_still_finish(
        client: EngineClient, engine: Engine) -> None:
    from tests.runtime_support import collect, final, start
    reply = await client.request("save_settings", settings={**DEFAULT_SETTINGS, "theme": "light",
                                                            "history_payload_preview_bytes": "lots"}, check=False)
    assert reply["code"] == "invalid_field" and reply["field"] == "settings.history_payload_preview_bytes"
    assert ("'settings.history_payload_preview_bytes' must be a whole number from 256 to 16777216, "
            "not 'lots'") in reply["error"]
    assert (await client.request("request_settings"))["settings"] == DEFAULT_SETTINGS  # nothing stored
    job_id = await start(client, a_job())
    assert final(await collect(client, job_id, timeout=10))["status"] == "SUCCEEDED"
    record = await engine.history.job(job_id)
    assert record is not None and record.status == "SUCCEEDED"


@pytest.mark.parametrize("key, value", [
    ("language", 5), ("language", "x" * 36), ("theme", ["dark"]), ("notifications_enabled", "yes"),
    ("approval_timeout_s", 0), ("approval_timeout_s", "soon"), ("approval_timeout_s", 1e12),
    ("approval_default_decision", "MAYBE"), ("history_retention_days", -1), ("history_max_jobs", 2.5),
    ("history_max_jobs", True), ("history_max_bytes", {"a": 1}), ("history_payload_preview_bytes", 255),
])
async def test_every_known_setting_is_checked(client: EngineClient, key: str, value: object) -> None:
    reply = await client.request("save_settings", settings={key: value}, check=False)
    assert reply["code"] == "invalid_field" and reply["field"] == f"settings.{key}", reply
    assert (await client.request("request_settings"))["settings"] == DEFAULT_SETTINGS


async def test_settings_are_stored_in_their_typed_form(client: EngineClient) -> None:
    sent = {"approval_timeout_s": "120", "approval_default_decision": "approved",
            "notifications_enabled": "false", "history_retention_days": 0.5, "history_max_jobs": 10.0,
            "theme": None, "gui_panel": {"width": 300}}
    saved = (await client.request("save_settings", settings=sent))["settings"]
    assert saved == {**DEFAULT_SETTINGS, "approval_timeout_s": 120, "approval_default_decision": "APPROVED",
                     "notifications_enabled": False, "history_retention_days": 0.5,
                     "history_max_jobs": 10, "gui_panel": {"width": 300}}
    assert (await client.request("request_settings"))["settings"] == saved


async def test_an_odd_value_stored_by_an_older_engine_reads_as_its_default(
        make_engine: EngineFactory, owner: Wallet, data_dir: Path) -> None:
    from tests.runtime_support import collect, final, start
    engine = await make_engine()
    await engine.stop()
    with sqlite3.connect(data_dir / DB_FILE) as db:  # what an engine without the checks stored
        db.execute("INSERT INTO settings (address, body, updated_at) VALUES (?, ?, 0)",
                   (owner.address.lower(), '{"history_payload_preview_bytes": "lots", '
                                           '"approval_default_decision": 7, "theme": "light"}'))
    engine = await make_engine()
    async with await EngineClient.connect(engine.url, owner.key) as client:
        shown = (await client.request("request_settings"))["settings"]
        assert shown == {**DEFAULT_SETTINGS, "theme": "light"}
        job_id = await start(client, a_job())
        assert final(await collect(client, job_id, timeout=10))["status"] == "SUCCEEDED"


# --- variables ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["lower", "WITH SPACE", "DASH-ED", "", "X" * 65, "ÄÖ", "A.B", "../A"])
async def test_variable_names_are_capitals_digits_and_underscores(client: EngineClient, name: str) -> None:
    reply = await client.request("update_variable", name=name, data={"value": "v"}, check=False)
    assert reply["code"] == "invalid_field" and reply["field"] == "name"


@pytest.mark.parametrize("data", [
    {"value": ["a"], "mode": "single"}, {"value": [], "mode": "random"}, {"value": "a", "mode": "random"},
    {"value": ["a", 1], "mode": "sequential"}, {"value": "a", "mode": "cyclic"}, {},
    {"value": None}, {"value": {"a": 1}}, {"value": "a", "is_secret": "yes"},
    {"value": "a", "is_enabled": 1},
])
async def test_variable_data_is_validated(client: EngineClient, data: dict[str, object]) -> None:
    reply = await client.request("update_variable", name="V", data=data, check=False)
    assert reply["code"] == "invalid_field", reply
    assert (await client.request("request_variables"))["variables"] == []


async def test_variables_modes_and_values(client: EngineClient, engine: Engine, owner: Wallet) -> None:
    await client.request("update_variable", name="ONE", data={"value": "plain", "mode": "single"})
    await client.request("update_variable", name="NUM", data={"value": 42})
    await client.request("update_variable", name="PICK", data={"value": ["x", "y"], "mode": "random"})
    await client.request("update_variable", name="NEXT",
                         data={"value": ["a", "b", "c"], "mode": "sequential"})
    await client.request("update_variable", name="OFF", data={"value": "z", "is_enabled": False})
    listed = {v["name"]: v for v in (await client.request("request_variables"))["variables"]}
    assert listed["ONE"] == {"name": "ONE", "value": "plain", "is_secret": False, "is_enabled": True,
                             "mode": "single"}
    assert listed["NUM"]["value"] == "42"
    assert listed["PICK"]["value"] == {"type": "random", "value": ["x", "y"]} and listed["PICK"]["mode"] == "random"
    assert listed["OFF"]["is_enabled"] is False
    key = owner.address.lower()
    seen = [await engine.variables.resolve(key) for _ in range(4)]
    assert [s["NEXT"] for s in seen] == ["a", "b", "c", "a"]
    assert all(s["PICK"] in ("x", "y") for s in seen)
    assert all("OFF" not in s and s["ONE"] == "plain" for s in seen)


def files_contain(folder: Path, needle: bytes) -> list[str]:
    return [p.name for p in folder.iterdir() if p.is_file() and needle in p.read_bytes()]


async def test_secrets_are_masked_in_every_reply_and_encrypted_at_rest(
        make_client: ClientFactory, engine: Engine, owner: Wallet, data_dir: Path) -> None:
    client = await make_client()
    tab = await make_client()
    await tab.request("request_settings")
    secret, items = "sk-live-Sup3rSecret-ü", ["tok-alpha-1", "tok-beta-2"]
    ack = await client.request("update_variable", name="API_KEY", data={"value": secret, "is_secret": True})
    await client.request("update_variable", name="KEYS",
                         data={"value": items, "is_secret": True, "mode": "random"})
    frames = [ack, *[await c.next_event("variables_response") for c in (client, tab, client, tab)],
              await client.request("request_variables")]
    for frame in frames:
        text = str(frame)
        assert secret not in text and "tok-alpha-1" not in text and "tok-beta-2" not in text
    listed = {v["name"]: v for v in frames[-1]["variables"]}
    assert listed["API_KEY"]["value"] == MASK and listed["KEYS"]["value"] == {"type": "random", "value": [MASK, MASK]}
    # At rest: neither the database nor its WAL holds the clear text; the row holds a token.
    assert files_contain(data_dir, secret.encode()) == []
    assert files_contain(data_dir, b"tok-alpha-1") == []
    with sqlite3.connect(data_dir / DB_FILE) as db:
        blob, is_secret = db.execute("SELECT value, is_secret FROM variables WHERE name = 'API_KEY'").fetchone()
    assert is_secret == 1 and bytes(blob).startswith(b"gAAAA")  # a Fernet token
    resolved = await engine.variables.resolve(owner.address.lower())
    assert resolved["API_KEY"] == secret and resolved["KEYS"] in items


async def test_the_mask_sent_back_keeps_the_secret(client: EngineClient, engine: Engine, owner: Wallet) -> None:
    await client.request("update_variable", name="TOKEN", data={"value": "s3cret", "is_secret": True})
    await client.request("update_variable", name="TOKEN",
                         data={"value": MASK, "is_secret": True, "is_enabled": False})
    await client.request("update_variable", name="LIST",
                         data={"value": ["one", "two"], "is_secret": True, "mode": "sequential"})
    await client.request("update_variable", name="LIST",
                         data={"value": [MASK, MASK, "three"], "is_secret": True, "mode": "sequential"})
    listed = {v["name"]: v for v in (await client.request("request_variables"))["variables"]}
    assert listed["TOKEN"]["is_enabled"] is False and listed["TOKEN"]["value"] == MASK
    assert listed["LIST"]["value"] == {"type": "sequential", "value": [MASK, MASK, MASK]}
    await client.request("update_variable", name="TOKEN", data={"value": MASK, "is_secret": True})
    owner_key = owner.address.lower()
    assert (await engine.variables.resolve(owner_key))["TOKEN"] == "s3cret"
    seq = [(await engine.variables.resolve(owner_key))["LIST"] for _ in range(3)]
    assert seq == ["two", "three", "one"]  # the resolve above took "one"; the masks kept both
    # Making it plain with the mask still in place would reveal nothing and store nonsense.
    reply = await client.request("update_variable", name="TOKEN", data={"value": MASK}, check=False)
    assert reply["code"] == "invalid_field" and "type the value again" in reply["error"]
    assert (await engine.variables.resolve(owner_key))["TOKEN"] == "s3cret"


async def test_every_change_is_pushed_to_all_tabs(make_client: ClientFactory) -> None:
    tab1, tab2 = await make_client(), await make_client()
    await tab2.request("request_settings")
    await tab1.request("update_variable", name="A", data={"value": "1"})
    await tab1.request("update_variable", name="B", data={"value": "2"})
    await tab1.request("delete_variable", name="A")
    for tab in (tab1, tab2):
        names = [[v["name"] for v in (await tab.next_event("variables_response"))["variables"]]
                 for _ in range(3)]
        assert names == [["A"], ["A", "B"], ["B"]]


async def test_deleting_a_missing_variable_is_not_found(client: EngineClient) -> None:
    reply = await client.request("delete_variable", name="NOPE", check=False)
    assert reply["code"] == "not_found" and "NOPE" in reply["error"]


async def test_variables_are_per_user(make_engine: EngineFactory, owner: Wallet, stranger: Wallet) -> None:
    engine = await make_engine(owners=(owner.address, stranger.address))
    async with await EngineClient.connect(engine.url, owner.key) as a, \
            await EngineClient.connect(engine.url, stranger.key) as b:
        await a.request("update_variable", name="SHARED_NAME", data={"value": "mine"})
        assert (await b.request("request_variables"))["variables"] == []
        reply = await b.request("delete_variable", name="SHARED_NAME", check=False)
        assert reply["code"] == "not_found"
        assert [v["value"] for v in (await a.request("request_variables"))["variables"]] == ["mine"]
