"""Presets end to end: validated names, the GUI's canonical-JSON signature, versions, pushes,
sharing with one address or everyone."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from engine.app import Engine
from engine.client import EngineClient
from tests.conftest import ClientFactory, EngineFactory, Wallet

# The workflow and the exact text the GUI signs for it (checked against node in test_canonical).
WORKFLOW: dict[str, Any] = {
    "nodes": [{"id": "n1", "name": "Grüße 你好 🚀", "x": 10.0, "y": -2.5,
               "module_id": "debug", "config_values": {"z": [3, 1.5, None, True],
                                                       "a": {"nested": {"deep": 1e21}}}}],
    "connections": [],
    "global_loop_config": {"isEnabled": False, "iterations": 1, "delayStatic": 0.1},
}
SIGNED_TEXT = (
    '{"workflow_data":{"connections":[],"global_loop_config":{"delayStatic":0.1,'
    '"isEnabled":false,"iterations":1},"nodes":[{"config_values":{"a":{"nested":'
    '{"deep":1e+21}},"z":[3,1.5,null,true]},"id":"n1","module_id":"debug",'
    '"name":"Grüße 你好 🚀","x":10,"y":-2.5}]}}')


def gui_signature(wallet: Wallet, text: str = SIGNED_TEXT) -> str:
    """Signed with eth-account directly, not through the engine's canonical JSON code."""
    signed = Account.from_key(wallet.key).sign_message(encode_defunct(text=text))
    return "0x" + signed.signature.hex().removeprefix("0x")


def workflow(n: int) -> dict[str, Any]:
    return {"nodes": [{"id": f"n{i}", "name": f"Node {i} · ünïcode", "x": i * 1.5, "y": i,
                       "module_id": "m", "config_values": {"ratio": i / 7, "count": i,
                                                           "deep": {"list": [i, {"k": "v"}]}}}
                      for i in range(n)],
            "connections": [{"id": "c1", "source": "n0", "target": "n1", "source_port_name": "out",
                             "target_port_name": "in", "type": "default", "animated": True}],
            "global_loop_config": {"isEnabled": True, "iterations": 3, "delayRandomMax": 2.25}}


