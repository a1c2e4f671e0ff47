"""Secret variables never leak (issue 7, "Secrets never leak").

A run stores secret variables, uses them through `{{vars.NAME}}` in node config (data, log
lines, debug popups, error messages, a random-mode secret list) and sends requests that fail
while carrying a secret. Every frame the engine sent to any connection, every log line the
engine wrote (at DEBUG) and every byte of the data folder are then searched for each secret in
every form it could take in JSON text: none is found, and the database holds secrets only as
Fernet tokens that decrypt to them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from engine.client import EngineClient
from tests.conftest import Wallet
from tests.hardening.helpers import catch_logs, db_rows
from tests.runtime_support import collect, edge, final, node, start, workflow

API_KEY = 'sk-live-4f9c"quote\\slash-ü-<tag>'
PASSWORD = "correct-horse-battery-staple"
LIST = ["alpha-secret-11111", "beta-secret-22222"]
PLAIN = "plain-value-visible"


def forms(secret: str) -> set[str]:
    """How a secret can appear in JSON text or a log line."""
    return {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
            secret.encode("unicode_escape").decode("ascii")}


ALL_FORMS = set().union(*(forms(s) for s in [API_KEY, PASSWORD, *LIST]))


def leaks(text: str) -> list[str]:
    return sorted(f for f in ALL_FORMS if f in text)


WF = workflow(
    [node("t", "manual_trigger"),
     node("set", "set_data", data={"token": "{{vars.API_KEY}}", "header": "Bearer {{vars.API_KEY}}",
                                   "pick": "{{vars.ROTATING}}", "plain": "{{vars.PLAIN}}",
                                   "nested": {"pw": "{{vars.PASSWORD}}"}}),
     node("log", "log_message", message="calling with {{vars.API_KEY}} and {{vars.PASSWORD}}", level="WARN"),
     node("pop", "debug_popup", popup_title="key {{vars.API_KEY}}"),
     node("fail", "stop_and_error", message="gave up with password {{vars.PASSWORD}}")],
    [edge("t", "set", edge_id="e1"), edge("set", "log", edge_id="e2"), edge("log", "pop", edge_id="e3"),
     edge("pop", "fail", edge_id="e4")])

OK_WF = workflow([node("t", "manual_trigger"),
                  node("set", "set_data", data={"token": "{{vars.API_KEY}}", "pick": "{{vars.ROTATING}}"})],
                 [edge("t", "set", edge_id="k1")])


async def test_secrets_never_leave_the_engine_in_clear(make_engine: Any, owner: Wallet, data_dir: Path) -> None:
    engine = await make_engine()
    with catch_logs(logging.DEBUG) as logs:
        client = await EngineClient.connect(engine.url, owner.key, keep_texts=True)
        listener = await EngineClient.connect(engine.url, owner.key, keep_texts=True)
        try:
            await listener.request("request_settings")  # signed in: receives the owner's events
            await client.request("update_variable", name="API_KEY", data={"value": API_KEY, "is_secret": True})
            await client.request("update_variable", name="PASSWORD", data={"value": PASSWORD, "is_secret": True})
            await client.request("update_variable", name="ROTATING",
                                 data={"value": LIST, "is_secret": True, "mode": "random"})
            await client.request("update_variable", name="PLAIN", data={"value": PLAIN})
            # Requests that fail while carrying a secret must not echo it.
            for bad in ({"name": "bad name", "data": {"value": API_KEY, "is_secret": True}},
                        {"name": "OTHER", "data": {"value": API_KEY, "is_secret": True, "mode": "bogus"}},
                        {"name": "OTHER", "data": {"value": [PASSWORD], "is_secret": True, "mode": "single"}}):
                assert (await client.request("update_variable", check=False, **bad))["code"] == "invalid_field"

            failed = await collect(client, await start(client, WF, preset_name="leaky"))
            status = final(failed)
            assert status["status"] == "FAILED" and "********" in status["error"]
            ok_events = await collect(client, await start(client, OK_WF))
            ok = final(ok_events)
            assert ok["status"] == "SUCCEEDED"
            # The secret was really used (masked on the way out), the plain value was not masked.
            assert ok["result"]["data"]["token"] == "********" and ok["result"]["data"]["pick"] == "********"
            popups = [e for e in failed if e["type"] == "SHOW_DEBUG_POPUP"]
            assert popups and popups[0]["content"]["plain"] == PLAIN
            assert popups[0]["content"]["nested"]["pw"] == "********"
            history = await client.request("request_connection_history", job_id=failed[-1]["job_id"],
                                           connection_id="e2")
            assert history["history"][0]["payload"]["data"]["header"] == "Bearer ********"
            shown = {v["name"]: v["value"] for v in (await client.request("request_variables"))["variables"]}
            assert shown == {"API_KEY": "********", "PASSWORD": "********", "ROTATING": {"type": "random", "value": ["********"] * 2},
                             "PLAIN": PLAIN}
            await asyncio.sleep(0.5)  # let the listener receive the last pushes
        finally:
            await client.close()
            await listener.close()
        frames = client.texts + listener.texts
        assert len(frames) > 30
        for text in frames:
            assert not leaks(text), (leaks(text), text[:500])
        assert any(PLAIN in t for t in frames)  # the scan does see what it looks for
        log_text = logs.text()
        assert "********" in log_text and "calling with" in log_text
        assert not leaks(log_text), [line for line in logs.lines if leaks(line)]
        await engine.stop()

    # The data folder: no file holds a secret in any form; the secrets are Fernet tokens.
    for path in data_dir.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            for form in ALL_FORMS:
                assert form.encode("utf-8") not in raw, (path, form)
    db = data_dir / "engine.sqlite3"
    rows = {name: (secret, bytes(value)) for name, secret, value in
            db_rows(db, "SELECT name, is_secret, value FROM variables")}
    assert rows["PLAIN"] == (0, json.dumps(PLAIN).encode())
    key = engine._key_source.key if engine._key_source else None
    if key is None:
        import keyring
        from engine.store.secret_key import KEYRING_SERVICE, _account_for
        key = keyring.get_password(KEYRING_SERVICE, _account_for(data_dir)).encode()
    for name, value in (("API_KEY", API_KEY), ("PASSWORD", PASSWORD), ("ROTATING", LIST)):
        secret, blob = rows[name]
        assert secret == 1 and blob.startswith(b"gAAAAA")
        assert json.loads(Fernet(key).decrypt(blob)) == value
