"""Settings are served from memory after the first read; writes must still show at once."""

from __future__ import annotations

from engine.app import Engine
from engine.client import EngineClient
from engine.store.settings import SettingsStore


async def test_saved_settings_are_read_back_and_the_callers_object_is_not_kept(engine: Engine) -> None:
    store: SettingsStore = engine.settings
    assert (await store.get("0xabc"))["theme"] == "dark"
    mine = {"theme": "light", "extra": {"a": 1}}
    await store.save("0xabc", mine)
    mine["theme"] = "changed afterwards"
    got = await store.get("0xabc")
    assert got["theme"] == "light" and got["extra"] == {"a": 1}
    assert (await store.get("0xdef"))["theme"] == "dark"


async def test_a_new_store_on_the_same_database_sees_the_saved_settings(engine: Engine,
                                                                        client: EngineClient) -> None:
    await client.request("save_settings", settings={"language": "de"})
    assert (await client.request("request_settings"))["settings"]["language"] == "de"
    fresh = SettingsStore(engine.db)  # type: ignore[arg-type]
    assert (await fresh.get(client.address.lower()))["language"] == "de"