async def save(client: EngineClient, name: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return await client.request("save_preset", name=name, workflow_data=data,
                                signature=client.signer.sign_workflow(data), **extra)


async def test_a_preset_signed_as_the_gui_signs_is_saved_and_loaded(client: EngineClient,
                                                                    owner: Wallet) -> None:
    reply = await client.request("save_preset", name="Grüße", workflow_data=WORKFLOW,
                                 signature=gui_signature(owner))
    assert reply["type"] == "status_response" and reply["version"] == 1 and "error" not in reply
    loaded = await client.request("load_preset", name="Grüße")
    assert loaded["type"] == "load_preset_response" and loaded["name"] == "Grüße"
    assert loaded["workflow_data"] == WORKFLOW


async def test_signatures_that_do_not_match_are_refused_and_nothing_is_saved(
        client: EngineClient, owner: Wallet, stranger: Wallet) -> None:
    changed = {**WORKFLOW, "connections": [{"id": "c"}]}
    cases = [
        ("signed by someone else", WORKFLOW, gui_signature(stranger)),
        ("workflow changed after signing", changed, gui_signature(owner)),
        ("whitespace in the signed text", WORKFLOW, gui_signature(owner, SIGNED_TEXT.replace(",", ", "))),
        ("python json instead of canonical", WORKFLOW,
         gui_signature(owner, '{"workflow_data":' + __import__("json").dumps(WORKFLOW) + "}")),
        ("high recovery id", WORKFLOW, gui_signature(owner)[:-2] + "1d"),
    ]
    for label, data, signature in cases:
        reply = await client.request("save_preset", name="P", workflow_data=data,
                                     signature=signature, check=False)
        assert reply["code"] == "auth_signature", label
        assert "nothing was saved" in reply["error"]
    bad = await client.request("save_preset", name="P", workflow_data=WORKFLOW, signature="0x12",
                               check=False)
    assert bad["code"] == "invalid_field" and bad["field"] == "signature"
    assert (await client.request("request_presets_list"))["presets"] == []


@pytest.mark.parametrize("name", ["../evil", "..", ".", "/etc/passwd", "a/b", "a\\b", "C:\\x",
                                  "\\\\server\\share", "x\x00y", "tab\tname", " lead", "trail ",
                                  "", "n" * 129])
async def test_preset_names_are_validated(client: EngineClient, name: str, data_dir) -> None:
    before = sorted(p.name for p in data_dir.rglob("*"))
    for msg_type, fields in (("save_preset", {"workflow_data": WORKFLOW, "signature": "0x" + "1" * 130}),
                             ("load_preset", {}), ("delete_preset", {}), ("share_preset", {"with": "*"})):
        reply = await client.request(msg_type, name=name, check=False, **fields)
        assert reply["code"] == "invalid_field" and reply["field"] == "name", (msg_type, reply)
    assert sorted(p.name for p in data_dir.rglob("*")) == before


@pytest.mark.parametrize("data", [{"nodes": "x"}, {"nodes": [1]}, {"connections": {}},
                                  {"connections": ["a"]}])
async def test_workflow_shape_is_checked(client: EngineClient, data: dict[str, Any]) -> None:
    reply = await client.request(
        "save_preset", name="P", workflow_data=data, signature=client.signer.sign_workflow(data),
        check=False)
    assert reply["code"] == "invalid_field"


async def test_versions_are_kept_and_the_latest_is_loaded(client: EngineClient) -> None:
    v1, v2 = workflow(2), workflow(3)
    assert (await save(client, "Flow", v1))["version"] == 1
    assert (await save(client, "Flow", v2))["version"] == 2
    assert (await client.request("load_preset", name="Flow"))["workflow_data"] == v2
    old = await client.request("load_preset", name="Flow", version=1)
    assert old["workflow_data"] == v1 and old["version"] == 1
    listed = (await client.request("request_presets_list"))["presets"]
    assert [(p["name"], p["version"], p["versions"]) for p in listed] == [("Flow", 2, 2)]
    missing = await client.request("load_preset", name="Flow", version=3, check=False)
    assert missing["code"] == "not_found"


async def test_list_is_sorted_and_delete_removes_every_version(client: EngineClient) -> None:
    for name in ("beta", "Alpha", "gamma"):
        await save(client, name, workflow(1))
    await save(client, "beta", workflow(2))
    names = [p["name"] for p in (await client.request("request_presets_list"))["presets"]]
    assert names == ["Alpha", "beta", "gamma"]
    reply = await client.request("delete_preset", name="beta")
    assert reply["type"] == "status_response" and "deleted" in reply["status"]
    assert (await client.request("load_preset", name="beta", check=False))["code"] == "not_found"
    assert (await client.request("delete_preset", name="beta", check=False))["code"] == "not_found"
    names = [p["name"] for p in (await client.request("request_presets_list"))["presets"]]
    assert names == ["Alpha", "gamma"]


async def test_changes_push_the_list_to_every_tab(make_client: ClientFactory) -> None:
    tab1, tab2 = await make_client(), await make_client()
    await tab2.request("request_settings")
    await save(tab1, "A", workflow(1))
    await save(tab1, "B", workflow(1))
    await tab1.request("share_preset", name="A", **{"with": "*"})
    await tab1.request("delete_preset", name="B")
    for tab in (tab1, tab2):
        lists = [(await tab.next_event("presets_list_response"))["presets"] for _ in range(4)]
        assert [[p["name"] for p in lst] for lst in lists] == [["A"], ["A", "B"], ["A", "B"], ["A"]]
        assert lists[2][0]["shared_with"] == ["*"]


async def test_sharing_with_one_address_or_everyone(make_engine: EngineFactory, owner: Wallet,
                                                     stranger: Wallet) -> None:
    third = Wallet()
    engine = await make_engine(owners=(owner.address, stranger.address, third.address))
    alice = await EngineClient.connect(engine.url, owner.key)
    bob = await EngineClient.connect(engine.url, stranger.key)
    carol = await EngineClient.connect(engine.url, third.key)
    try:
        await save(alice, "Shared", workflow(2))
        await save(alice, "Private", workflow(1))

        async def load(who: EngineClient, name: str) -> dict[str, Any]:
            return await who.request("load_preset", name=name, owner_id=alice.address, check=False)

        assert (await load(bob, "Shared"))["code"] == "not_found"
        reply = await alice.request("share_preset", name="Shared", **{"with": [stranger.address]})
        assert reply["type"] == "share_preset_response"
        assert reply["shared_with"] == [stranger.address.lower()]
        got = await load(bob, "Shared")
        assert got["workflow_data"] == workflow(2) and got["owner_id"] == alice.address
        assert (await load(carol, "Shared"))["code"] == "not_found"
        missing, private = await load(bob, "Nope"), await load(bob, "Private")
        assert missing["code"] == private["code"] == "not_found"
        assert missing["error"].replace("Nope", "X") == private["error"].replace("Private", "X")
        await alice.request("share_preset", name="Shared", **{"with": "*"})
        assert (await load(carol, "Shared"))["workflow_data"] == workflow(2)
        await alice.request("share_preset", name="Shared", **{"with": []})
        assert (await load(bob, "Shared"))["code"] == "not_found"
        # Bob's own list never shows Alice's presets; Bob cannot delete or share them.
        assert (await bob.request("request_presets_list"))["presets"] == []
        assert (await bob.request("delete_preset", name="Shared", check=False))["code"] == "not_found"
        nope = await bob.request("share_preset", name="Shared", check=False, **{"with": "*"})
        assert nope["code"] == "not_found"
        unknown = await alice.request("share_preset", name="Ghost", check=False, **{"with": "*"})
        assert unknown["code"] == "not_found"
        bad = await alice.request("share_preset", name="Shared", check=False, **{"with": ["0x12"]})
        assert bad["code"] == "invalid_field" and bad["field"] == "with"
    finally:
        for c in (alice, bob, carol):
            await c.close()


async def test_loading_with_ones_own_owner_id_works(client: EngineClient) -> None:
    await save(client, "Mine", workflow(1))
    got = await client.request("load_preset", name="Mine", owner_id=client.address.lower())
    assert got["workflow_data"] == workflow(1)


async def test_presets_survive_a_restart(make_engine: EngineFactory, owner: Wallet) -> None:
    engine = await make_engine()
    async with await EngineClient.connect(engine.url, owner.key) as client:
        await save(client, "Keep", workflow(3))
    await engine.stop()
    engine = await make_engine()
    async with await EngineClient.connect(engine.url, owner.key) as client:
        assert (await client.request("load_preset", name="Keep"))["workflow_data"] == workflow(3)


# A GUI that rebuilds each object with sorted keys and then calls JSON.stringify gets
# JavaScript's property order: integer-like keys first, numerically. Produced with node:
#   JSON.stringify(sortKeys(doc)) for the document below.
INDEX_KEYS_WORKFLOW: dict[str, Any] = {
    "nodes": [{"id": "n", "config_values": {"10": "b", "2": "a", "x": 1, "02": "c"}}],
    "connections": []}
INDEX_KEYS_SORTED_TEXT = ('{"workflow_data":{"connections":[],"nodes":[{"config_values":'
                          '{"02":"c","10":"b","2":"a","x":1},"id":"n"}]}}')
INDEX_KEYS_JS_ORDER_TEXT = ('{"workflow_data":{"connections":[],"nodes":[{"config_values":'
                            '{"2":"a","10":"b","02":"c","x":1},"id":"n"}]}}')


@pytest.mark.parametrize("signed_text", [INDEX_KEYS_SORTED_TEXT, INDEX_KEYS_JS_ORDER_TEXT],
                         ids=["sorted keys", "javascript property order"])
async def test_integer_like_keys_verify_in_either_canonical_order(client: EngineClient, owner: Wallet,
                                                                  signed_text: str) -> None:
    reply = await client.request("save_preset", name="Indexed", workflow_data=INDEX_KEYS_WORKFLOW,
                                 signature=gui_signature(owner, signed_text))
    assert reply["version"] == 1 and "error" not in reply
    loaded = await client.request("load_preset", name="Indexed")
    assert loaded["workflow_data"] == INDEX_KEYS_WORKFLOW


async def test_the_javascript_order_variant_still_needs_the_owners_signature(
        client: EngineClient, stranger: Wallet) -> None:
    reply = await client.request("save_preset", name="Indexed", workflow_data=INDEX_KEYS_WORKFLOW,
                                 signature=gui_signature(stranger, INDEX_KEYS_JS_ORDER_TEXT), check=False)
    assert reply["code"] == "auth_signature"
    assert (await client.request("request_presets_list"))["presets"] == []
