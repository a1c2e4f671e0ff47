"""{{vars.NAME}} resolves against the owner's variables, secrets included, and a secret value
never appears in a frame, in the recorded history or in the engine log."""

from __future__ import annotations

import json
import logging

import pytest

from engine.app import Engine
from engine.client import EngineClient
from tests.runtime_support import collect, edge, final, node, start, workflow
from tests.test_modules_http import LocalHttpServer

SECRET = "s3cr3t-\"token\"-value"


async def test_vars_resolve_and_secrets_are_masked_everywhere(engine: Engine, client: EngineClient,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await client.request("update_variable", name="API_KEY",
                         data={"value": SECRET, "is_secret": True, "is_enabled": True, "mode": "single"})
    await client.request("update_variable", name="CITY",
                         data={"value": "Oslo", "is_secret": False, "is_enabled": True, "mode": "single"})
    with LocalHttpServer() as server:
        wf = workflow([
            node("t", "manual_trigger"),
            node("s", "set_data", data={"token": "{{vars.API_KEY}}", "greeting": "Hello {{vars.CITY}}"}),
            node("l", "log_message", message="key={{vars.API_KEY}} city={{ vars.CITY }}"),
            node("h", "http_request", method="POST", url=server.url("/hook"),
                 headers={"Authorization": "Bearer {{vars.API_KEY}}"}, body="{{data.greeting}}"),
            node("p", "debug_popup", popup_title="Token {{vars.API_KEY}}"),
            node("fail", "stop_and_error", message="failed with {{vars.API_KEY}}"),
        ], [edge("t", "s", edge_id="c1"), edge("s", "l", edge_id="c2"), edge("l", "h", edge_id="c3"),
            edge("h", "p", edge_id="c4"), edge("p", "fail", edge_id="c5")])
        job_id = await start(client, wf)
        events = await collect(client, job_id)
        # The real value reached the outside world: the variables did resolve.
        assert server.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
        assert server.requests[0]["body"] == b"Hello Oslo"
    text = json.dumps(events, ensure_ascii=False)
    assert "s3cr3t" not in text
    assert any(e["type"] == "log" and e["message"] == "key=******** city=Oslo" for e in events)
    popup = next(e for e in events if e["type"] == "SHOW_DEBUG_POPUP")
    assert popup["title"] == "Token ********" and popup["content"]["token"] == "********"
    assert final(events)["status"] == "FAILED" and final(events)["error"].endswith("failed with ********")
    for connection_id in ("c1", "c2", "c3", "c4", "c5"):
        reply = await client.request("request_connection_history", job_id=job_id, connection_id=connection_id)
        assert "s3cr3t" not in json.dumps(reply, ensure_ascii=False)
    reply = await client.request("request_connection_history", job_id=job_id, connection_id="c2")
    assert reply["history"][0]["payload"]["data"]["token"] == "********"
    status = await client.request("request_job_status", job_id=job_id)
    assert "s3cr3t" not in json.dumps(status)
    assert "s3cr3t" not in caplog.text
    assert "key=******** city=Oslo" in caplog.text  # the log line itself was written, masked
    db_bytes = (engine.config.data_dir / "engine.sqlite3").read_bytes()
    wal = engine.config.data_dir / "engine.sqlite3-wal"
    db_bytes += wal.read_bytes() if wal.exists() else b""
    assert b"s3cr3t" not in db_bytes  # neither in history nor in clear among the variables


async def test_an_unknown_variable_fails_the_node_clearly(client: EngineClient) -> None:
    job_id = await start(client, workflow([node("l", "log_message", message="{{vars.MISSING}}")], []))
    done = final(await collect(client, job_id))
    assert done["status"] == "FAILED"
    assert "the variable 'MISSING' is not defined or not enabled" in done["error"]


async def test_disabled_variables_do_not_resolve_and_data_paths_do(client: EngineClient) -> None:
    await client.request("update_variable", name="OFF",
                         data={"value": "x", "is_secret": False, "is_enabled": False, "mode": "single"})
    wf = workflow([node("s", "set_data", data={"user": {"names": ["ann", "bo"]}, "n": 3}),
                   node("c", "set_data", data={"copy": "{{data.user}}", "second": "{{data.user.names[1]}}",
                                               "text": "n={{data.n}} none={{data.nothing}}"}),
                   node("l", "log_message", message="{{vars.OFF}}")],
                  [edge("s", "c"), edge("c", "l")])
    job_id = await start(client, wf)
    events = await collect(client, job_id)
    assert "'OFF' is not defined or not enabled" in final(events)["error"]
    reply = await client.request("request_connection_history", job_id=job_id, connection_id="c-l")
    data = reply["history"][0]["payload"]["data"]
    assert data["copy"] == {"names": ["ann", "bo"]} and data["second"] == "bo"
    assert data["text"] == "n=3 none="
