"""The frame rules over a real socket with real signatures: error envelope, request_id echo,
unknown types, every auth failure the GUI can meet, and the connection staying usable."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from engine.app import Engine
from engine.client import EngineClient, Signer
from tests.conftest import ClientFactory, Wallet

PREFIX = "Flowork GUI-to-Engine Authentication: "


async def still_usable(client: EngineClient) -> None:
    reply = await client.request("request_settings")
    assert reply["type"] == "settings_response" and "settings" in reply


async def raw_reply(client: EngineClient, text: str | bytes) -> dict[str, Any]:
    await client.send_raw(text)
    return await client.next_event(where=lambda f: "error" in f)


def assert_error(frame: dict[str, Any], *, code: str, type_: str, request_type: str | None = None,
                 request_id: object = None, text: str | None = None) -> None:
    assert frame["type"] == type_
    assert frame["code"] == code
    assert isinstance(frame["error"], str) and frame["error"]
    assert frame.get("request_type") == request_type
    assert frame.get("request_id") == request_id
    if text is not None:
        assert text in frame["error"]


async def test_bad_json_gets_an_error_and_the_connection_stays(client: EngineClient) -> None:
    reply = await raw_reply(client, "{not json")
    assert_error(reply, code="bad_json", type_="error")
    await still_usable(client)


async def test_binary_frames_are_refused(client: EngineClient) -> None:
    reply = await raw_reply(client, json.dumps(client.frame({"type": "request_settings"})).encode())
    assert_error(reply, code="bad_frame", type_="error", text="Binary frames")
    await still_usable(client)


@pytest.mark.parametrize("frame", [
    "[]", '"text"', "{}", '{"payload": 5}', '{"payload": {"type": 5}}', '{"payload": {"type": ""}}',
    json.dumps({"payload": {"type": "x" * 65}}),
    "[" * 100 + "]" * 100,
    '{"auth": {}, "payload": {"type": "request_settings", "deep": ' + "[" * 70 + "]" * 70 + "}}",
])
async def test_frames_without_the_envelope_are_refused(client: EngineClient, frame: str) -> None:
    reply = await raw_reply(client, frame)
    assert reply["code"] in ("bad_frame", "bad_json") and reply["type"] == "error"
    await still_usable(client)


async def test_missing_auth_is_refused_with_the_request_echoes(client: EngineClient) -> None:
    await client.send_raw(json.dumps({"payload": {"type": "request_settings", "request_id": "q1"}}))
    reply = await client.next_event(where=lambda f: f.get("request_id") == "q1")
    assert_error(reply, code="auth_missing", type_="settings_response",
                 request_type="request_settings", request_id="q1")
    await still_usable(client)


async def test_stale_and_future_timestamps_are_refused(client: EngineClient) -> None:
    for skew_ms in (-400_000, 400_000):
        auth = client.signer.auth_block(int(time.time() * 1000) + skew_ms)
        reply = await client.request("request_variables", auth=auth, check=False)
        assert_error(reply, code="auth_stale", type_="variables_response",
                     request_type="request_variables", request_id=reply["request_id"],
                     text="check the computer's clock")
    await still_usable(client)


async def test_a_message_in_another_format_is_refused(client: EngineClient) -> None:
    for message in (f"Sign in: {int(time.time() * 1000)}", f"{PREFIX}{time.time()}", PREFIX):
        auth = {"address": client.address, "message": message,
                "signature": client.signer.sign_text(message)}
        reply = await client.request("request_settings", auth=auth, check=False)
        assert reply["code"] == "auth_format" and PREFIX.strip() in reply["error"]
    await still_usable(client)


async def test_bad_and_foreign_signatures_are_refused(client: EngineClient, stranger: Wallet) -> None:
    # Signed in first: a connection that has not is closed after four refusals (test_preauth_limits).
    await client.request("request_settings")
    good = client.signer.auth_block()
    cases = [
        {**good, "signature": "0x" + "12" * 65},                  # recovers nobody sensible
        {**good, "signature": "0xnothex"},                        # malformed
        {**good, "signature": good["signature"][:-2] + "1d"},     # invalid recovery id
        {**Signer(stranger.key).auth_block(), "address": client.address},  # someone else signed
        {**good, "message": good["message"][:-1] + str((int(good["message"][-1]) + 1) % 10)},
    ]
    for auth in cases:
        reply = await client.request("request_settings", auth=auth, check=False)
        assert_error(reply, code="auth_signature", type_="settings_response",
                     request_type="request_settings", request_id=reply["request_id"])
    await still_usable(client)


async def test_addresses_off_the_allow_list_get_the_gui_text(engine: Engine, make_client: ClientFactory,
                                                             stranger: Wallet) -> None:
    outsider = await make_client(stranger)
    for msg_type in ("request_settings", "request_presets_list", "no_such_type"):
        reply = await outsider.request(msg_type, check=False)
        assert reply["code"] == "not_authorized"
        assert f"not authorized for engine {engine.config.engine_id}" in reply["error"]
    assert outsider.pending_events() == []  # no status update for someone not authorized
    owner_client = await make_client()
    await still_usable(owner_client)


async def test_unknown_types_get_a_status_response(client: EngineClient) -> None:
    reply = await client.request("request_training_job_status", check=False)
    assert reply == {"type": "status_response", "request_type": "request_training_job_status",
                     "status": "Command 'request_training_job_status' received but not handled.",
                     "request_id": reply["request_id"]}


@pytest.mark.parametrize("request_id", ["abc-1", 7, 0])
async def test_request_id_is_echoed_on_replies_and_errors(client: EngineClient, request_id: object) -> None:
    await client.send({"type": "request_settings", "request_id": request_id})
    reply = await client.next_event("settings_response")
    assert reply["request_id"] == request_id and "error" not in reply
    await client.send({"type": "update_variable", "request_id": request_id, "name": "bad name"})
    error = await client.next_event(where=lambda f: "error" in f)
    assert error["request_id"] == request_id and error["code"] == "invalid_field"
    await client.send_raw(json.dumps({"payload": {"type": "request_settings", "request_id": request_id}}))
    error = await client.next_event(where=lambda f: "error" in f)
    assert error["request_id"] == request_id and error["code"] == "auth_missing"


@pytest.mark.parametrize("request_id", [True, {"a": 1}, [1], "x" * 129, 1.5, 2**53 + 1, -(10**30)])
async def test_request_ids_we_would_not_accept_are_not_echoed(client: EngineClient, request_id: object) -> None:
    await client.send({"type": "request_settings", "request_id": request_id})
    reply = await client.next_event("settings_response")
    assert "request_id" not in reply


@pytest.mark.parametrize(("msg_type", "fields", "field"), [
    ("save_settings", {}, "settings"),
    ("save_settings", {"settings": [1]}, "settings"),
    ("update_variable", {"name": "lower", "data": {"value": "x"}}, "name"),
    ("update_variable", {"name": "OK", "data": "x"}, "data"),
    ("request_components_list", {"component_type": "widgets"}, "component_type"),
    ("request_directory_list", {}, "path"),
    ("request_directory_list", {"path": "/", "limit": 0}, "limit"),
    ("load_preset", {"name": "../x"}, "name"),
    ("load_preset", {"name": "a", "owner_id": "0x12"}, "owner_id"),
    ("request_connection_history", {"job_id": "j"}, "connection_id"),
    ("share_preset", {"name": "a", "with": "everyone"}, "with"),
    ("share_preset", {"name": "a"}, "with"),
    ("delete_variable", {"name": "a-b"}, "name"),
    ("delete_preset", {}, "name"),
    ("save_preset", {"name": "a", "signature": "0x" + "1" * 130}, "workflow_data"),
    ("save_preset", {"name": "a", "workflow_data": {}}, "signature"),
    ("load_preset", {"name": "a", "version": 0}, "version"),
    ("request_connection_history", {"connection_id": "c"}, "job_id"),
    ("request_directory_list", {"path": "/", "offset": -1}, "offset"),
    ("request_directory_list", {"path": 5}, "path"),
])
async def test_bad_fields_name_the_field(client: EngineClient, msg_type: str, fields: dict[str, Any],
                                         field: str) -> None:
    reply = await client.request(msg_type, check=False, **fields)
    assert reply["code"] == "invalid_field" and reply["field"] == field
    assert f"'{field}'" in reply["error"] and reply["request_type"] == msg_type
    await still_usable(client)
