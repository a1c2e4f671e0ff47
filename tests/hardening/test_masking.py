"""Issue 11, "Secret masking breaks frames and misses variants": over a real socket, with real
modules in the data folder's components, the frames, status replies, history and the engine's
log file are read whole."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path
from urllib.parse import quote, quote_plus

from engine.client import EngineClient
from engine.logging_setup import setup_logging
from tests.conftest import EngineFactory, Wallet
from tests.hardening.helpers import catch_logs
from tests.runtime_support import collect, edge, final, node, start, workflow

SHORT = "at"
PASSWORD = "pa'ss\"w0rd-qq7"

FORMATTING_MODULE = """
    import json
    from urllib.parse import quote, quote_plus
    from engine.runtime.context import ModuleError

    def run(ctx, payload):
        secret = ctx.config["secret"]
        ctx.log(f"upper {secret.upper()} lower {secret.lower()} repr {secret!r}")
        ctx.log(f"url {quote(secret, safe='')} plus {quote_plus(secret)} json {json.dumps(secret)}")
        ctx.log("bytes " + repr(secret.encode()) + " title " + secret.swapcase())
        raise ModuleError(f"unknown method {secret.upper()!r}; also {json.dumps({'m': secret})}")
"""


def install(data_dir: Path) -> None:
    folder = data_dir / "components" / "modules" / "formats_secret"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({
        "id": "formats_secret", "name": "Formats secret", "version": "1.0.0",
        "entry_point": "module.py", "properties": [{"id": "secret", "type": "string", "default": ""}],
        "output_ports": [{"name": "output"}]}))
    (folder / "module.py").write_text(textwrap.dedent(FORMATTING_MODULE))


def every_form(secret: str) -> set[str]:
    forms = {secret, secret.upper(), secret.lower(), secret.swapcase(), repr(secret)[1:-1],
             repr(secret.upper())[1:-1], repr(secret.encode())[2:-1], quote(secret, safe=""),
             quote_plus(secret), json.dumps(secret)[1:-1]}
    return forms | {json.dumps(f)[1:-1] for f in forms}


def leaks(text: str, secret: str) -> list[str]:
    lowered = text.lower()
    return sorted(f for f in every_form(secret) if f.lower() in lowered)


async def test_a_short_secret_never_breaks_types_keys_or_ids(make_engine: EngineFactory, owner: Wallet) -> None:
    engine = await make_engine()
    async with await EngineClient.connect(engine.url, owner.key, keep_texts=True) as client:
        await client.request("update_variable", name="SHORT", data={"value": SHORT, "is_secret": True})
        wf = workflow([node("t", "manual_trigger"),
                       node("log", "log_message", message="token {{vars.SHORT}} and data"),
                       node("set", "set_data", data={"kept": "{{vars.SHORT}}", "status": "created"})],
                      [edge("t", "log"), edge("log", "set")])
        job_id = await start(client, wf, job_id="job-at-the-start")
        events = await collect(client, job_id)
        assert final(events)["status"] == "SUCCEEDED"
        frames = [json.loads(t) for t in client.texts or []]
        assert all("********" not in f.get("type", "") for f in frames)
        statuses = [f for f in frames if f.get("type") == "workflow_status_update"]
        assert statuses and all(f["job_id"] == "job-at-the-start" for f in statuses)
        assert final(events)["result"]["data"] == {"kept": "********", "status": "created"}
        logs = [f["message"] for f in frames if f.get("type") == "log"]
        assert "token ******** and data" in logs, logs
        status = await client.request("request_job_status", job_id=job_id)
        assert status["status_data"]["status"] == "SUCCEEDED" and status["job_id"] == job_id
        history = await client.request("request_connection_history", job_id=job_id,
                                       connection_id=f"log-set")
        for entry in history["history"]:
            assert "data" in entry["payload"] and entry["payload"]["data"].get("kept") in (None, "********")


async def test_module_errors_and_logs_never_carry_a_secret_in_any_form(
        make_engine: EngineFactory, owner: Wallet, data_dir: Path, tmp_path: Path) -> None:
    install(data_dir)
    log_dir = tmp_path / "logs"
    log_file = setup_logging(log_dir, level=logging.DEBUG, to_stderr=False)
    assert log_file is not None
    try:
        engine = await make_engine()
        async with await EngineClient.connect(engine.url, owner.key, keep_texts=True) as client:
            await client.request("update_variable", name="PASS", data={"value": PASSWORD, "is_secret": True})
            wf = workflow([node("t", "manual_trigger"),
                           node("f", "formats_secret", secret="{{vars.PASS}}"),
                           node("h", "http_request", method="{{vars.PASS}}", url="http://127.0.0.1:9/")],
                          [edge("t", "f"), edge("f", "h", "error")])
            with catch_logs(logging.DEBUG) as logs:
                job_id = await start(client, wf)
                status = final(await collect(client, job_id))
                assert status["status"] == "FAILED" and "********" in status["error"], status
                reply = await client.request("request_job_status", job_id=job_id)
            texts = "\n".join(client.texts or []) + json.dumps(reply) + logs.text()
        for handler in logging.getLogger().handlers:
            handler.flush()
        texts += log_file.read_text(encoding="utf-8")
        assert "********" in texts
        assert leaks(texts, PASSWORD) == []
    finally:
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "_flowork", False):
                logging.getLogger().removeHandler(handler)
                handler.close()


async def test_short_secrets_are_masked_where_they_stand_alone(make_engine: EngineFactory,
                                                               owner: Wallet) -> None:
    engine = await make_engine()
    async with await EngineClient.connect(engine.url, owner.key) as client:
        await client.request("update_variable", name="PIN", data={"value": "42", "is_secret": True})
        wf = workflow([node("t", "manual_trigger"),
                       node("set", "set_data", data={"pin": "{{vars.PIN}}", "text": "pin={{vars.PIN}}",
                                                     "other": "1423 items"})],
                      [edge("t", "set")])
        status = final(await collect(client, await start(client, wf)))
        assert status["result"]["data"] == {"pin": "********", "text": "pin=********",
                                            "other": "1423 items"}
