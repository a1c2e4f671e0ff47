"""Webhook triggers end to end: real HTTP requests to the real webhook server start runs of the
saved preset; secrets, signatures, limits and unknown tokens are refused and start nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket

import aiohttp
import pytest

from tests.runtime_support import database_held, edge, node, workflow
from tests.triggers_support import next_run_end, save, triggered, triggers


@pytest.fixture
async def engine(make_engine):
    return await make_engine(webhook_port=0)


async def hook(client, name: str = "Hook", **config) -> str:
    await save(client, name, triggered("t", "webhook_trigger", **config))
    [rule] = [r for r in await triggers(client) if r["preset_name"] == name]
    assert rule["webhook_url"].startswith("http://127.0.0.1:")
    return rule["webhook_url"]


async def no_run(client, wait: float = 0.8) -> None:
    await asyncio.sleep(wait)
    assert not [e for e in client.pending_events() if e.get("type") == "workflow_status_update"]


async def test_a_post_starts_a_run_with_the_request_as_data(engine, client) -> None:
    url = await hook(client)
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/orders/7?x=1&x=2&y=z", json={"order": 7},
                             headers={"Authorization": "Bearer hidden", "X-Custom": "kept"}) as response:
            assert response.status == 202
            answer = await response.json()
    end = await next_run_end(client, kind="webhook")
    assert end["job_id"] == answer["job_id"]
    data = end["status_data"]["result"]["data"]
    assert data["method"] == "POST" and data["path"] == "/orders/7"
    assert data["query"] == {"x": ["1", "2"], "y": "z"}
    assert data["body"] == {"order": 7} and data["marked"] is True
    assert data["headers"]["X-Custom"] == "kept"
    assert "Authorization" not in data["headers"]
    assert end["status_data"]["started_by"]["kind"] == "webhook"


async def test_form_and_text_bodies(engine, client) -> None:
    url = await hook(client)
    async with aiohttp.ClientSession() as http:
        async with http.put(url, data={"a": "1", "b": "two"}) as response:
            assert response.status == 202
        form = (await next_run_end(client, kind="webhook"))["status_data"]["result"]["data"]
        async with http.post(url, data="plain words", headers={"Content-Type": "text/plain"}) as response:
            assert response.status == 202
        text = (await next_run_end(client, kind="webhook"))["status_data"]["result"]["data"]
        async with http.post(url, data="{not json", headers={"Content-Type": "application/json"}) as response:
            assert response.status == 400
            assert "not valid JSON" in await response.text()
    assert form["body"] == {"a": "1", "b": "two"} and form["method"] == "PUT"
    assert text["body"] == "plain words"
    await no_run(client)


async def test_answer_when_the_run_ends_and_time_out(engine, client) -> None:
    url = await hook(client, "Answer", respond="when_finished")
    slow = workflow([node("t", "webhook_trigger", respond="when_finished", response_timeout_s="1"),
                     node("d", "delay", seconds=3)], [edge("t", "d")])
    await save(client, "Slow", slow)
    slow_url = [r for r in await triggers(client) if r["preset_name"] == "Slow"][0]["webhook_url"]
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"n": 1}) as response:
            assert response.status == 200
            data = await response.json()
        assert data["marked"] is True and data["body"] == {"n": 1}
        async with http.get(slow_url) as response:
            assert response.status == 504
            late = await response.json()
        assert "job_id" in late and "did not end within 1 s" in late["error"]
    end = await next_run_end(client, kind="webhook", timeout=10, job_id=late["job_id"])
    assert end["status_data"]["status"] == "SUCCEEDED"


async def test_the_answer_is_the_runs_outcome_not_its_record(engine, client) -> None:
    """A webhook that answers when the run ends answers once the run's outcome is known, even
    while the database thread is busy: the record follows (the owner's connections hear the
    final status once it is committed, as for every run)."""
    url = await hook(client, "Answer", respond="when_finished")
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"n": 0}) as response:  # settings and modules now warm
            assert response.status == 200
        await next_run_end(client, kind="webhook")
        async with database_held(engine) as blocked:
            async with http.post(url, json={"n": 1}) as response:
                assert response.status == 200
                data = await response.json()
            assert data["body"] == {"n": 1} and data["marked"] is True
            assert not blocked.done()
            with pytest.raises(TimeoutError):  # not committed, so not yet announced
                await next_run_end(client, kind="webhook", timeout=0.3)
    end = await next_run_end(client, kind="webhook")
    assert end["status_data"]["status"] == "SUCCEEDED"
    assert end["status_data"]["result"]["data"]["body"] == {"n": 1}


async def test_a_failed_run_answers_500_with_its_error(engine, client) -> None:
    failing = workflow([node("t", "webhook_trigger", respond="when_finished"),
                        node("x", "stop_and_error", message="broken on purpose")], [edge("t", "x")])
    await save(client, "Fails", failing)
    [rule] = await triggers(client)
    async with aiohttp.ClientSession() as http:
        async with http.post(rule["webhook_url"]) as response:
            assert response.status == 500
            body = await response.json()
    assert body["status"] == "FAILED" and body["job_id"]


async def test_unknown_tokens_and_paths_get_a_plain_404(engine, client) -> None:
    url = await hook(client)
    base = url.rsplit("/", 1)[0]
    async with aiohttp.ClientSession() as http:
        for wrong in (base + "/" + "x" * 43, base + "/", base.replace("/webhook", "/other/abc"),
                      url[:-1] + ("A" if url[-1] != "A" else "B")):
            async with http.post(wrong, json={}) as response:
                assert response.status == 404, wrong
                assert await response.text() == "404: Not Found"
    await no_run(client)


async def test_a_body_over_the_limit_is_refused(make_engine, owner) -> None:
    from engine.client import EngineClient
    engine = await make_engine(webhook_port=0, webhook_max_body=64 * 1024)
    client = await EngineClient.connect(engine.url, owner.key)
    try:
        url = await hook(client)
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=b"x" * (64 * 1024 + 1),
                                 headers={"Content-Type": "text/plain"}) as response:
                assert response.status == 413
            async with http.post(url, data=b"x" * 1000, headers={"Content-Type": "text/plain"}) as response:
                assert response.status == 202
        end = await next_run_end(client, kind="webhook")
        assert len(end["status_data"]["result"]["data"]["body"]) == 1000
        await no_run(client)
    finally:
        await client.close()


async def test_a_shared_secret_header_is_checked_and_hidden(engine, client) -> None:
    url = await hook(client, auth="header", header_name="X-Token", secret="s3cret")
    async with aiohttp.ClientSession() as http:
        for wrong in ({}, {"X-Token": "nope"}, {"X-Token": "S3CRET"}, {"X-Token": "s3cre"}):
            async with http.post(url, headers=wrong) as response:
                assert response.status == 401
                assert "wrong" in await response.text()
        await no_run(client, 0.3)
        async with http.post(url, headers={"X-Token": "s3cret"}) as response:
            assert response.status == 202
    data = (await next_run_end(client, kind="webhook"))["status_data"]["result"]["data"]
    assert "X-Token" not in data["headers"]


async def test_a_secret_from_a_variable(engine, client) -> None:
    await client.request("update_variable", name="HOOK_SECRET",
                         data={"value": "from-vars", "is_secret": True, "is_enabled": True, "mode": "single"})
    url = await hook(client, auth="header", secret="{{vars.HOOK_SECRET}}")
    async with aiohttp.ClientSession() as http:
        async with http.post(url, headers={"X-Webhook-Secret": "{{vars.HOOK_SECRET}}"}) as response:
            assert response.status == 401
        async with http.post(url, headers={"X-Webhook-Secret": "from-vars"}) as response:
            assert response.status == 202
    await next_run_end(client, kind="webhook")


async def test_a_github_style_signature_is_checked(engine, client) -> None:
    url = await hook(client, auth="hmac_sha256", secret="hub-secret")
    body = json.dumps({"action": "opened"}).encode()
    good = "sha256=" + hmac.new(b"hub-secret", body, hashlib.sha256).hexdigest()
    bad = "sha256=" + hmac.new(b"other", body, hashlib.sha256).hexdigest()
    async with aiohttp.ClientSession() as http:
        for signature in (None, bad, good[:-1] + "0" if good[-1] != "0" else good[:-1] + "1"):
            headers = {"Content-Type": "application/json"}
            if signature:
                headers["X-Hub-Signature-256"] = signature
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status == 401
        await no_run(client, 0.3)
        async with http.post(url, data=body, headers={"Content-Type": "application/json",
                                                      "X-Hub-Signature-256": good}) as response:
            assert response.status == 202
    data = (await next_run_end(client, kind="webhook"))["status_data"]["result"]["data"]
    assert data["body"] == {"action": "opened"} and "X-Hub-Signature-256" not in data["headers"]


async def test_a_bad_webhook_rule_is_refused(engine, client) -> None:
    from engine.client import EngineReplyError
    for config, field in (({"auth": "header"}, "secret"), ({"method": "BREW"}, "method"),
                          ({"header_name": "bad header"}, "header_name"),
                          ({"response_timeout_s": "-1"}, "response_timeout_s")):
        with pytest.raises(EngineReplyError) as refused:
            await save(client, "Bad", triggered("t", "webhook_trigger", **config))
        assert refused.value.frame["field"] == field
    assert await triggers(client) == []


async def test_method_filter_disabled_and_paused(engine, client) -> None:
    url = await hook(client, method="POST")
    [rule] = await triggers(client)
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 405
        await client.request("set_trigger_enabled", rule_id=rule["rule_id"], enabled=False)
        async with http.post(url) as response:
            assert response.status == 404  # a disabled rule's token is not served
        await client.request("set_trigger_enabled", rule_id=rule["rule_id"], enabled=True)
        await engine.automations.set_paused(True)
        async with http.post(url) as response:
            assert response.status == 503
        await engine.automations.set_paused(False)
        async with http.post(url) as response:
            assert response.status == 202
    await next_run_end(client, kind="webhook")


async def test_the_token_survives_re_saving_and_restarts(make_engine, owner) -> None:
    from engine.client import EngineClient
    engine = await make_engine(webhook_port=0)
    client = await EngineClient.connect(engine.url, owner.key)
    url = await hook(client)
    await save(client, "Hook", triggered("t", "webhook_trigger", method="PUT"))
    token = url.rsplit("/", 1)[1]
    assert (await triggers(client))[0]["webhook_url"].endswith(token)
    await client.close()
    await engine.stop()
    again = await make_engine(webhook_port=0)
    client = await EngineClient.connect(again.url, owner.key)
    try:
        [rule] = await triggers(client)
        assert rule["webhook_url"].endswith("/webhook/" + token)
        async with aiohttp.ClientSession() as http:
            async with http.put(rule["webhook_url"]) as response:
                assert response.status == 202
        await next_run_end(client, kind="webhook")
    finally:
        await client.close()


async def test_no_webhooks_and_a_taken_port(make_engine, owner) -> None:
    from engine.client import EngineClient
    off = await make_engine(webhooks=False)
    client = await EngineClient.connect(off.url, owner.key)
    await save(client, "Hook", triggered("t", "webhook_trigger"))
    [rule] = await triggers(client)
    assert rule["webhook_url"] is None and off.automations.webhook_base_url is None
    await client.close()
    await off.stop()
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        taken = await make_engine(webhook_port=holder.getsockname()[1])
        assert taken.running and "cannot listen" in taken.automations.webhook_error
    finally:
        holder.close()


async def test_skip_overlap_answers_429_while_a_run_is_going(engine, client) -> None:
    slow = workflow([node("t", "webhook_trigger"), node("d", "delay", seconds=2)], [edge("t", "d")])
    await save(client, "Busy", slow)
    [rule] = await triggers(client)
    async with aiohttp.ClientSession() as http:
        async with http.post(rule["webhook_url"]) as response:
            assert response.status == 202
        async with http.post(rule["webhook_url"]) as response:
            assert response.status == 429
            assert "still going" in (await response.json())["error"]


def test_webhook_options_from_the_command_line_environment_and_file(tmp_path) -> None:
    from engine.cli import parse_config
    from engine.config import ConfigError, load_config
    config, _ = parse_config(["--data-dir", str(tmp_path), "--no-webhooks", "--webhook-port", "4000",
                              "--webhook-host", "0.0.0.0"])
    assert (config.webhooks, config.webhook_port, config.webhook_host) == (False, 4000, "0.0.0.0")
    config = load_config({"data_dir": str(tmp_path)}, environ={"FLOWORK_WEBHOOKS": "false",
                                                              "FLOWORK_WEBHOOK_PORT": "4001"})
    assert (config.webhooks, config.webhook_port) == (False, 4001)
    (tmp_path / "config.json").write_text('{"webhook_port": 4002, "webhook_max_body": 2048}')
    config = load_config({"data_dir": str(tmp_path)}, environ={})
    assert (config.webhooks, config.webhook_port, config.webhook_max_body) == (True, 4002, 2048)
    for bad in ({"webhook_port": "70000"}, {"webhooks": "maybe"}, {"webhook_port": "12345"}):
        with pytest.raises(ConfigError):
            load_config({"data_dir": str(tmp_path), **bad}, environ={})
