"""Components end to end: the GUI's shape, user components from the data folder, and broken
manifests skipped with a logged reason (never fatal)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from engine.client import EngineClient
from engine.components.catalog import COMPONENT_TYPES
from tests.conftest import EngineFactory, Wallet


def make_component(base: Path, ctype: str, cid: str, manifest: object | None = None, *,
                   raw: str | None = None, entry: str | None = "module.py") -> Path:
    folder = base / "components" / ctype / cid
    folder.mkdir(parents=True)
    if raw is not None:
        (folder / "manifest.json").write_text(raw, encoding="utf-8")
    elif manifest is not None:
        (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    if entry:
        (folder / entry).write_text("def execute(payload, config, ctx):\n    return payload\n")
    return folder


GOOD = {"name": "Say Hello", "version": "1.0", "properties": [
    {"id": "greeting", "type": "string", "default": "Hello"}], "output_ports": ["success"]}


async def test_user_components_are_listed_in_the_gui_shape(make_engine: EngineFactory, owner: Wallet,
                                                            data_dir: Path) -> None:
    make_component(data_dir, "modules", "say_hello", GOOD)
    make_component(data_dir, "triggers", "on-timer", {"name": "Timer", "entry_point": "main.py"},
                   entry="main.py")
    engine = await make_engine()
    async with await EngineClient.connect(engine.url, owner.key) as client:
        replies = {t: await client.request("request_components_list", component_type=t)
                   for t in COMPONENT_TYPES}
    for ctype, reply in replies.items():
        assert reply["type"] == "components_list_response" and reply["component_type"] == ctype
        for component in reply["components"]:
            assert {"id", "name", "manifest", "is_installed"} <= set(component)
            assert component["is_installed"] is True
    hello = next(c for c in replies["modules"]["components"] if c["id"] == "say_hello")
    assert hello["name"] == "Say Hello"
    assert hello["manifest"]["properties"] == GOOD["properties"]
    assert hello["manifest"]["id"] == "say_hello" and hello["manifest"]["type"] == "modules"
    assert hello["is_builtin"] is False
    assert any(c["id"] == "on-timer" for c in replies["triggers"]["components"])
    assert not any(c["id"] == "on-timer" for c in replies["modules"]["components"])


BROKEN = [
    ("bad_json", None, "{not json", "module.py", "not valid JSON"),
    ("not_object", None, "[1, 2]", "module.py", "must hold an object"),
    ("wrong_id", {"id": "other", "name": "X"}, None, "module.py", "differs from the folder name"),
    ("no_entry", {"name": "X"}, None, None, "entry point module.py is missing"),
    ("bad_entry", {"name": "X", "entry_point": "../escape.py"}, None, "module.py", "'entry_point' must be"),
    ("bad_props", {"name": "X", "properties": {"id": "a"}}, None, "module.py", "'properties' must be"),
    ("bad_name", {"name": 5}, None, "module.py", "'name' must be a string"),
    ("no_manifest", None, None, "module.py", "has no manifest.json"),
    ("Bad Folder", {"name": "X"}, None, "module.py", "not a valid id"),
]


async def test_broken_manifests_are_skipped_with_a_logged_reason(
        make_engine: EngineFactory, owner: Wallet, data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    for cid, manifest, raw, entry, _ in BROKEN:
        make_component(data_dir, "plugins", cid, manifest, raw=raw, entry=entry)
    make_component(data_dir, "plugins", "fine", GOOD)
    caplog.set_level(logging.WARNING, logger="engine.components")
    engine = await make_engine()
    async with await EngineClient.connect(engine.url, owner.key) as client:
        listed = (await client.request("request_components_list", component_type="plugins"))["components"]
    ids = {c["id"] for c in listed}
    assert "fine" in ids and not ids & {cid for cid, *_ in BROKEN}
    log_text = caplog.text
    for cid, *_, reason in BROKEN:
        assert reason in log_text, cid
        assert cid in log_text


async def test_install_and_uninstall_are_refused_honestly(client: EngineClient) -> None:
    for msg_type in ("install_component", "uninstall_component"):
        reply = await client.request(msg_type, component_type="modules", component_id="x", check=False)
        assert reply["type"] == "component_install_status" and reply["code"] == "forbidden"
        assert "components/<type>/<id>" in reply["message"] and reply["component_id"] == "x"
        assert reply["success"] is False and "error" not in reply


async def test_catalogs_this_engine_does_not_fill_are_empty_lists(client: EngineClient) -> None:
    for msg_type, reply_type, key in (("request_prompts_list", "prompts_list_response", "prompts"),
                                      ("request_local_models", "local_models_response", "models")):
        reply = await client.request(msg_type)
        assert reply["type"] == reply_type and reply[key] == []
