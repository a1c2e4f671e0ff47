"""Named hostile cases, one real engine each (issue 7, "Bad input" table).

Every case asserts its own outcome (the typed error, the refusal, the close code) and then the
same three things: the attacker's connection (where it is still open) answers a well-formed
request, nothing was stored (row counts and the files under the test's folder are unchanged,
unless the case says otherwise), and the engine logged no error or traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from engine.app import Engine
from engine.client import EngineClient
from engine.protocol.canonical import canonical_json
from tests.conftest import Wallet
from tests.hardening.helpers import auth_block, catch_logs, sign_text
from tests.runtime_support import collect, edge, final, node, start, workflow

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
TABLES = ("settings", "variables", "presets", "preset_shares", "jobs", "node_runs", "connection_history")
WORKFLOW = {"nodes": [{"id": "n1", "name": "Start", "x": 0, "y": 0, "module_id": "x", "config_values": {}}],
            "connections": [], "global_loop_config": {"isEnabled": False}}


@dataclass
class Ctx:
    engine: Engine
    owner: Wallet
    stranger: Wallet
    shared: Path
    outside: Path
    base: Path
    client: EngineClient
    connect: Callable[..., Awaitable[EngineClient]]
    stores: bool = False  # set by a case whose legitimate setup stores something
    closed_ok: bool = False  # set by a case whose own connection is expected to be closed
    extra: dict[str, Any] = field(default_factory=dict)

    async def ask(self, msg_type: str, *, client: EngineClient | None = None,
                  auth: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        return await (client or self.client).request(msg_type, check=False, auth=auth, **fields)

    async def refused(self, code: str, msg_type: str, **kwargs: Any) -> dict[str, Any]:
        reply = await self.ask(msg_type, **kwargs)
        assert reply.get("error"), reply
        assert reply.get("code") == code, reply
        assert isinstance(reply.get("type"), str)
        return reply

    def url(self, engine_id: str | None = None) -> str:
        base = self.engine.url.split("?")[0]
        return base if engine_id is None else f"{base}?engineId={engine_id}"


async def counts(engine: Engine) -> dict[str, int]:
    assert engine.db is not None
    return await engine.db.run(lambda conn: {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                             for t in TABLES})


def files_under(base: Path) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(base):
        for name in filenames + dirnames:
            if not name.startswith("engine.sqlite3"):
                found.add(os.path.relpath(os.path.join(dirpath, name), base))
    return found


async def refused_handshake(url: str, status: int, **kwargs: Any) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, **kwargs):
            pass
    assert info.value.response.status_code == status


CASES: dict[str, tuple[Callable[[Ctx], Awaitable[None]], dict[str, Any]]] = {}


def case(name: str, **config: Any) -> Callable[[Callable[[Ctx], Awaitable[None]]], Callable[[Ctx], Awaitable[None]]]:
    def register(fn: Callable[[Ctx], Awaitable[None]]) -> Callable[[Ctx], Awaitable[None]]:
        assert name not in CASES
        CASES[name] = (fn, config)
        return fn
    return register


# -- who may connect ---------------------------------------------------------------------------

@case("wrong engineId")
async def _(ctx: Ctx) -> None:
    await refused_handshake(ctx.url("another-engine"), 403)


@case("missing engineId")
async def _(ctx: Ctx) -> None:
    await refused_handshake(ctx.url(), 403)


@case("engineId that is a prefix of the real one")
async def _(ctx: Ctx) -> None:
    await refused_handshake(ctx.url("test-engin"), 403)
    await refused_handshake(ctx.url("TEST-ENGINE"), 403)


@case("disallowed Origin")
async def _(ctx: Ctx) -> None:
    await refused_handshake(ctx.engine.url, 403, origin="https://evil.example")


@case("look-alike Origins of the Flowork GUI")
async def _(ctx: Ctx) -> None:
    for origin in ("https://flowork.cloud.evil.example", "https://evilflowork.cloud",
                   "http://flowork.cloud", "https://x.flowork.cloud/.evil.example", "null"):
        await refused_handshake(ctx.engine.url, 403, origin=origin)
    # The real ones are let in (so the refusals above are about the origin, not the request).
    for origin in ("https://flowork.cloud", "https://app.flowork.cloud", "http://localhost:5173"):
        async with connect(ctx.engine.url, origin=origin):  # type: ignore[arg-type]
            pass


@case("more connections than the limit", max_connections=3)
async def _(ctx: Ctx) -> None:
    others = [await ctx.connect() for _ in range(2)]
    for other in others:  # signed in: a newcomer never pushes a signed-in owner out
        assert (await ctx.ask("request_settings", client=other))["type"] == "settings_response"
    await refused_handshake(ctx.engine.url, 503)
    for other in others:
        assert (await ctx.ask("request_settings", client=other))["type"] == "settings_response"


@case("frame over the size limit", max_frame_bytes=64 * 1024)
async def _(ctx: Ctx) -> None:
    bystander = await ctx.connect()
    await ctx.client.send({"type": "save_settings", "settings": {"blob": "x" * (70 * 1024)}})
    await asyncio.wait_for(ctx.client.closed.wait(), 10)
    assert ctx.client.ws.close_code == 1009
    ctx.closed_ok = True
    assert (await ctx.ask("request_settings", client=bystander))["settings"].get("blob") is None
    # Just under the limit is fine (the limit is about size, not content).
    reply = await ctx.ask("save_settings", client=bystander, settings={"blob": "y" * (60 * 1024)})
    assert "error" not in reply
    ctx.stores = True


@case("idle strangers holding every connection slot", max_connections=4, auth_timeout_s=1.0)
async def _(ctx: Ctx) -> None:
    # Whoever knows the engineId can connect; connections that never sign a valid frame of an
    # allowed owner must not keep the owner out, not even for a moment.
    assert "error" not in await ctx.ask("request_settings")  # the owner is signed in
    idle = [await connect(ctx.engine.url) for _ in range(2)]
    intruder = await ctx.connect(ctx.stranger)  # signs, but is not allowed
    await ctx.refused("not_authorized", "request_settings", client=intruder)
    # Full (4 of 4): the owner's next connection gets in at once, in place of the oldest
    # connection that has not signed in.
    second = await ctx.connect()
    assert (await ctx.ask("request_settings", client=second))["type"] == "settings_response"
    await asyncio.wait_for(idle[0].wait_closed(), 10)
    # The others that never sign in are closed after auth_timeout_s (1008).
    await asyncio.wait_for(idle[1].wait_closed(), 10)
    assert idle[1].close_code == 1008
    await asyncio.wait_for(intruder.closed.wait(), 10)
    assert intruder.ws.close_code == 1008
    # The owner's own connection, signed in long ago and idle since, was left alone.
    assert not ctx.client.closed.is_set()
    assert (await ctx.ask("request_settings", client=second))["type"] == "settings_response"


# -- what each frame must carry ----------------------------------------------------------------

@case("forged signature")
async def _(ctx: Ctx) -> None:
    auth = auth_block(ctx.owner.key)
    auth["signature"] = "0x" + "11" * 64 + "1b"
    await ctx.refused("auth_signature", "save_settings", settings={"theme": "evil"}, auth=auth)


@case("signature of another address")
async def _(ctx: Ctx) -> None:
    auth = auth_block(ctx.stranger.key, address=ctx.owner.address)
    reply = await ctx.refused("auth_signature", "save_settings", settings={"theme": "evil"}, auth=auth)
    assert "auth.address" in reply["error"]


@case("signature over a different message")
async def _(ctx: Ctx) -> None:
    auth = auth_block(ctx.owner.key)
    auth["message"] = auth["message"][:-1] + str((int(auth["message"][-1]) + 1) % 10)
    await ctx.refused("auth_signature", "save_settings", settings={"theme": "evil"}, auth=auth)


@case("malleable high-s twin of a valid signature")
async def _(ctx: Ctx) -> None:
    auth = auth_block(ctx.owner.key)
    raw = bytes.fromhex(auth["signature"][2:])
    s = int.from_bytes(raw[32:64], "big")
    twin = raw[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - raw[64]])
    auth["signature"] = "0x" + twin.hex()
    reply = await ctx.refused("auth_signature", "save_settings", settings={"theme": "evil"}, auth=auth)
    assert "low-s" in reply["error"]


@case("replay of a captured frame outside the freshness window", freshness_s=1.0)
async def _(ctx: Ctx) -> None:
    captured = auth_block(ctx.owner.key)
    assert "error" not in await ctx.ask("request_settings", auth=captured)  # fresh: accepted
    await asyncio.sleep(1.6)
    await ctx.refused("auth_stale", "save_settings", settings={"theme": "evil"}, auth=captured)


@case("timestamp far in the past")
async def _(ctx: Ctx) -> None:
    auth = auth_block(ctx.owner.key, timestamp_ms=int(time.time() * 1000) - 301_000)
    reply = await ctx.refused("auth_stale", "save_settings", settings={"theme": "evil"}, auth=auth)
    assert "clock" in reply["error"]


@case("timestamp in the future")
async def _(ctx: Ctx) -> None:
    auth = auth_block(ctx.owner.key, timestamp_ms=int(time.time() * 1000) + 301_000)
    await ctx.refused("auth_stale", "save_settings", settings={"theme": "evil"}, auth=auth)


@case("signed message in another format")
async def _(ctx: Ctx) -> None:
    now = int(time.time() * 1000)
    for text in (f"Sign in to Flowork: {now}", f"Flowork GUI-to-Engine Authentication: {now} ",
                 f"Flowork GUI-to-Engine Authentication: {now / 1000}", "Flowork GUI-to-Engine Authentication: ",
                 f"flowork gui-to-engine authentication: {now}"):
        await ctx.refused("auth_format", "save_settings", settings={"theme": "evil"},
                          auth=auth_block(ctx.owner.key, message=text))


@case("frame without an auth block")
async def _(ctx: Ctx) -> None:
    await ctx.client.send_raw(json.dumps({"payload": {"type": "save_settings", "request_id": "na",
                                                       "settings": {"theme": "evil"}}}))
    reply = await ctx.client.next_event(where=lambda f: f.get("request_id") == "na")
    assert reply["code"] == "auth_missing"


@case("address not allowed")
async def _(ctx: Ctx) -> None:
    intruder = await ctx.connect(ctx.stranger)
    reply = await ctx.refused("not_authorized", "save_settings", settings={"theme": "evil"}, client=intruder)
    assert f"not authorized for engine {ctx.engine.config.engine_id}" in reply["error"]
    assert (await ctx.ask("request_variables", client=intruder))["code"] == "not_authorized"


@case("owner removed while connected")
async def _(ctx: Ctx) -> None:
    assert "error" not in await ctx.ask("request_settings")
    ctx.engine.set_owners([])
    await ctx.refused("not_authorized", "save_settings", settings={"theme": "evil"})
    ctx.engine.set_owners([ctx.owner.address])


@case("empty allow-list serves nobody", owners=())
async def _(ctx: Ctx) -> None:
    await ctx.refused("not_authorized", "request_settings")
    ctx.engine.set_owners([ctx.owner.address])  # so the common "still usable" check applies


@case("binary frame")
async def _(ctx: Ctx) -> None:
    await ctx.client.send_raw(b"\x00\x01" + json.dumps({"payload": {"type": "request_settings"}}).encode())
    reply = await ctx.client.next_event("error")
    assert reply["code"] == "bad_frame"


@case("nesting deeper than the JSON decoder can take, unsigned")
async def _(ctx: Ctx) -> None:
    # Libraries raise the interpreter's recursion limit (py_ecc, under eth-account and web3, sets
    # 100000); the C JSON decoder then overflows the C stack long before a RecursionError, which
    # killed the whole engine with one unsigned frame.
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 100_000))
    try:
        await ctx.client.send_raw('{"payload": {"type": "save_settings", "settings": '
                                  + "[" * 200_000 + "]" * 200_000 + "}}")
        reply = await ctx.client.next_event("error")
    finally:
        sys.setrecursionlimit(old)
    assert reply["code"] == "bad_frame" and "nested deeper" in reply["error"]


@case("payload type that is not a string")
async def _(ctx: Ctx) -> None:
    await ctx.client.send({"type": ["save_settings"], "request_id": "t1", "settings": {}})
    reply = await ctx.client.next_event(where=lambda f: f.get("request_id") == "t1")
    assert reply["code"] == "bad_frame"


# -- names that look like paths ----------------------------------------------------------------

def _preset_case(name: str) -> Callable[[Ctx], Awaitable[None]]:
    async def run(ctx: Ctx) -> None:
        signature = sign_text(ctx.owner.key, canonical_json({"workflow_data": WORKFLOW}))
        reply = await ctx.refused("invalid_field", "save_preset", name=name, workflow_data=WORKFLOW,
                                  signature=signature)
        assert reply["field"] == "name"
        for msg_type in ("load_preset", "delete_preset"):
            assert (await ctx.ask(msg_type, name=name))["code"] == "invalid_field"
    return run


for _label, _name in (("traversal", "../../../../tmp/owned"), ("absolute path", "/etc/passwd"),
                      ("Windows traversal", "..\\..\\Windows\\win.ini"), ("dot-dot", ".."),
                      ("NUL byte", "preset\x00.json")):
    case(f"preset name: {_label}")(_preset_case(_name))


def _variable_case(name: str) -> Callable[[Ctx], Awaitable[None]]:
    async def run(ctx: Ctx) -> None:
        reply = await ctx.refused("invalid_field", "update_variable", name=name,
                                  data={"value": "v", "is_secret": False, "mode": "single"})
        assert reply["field"] == "name"
        assert (await ctx.ask("delete_variable", name=name))["code"] == "invalid_field"
    return run


for _label, _name in (("traversal", "../../SECRETS"), ("absolute path", "/etc/shadow"),
                      ("Windows path", "C:\\KEY")):
    case(f"variable name: {_label}")(_variable_case(_name))


@case("owner_id with a traversal")
async def _(ctx: Ctx) -> None:
    reply = await ctx.refused("invalid_field", "load_preset", name="p", owner_id="../../" + ctx.owner.address)
    assert reply["field"] == "owner_id"


@case("owner_id that is a path")
async def _(ctx: Ctx) -> None:
    for owner_id in ("/etc/passwd", "*", "0x" + "0" * 39 + "/", ctx.owner.address + "/.."):
        assert (await ctx.ask("load_preset", name="p", owner_id=owner_id))["code"] == "invalid_field"


@case("owner_id of another user without a share")
async def _(ctx: Ctx) -> None:
    # The stranger (also an owner here) keeps a private preset; the owner may not read it,
    # and the refusal reads exactly like a missing preset.
    ctx.engine.set_owners([ctx.owner.address, ctx.stranger.address])
    other = await ctx.connect(ctx.stranger)
    signature = sign_text(ctx.stranger.key, canonical_json({"workflow_data": WORKFLOW}))
    assert "error" not in await ctx.ask("save_preset", client=other, name="private", workflow_data=WORKFLOW,
                                        signature=signature)
    ctx.stores = True
    hidden = await ctx.refused("not_found", "load_preset", name="private", owner_id=ctx.stranger.address)
    missing = await ctx.refused("not_found", "load_preset", name="nothing", owner_id=ctx.stranger.address)
    assert hidden["error"].replace("private", "X") == missing["error"].replace("nothing", "X")
    assert "workflow_data" not in hidden


@case("share_preset with a path instead of addresses")
async def _(ctx: Ctx) -> None:
    await ctx.refused("invalid_field", "share_preset", name="p", **{"with": ["../../x"]})
    await ctx.refused("invalid_field", "share_preset", name="p", **{"with": "/etc/passwd"})


@case("component id with a traversal")
async def _(ctx: Ctx) -> None:
    for msg_type in ("install_component", "uninstall_component"):
        reply = await ctx.ask(msg_type, component_type="modules", component_id="../../../../tmp/evil")
        assert reply["code"] in ("forbidden", "invalid_field"), reply


@case("component type that is a path")
async def _(ctx: Ctx) -> None:
    await ctx.refused("invalid_field", "request_components_list", component_type="../modules")


# -- file browsing -----------------------------------------------------------------------------

@case("directory path with a traversal")
async def _(ctx: Ctx) -> None:
    reply = await ctx.refused("forbidden", "request_directory_list", path=f"{ctx.shared}/../outside")
    assert "outside the shared folders" in reply["error"]


@case("absolute directory path outside the shared folders")
async def _(ctx: Ctx) -> None:
    for path in ("/", "/etc", str(ctx.outside), str(ctx.base)):
        assert (await ctx.ask("request_directory_list", path=path))["code"] == "forbidden", path


@case("relative and home-relative directory paths")
async def _(ctx: Ctx) -> None:
    await ctx.refused("invalid_field", "request_directory_list", path="etc")
    await ctx.refused("invalid_field", "request_directory_list", path="C:\\Windows")
    await ctx.refused("invalid_field", "request_directory_list", path="~root")
    await ctx.refused("invalid_field", "request_directory_list", path="~/.ssh")


@case("directory path with a NUL byte")
async def _(ctx: Ctx) -> None:
    await ctx.refused("invalid_field", "request_directory_list", path=f"{ctx.shared}\x00/../../etc")


@case("symlink pointing out of a shared folder")
async def _(ctx: Ctx) -> None:
    (ctx.shared / "escape").symlink_to(ctx.outside, target_is_directory=True)
    reply = await ctx.refused("forbidden", "request_directory_list", path=str(ctx.shared / "escape"))
    assert "secret.txt" not in json.dumps(reply)
    await ctx.refused("forbidden", "request_directory_list", path=str(ctx.shared / "escape" / "inner"))
    (ctx.shared / "peek.txt").symlink_to(ctx.outside / "secret.txt")
    await ctx.refused("forbidden", "request_directory_list", path=str(ctx.shared / "peek.txt"))
    # The links show up as entries of the shared folder, but nothing of what lies behind them
    # (not even the size or date of the file outside).
    listing = await ctx.ask("request_directory_list", path=str(ctx.shared))
    assert "secret.txt" not in json.dumps(listing)
    entries = {item["name"]: item for item in listing["items"]}
    assert entries["note.txt"]["size"] == 6
    for name in ("escape", "peek.txt"):
        assert entries[name]["size"] is None and entries[name]["modified"] is None, entries[name]


@case("symlink to the shared folder's parent")
async def _(ctx: Ctx) -> None:
    (ctx.shared / "up").symlink_to("..", target_is_directory=True)
    await ctx.refused("forbidden", "request_directory_list", path=str(ctx.shared / "up"))
    await ctx.refused("forbidden", "request_directory_list", path=str(ctx.shared / "up" / "outside"))


@case("symlink loop inside a shared folder")
async def _(ctx: Ctx) -> None:
    (ctx.shared / "loop").symlink_to(ctx.shared / "loop")
    reply = await ctx.ask("request_directory_list", path=str(ctx.shared / "loop"))
    assert reply["code"] in ("forbidden", "not_found", "invalid_field"), reply


@case("a file where a folder is expected")
async def _(ctx: Ctx) -> None:
    await ctx.refused("invalid_field", "request_directory_list", path=str(ctx.shared / "note.txt"))


# -- payloads that must not be stored ----------------------------------------------------------

@case("preset signature from another address")
async def _(ctx: Ctx) -> None:
    signature = sign_text(ctx.stranger.key, canonical_json({"workflow_data": WORKFLOW}))
    await ctx.refused("auth_signature", "save_preset", name="p", workflow_data=WORKFLOW, signature=signature)


@case("workflow changed after it was signed")
async def _(ctx: Ctx) -> None:
    signature = sign_text(ctx.owner.key, canonical_json({"workflow_data": WORKFLOW}))
    tampered = json.loads(json.dumps(WORKFLOW))
    tampered["nodes"][0]["config_values"] = {"command": "rm -rf /"}
    await ctx.refused("auth_signature", "save_preset", name="p", workflow_data=tampered, signature=signature)


@case("preset signature over the auth message instead of the workflow")
async def _(ctx: Ctx) -> None:
    auth = auth_block(ctx.owner.key)
    await ctx.refused("auth_signature", "save_preset", name="p", workflow_data=WORKFLOW,
                      signature=auth["signature"], auth=auth)


@case("preset with 100,000 nodes")
async def _(ctx: Ctx) -> None:
    huge = {"nodes": [{"id": f"n{i}"} for i in range(100_000)], "connections": []}
    signature = sign_text(ctx.owner.key, canonical_json({"workflow_data": huge}))
    reply = await ctx.refused("invalid_field", "save_preset", name="huge", workflow_data=huge, signature=signature)
    assert "nodes" in reply["error"]


@case("settings larger than allowed")
async def _(ctx: Ctx) -> None:
    await ctx.refused("invalid_field", "save_settings", settings={f"k{i}": "v" * 900 for i in range(900)})


@case("variable value larger than allowed")
async def _(ctx: Ctx) -> None:
    await ctx.refused("invalid_field", "update_variable", name="BIG",
                      data={"value": "x" * (64 * 1024 + 1), "mode": "single"})


@case("another user's job id in connection history")
async def _(ctx: Ctx) -> None:
    assert ctx.engine.db is not None
    await ctx.engine.db.transaction(lambda conn: (
        conn.execute("INSERT INTO jobs (job_id, address, preset_name, mode, status, start_time) "
                     "VALUES ('their-job', ?, 'p', 'EXECUTE', 'SUCCEEDED', 0)", (ctx.stranger.address.lower(),)),
        conn.execute("INSERT INTO connection_history (job_id, seq, connection_id, payload, size, truncated, "
                     "timestamp) VALUES ('their-job', 1, 'c1', '{\"secret\": \"theirs\"}', 20, 0, 0)")))
    ctx.stores = True
    theirs = await ctx.refused("not_found", "request_connection_history", job_id="their-job", connection_id="c1")
    absent = await ctx.refused("not_found", "request_connection_history", job_id="no-job", connection_id="c1")
    assert "theirs" not in json.dumps(theirs)
    assert theirs["error"].replace("their-job", "X") == absent["error"].replace("no-job", "X")


@case("unknown message type named like an object property")
async def _(ctx: Ctx) -> None:
    for msg_type in ("__proto__", "constructor", "__class__", "request_settings "):
        reply = await ctx.ask(msg_type)
        assert reply["type"] == "status_response" and "not handled" in reply["status"], reply


# -- jobs and workflows (the runtime) -----------------------------------------------------------

APPROVAL_WF = workflow([node("t", "manual_trigger"), node("ask", "manual_approval", message="ok?"),
                        node("after", "log_message", message="approved")],
                       [edge("t", "ask", edge_id="a1"), edge("ask", "after", "APPROVED", edge_id="a2")])


@case("another user's job id in status, stop, pause, resume, history and approval messages")
async def _(ctx: Ctx) -> None:
    ctx.engine.set_owners([ctx.owner.address, ctx.stranger.address])
    victim = await ctx.connect(ctx.stranger)
    job_id = await start(victim, APPROVAL_WF)
    asked = await victim.next_event("MANUAL_APPROVAL_REQUESTED", where=lambda e: e["job_id"] == job_id)
    ctx.stores = True
    missing = {"request_job_status": {}, "stop_workflow": {}, "pause_workflow": {},
               "resume_workflow": {}, "request_connection_history": {"connection_id": "a1"}}
    for msg_type, extra in missing.items():
        reply = await ctx.refused("not_found", msg_type, job_id=job_id, **extra)
        assert "ask" not in json.dumps(reply) and "approved" not in json.dumps(reply), reply
    await ctx.refused("not_found", "manual_approval_response", approval_id=asked["approval_id"], decision="APPROVED")
    await ctx.refused("not_found", "manual_approval_response", job_id=job_id, node_id="ask", decision="APPROVED")
    # "All my jobs" never reaches another user's job.
    for msg_type in ("pause_workflow", "stop_workflow"):
        assert (await ctx.ask(msg_type))["job_ids"] == []
    assert (await victim.request("request_job_status", job_id=job_id))["status_data"]["status"] == "RUNNING"
    # The owner of the job still can answer, and the job goes on.
    await victim.request("manual_approval_response", approval_id=asked["approval_id"], decision="APPROVED")
    assert final(await collect(victim, job_id))["status"] == "SUCCEEDED"


@case("job id that is a path")
async def _(ctx: Ctx) -> None:
    for job_id in ("../../etc/passwd", "/tmp/x", "a\\b", "job\x00"):
        reply = await ctx.refused("invalid_field", "execute_workflow", job_id=job_id,
                                  workflow_data=workflow([node("s", "set_data")], []), initial_payload={})
        assert reply["field"] == "job_id"


@case("workflow with a cycle and an entry: stopped by the loop guard", max_node_runs=200)
async def _(ctx: Ctx) -> None:
    wf = workflow([node("t", "manual_trigger"), node("a", "set_data", data={"x": 1}), node("b", "log_message")],
                  [edge("t", "a"), edge("a", "b"), edge("b", "a")])
    status = final(await collect(ctx.client, await start(ctx.client, wf)))
    assert status["status"] == "FAILED" and "200 node runs" in status["error"]
    ctx.stores = True


@case("workflow that is only a cycle")
async def _(ctx: Ctx) -> None:
    wf = workflow([node("a", "set_data"), node("b", "set_data")], [edge("a", "b"), edge("b", "a")])
    reply = await ctx.refused("invalid_field", "execute_workflow", job_id="cycle", workflow_data=wf, initial_payload={})
    assert "start node" in reply["error"]


@case("workflow with a connection to a missing node")
async def _(ctx: Ctx) -> None:
    wf = workflow([node("a", "set_data")], [edge("a", "ghost")])
    reply = await ctx.refused("invalid_field", "execute_workflow", job_id="missing", workflow_data=wf, initial_payload={})
    assert "ghost" in reply["error"]


@case("workflow with an unknown module")
async def _(ctx: Ctx) -> None:
    for module_id in ("no_such_module", "../../../../tmp/evil", "/etc/passwd"):
        wf = workflow([node("a", module_id)], [])
        reply = await ctx.ask("execute_workflow", job_id=f"u{len(module_id)}", workflow_data=wf, initial_payload={})
        assert reply["code"] in ("not_found", "invalid_field"), reply
        assert "not installed" in reply["error"] or "module_id" in reply["error"], reply


@case("workflow with 100,000 nodes")
async def _(ctx: Ctx) -> None:
    wf = {"nodes": [{"id": f"n{i}"} for i in range(100_000)], "connections": []}
    reply = await ctx.refused("invalid_field", "execute_workflow", job_id="huge", workflow_data=wf, initial_payload={})
    assert "nodes" in reply["error"]
    assert (await ctx.ask("request_job_status", job_id="huge"))["code"] == "not_found"


def _file_job_case(module_id: str, make_path: Callable[[Ctx], str], **config: Any) -> Callable[[Ctx], Awaitable[None]]:
    async def run(ctx: Ctx) -> None:
        path = make_path(ctx)
        wf = workflow([node("t", "manual_trigger"), node("f", module_id, path=path, **config)], [edge("t", "f")])
        status = final(await collect(ctx.client, await start(ctx.client, wf)))
        assert status["status"] == "FAILED", status
        assert "outside the shared folders" in status["error"] or "absolute path" in status["error"], status
        assert "top secret" not in json.dumps(status)
        assert (ctx.outside / "secret.txt").read_text() == "top secret"
        assert not (ctx.outside / "new.txt").exists()
        ctx.stores = True  # the failed job is recorded
    return run


def _dangling(ctx: Ctx) -> str:
    (ctx.shared / "dangling").symlink_to(ctx.outside / "new.txt")
    return str(ctx.shared / "dangling")


def _link_to_secret(ctx: Ctx) -> str:
    (ctx.shared / "link.txt").symlink_to(ctx.outside / "secret.txt")
    return str(ctx.shared / "link.txt")


for _label, _module, _path, _config in (
        ("read_file with a traversal", "read_file", lambda c: f"{c.shared}/../outside/secret.txt", {}),
        ("read_file with an absolute path outside", "read_file", lambda c: str(c.outside / "secret.txt"), {}),
        ("read_file through a symlink out of the share", "read_file", _link_to_secret, {}),
        ("write_file with a traversal", "write_file", lambda c: f"{c.shared}/../outside/new.txt", {"content": "x"}),
        ("write_file over a file outside", "write_file", lambda c: str(c.outside / "secret.txt"), {"content": "x"}),
        ("write_file through a dangling symlink out of the share", "write_file", _dangling, {"content": "x"}),
        ("write_file with a relative path", "write_file", lambda c: "outside/new.txt", {"content": "x"})):
    case(f"file module path: {_label}")(_file_job_case(_module, _path, **_config))


@case("sub-workflow naming a preset by path")
async def _(ctx: Ctx) -> None:
    wf = workflow([node("t", "manual_trigger"), node("sub", "sub_workflow", preset_name="../../../etc/passwd")],
                  [edge("t", "sub")])
    status = final(await collect(ctx.client, await start(ctx.client, wf)))
    assert status["status"] == "FAILED" and "not found" in status["error"], status
    ctx.stores = True


# -- the runner --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CASES))
async def test_hostile_case(name: str, make_engine: Any, owner: Wallet, stranger: Wallet,
                            shared_dir: Path, tmp_path: Path) -> None:
    fn, config = CASES[name]
    outside = tmp_path / "outside"
    (outside / "inner").mkdir(parents=True)
    (outside / "secret.txt").write_text("top secret")
    (shared_dir / "note.txt").write_text("shared")
    engine = await make_engine(**config)
    clients: list[EngineClient] = []

    async def open_client(wallet: Wallet | None = None) -> EngineClient:
        c = await EngineClient.connect(engine.url, (wallet or owner).key)
        clients.append(c)
        return c

    try:
        with catch_logs() as logs:
            ctx = Ctx(engine, owner, stranger, shared_dir, outside, tmp_path, await open_client(), open_client)
            # The attacker's connection has signed in once (so the frame checks below are what
            # each case meets, not the tighter limits of a connection that has not signed in,
            # which hardening/test_preauth_limits.py tries).
            assert (await ctx.ask("request_settings"))["type"] == "settings_response"
            before_counts, before_files = await counts(engine), files_under(tmp_path)
            await asyncio.wait_for(fn(ctx), 60)
            if not ctx.closed_ok:
                assert not ctx.client.closed.is_set(), "the engine closed the attacker's connection"
                reply = await ctx.ask("request_settings")
                assert reply["type"] == "settings_response" and "error" not in reply, reply
            if not ctx.stores:
                assert await counts(engine) == before_counts
                assert files_under(tmp_path) - before_files <= {"shared/escape", "shared/peek.txt", "shared/up", "shared/loop"}
            assert files_under(tmp_path / "outside") == {"inner", "secret.txt"}
        assert not logs.problems(), logs.problems()
    finally:
        for c in clients:
            await c.close()


def test_the_table_has_at_least_40_cases() -> None:
    assert len(CASES) >= 40, len(CASES)
