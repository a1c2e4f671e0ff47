"""Property-based fuzzing of everything a client can send (issue 7, "Bad input").

Thousands of generated frames per run go to one real engine over a few real connections:
malformed JSON, wrong types for every field of every registered message type (the list and the
fields come from the handler registry, so new message types are fuzzed without editing this
file), huge strings, deep nesting, missing and extra fields, binary frames, broken auth blocks.

For every batch: each text frame gets a typed reply (matched by its request_id where it carries
one), no reply is an `internal_error`, nothing lands in the engine log as an error or a
traceback, and the connection still answers a well-formed request.
"""

from __future__ import annotations

import json
import logging
import string
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.client import EngineClient
from engine.config import EngineConfig
from engine.handlers import build_registry
from engine.protocol.schema import Field, Schema
from tests.conftest import Wallet
from tests.hardening.helpers import LogCatcher, ThreadedEngine, auth_block, catch_logs

REGISTRY = build_registry()
TYPES = REGISTRY.types()
EVENT_TYPES = {"engine_status_update"}

# Schemas checked inside a handler, after the envelope's schema (fuzzed one level deeper).
try:
    from engine.handlers.variables import DATA_SCHEMA as VARIABLE_DATA
except ImportError:  # pragma: no cover - the registry test below still covers the envelope
    VARIABLE_DATA = Schema({})
NESTED: dict[tuple[str, str], Schema] = {("update_variable", "data"): VARIABLE_DATA}

JSON_KINDS = ("null", "bool", "int", "float", "str", "list", "dict")
SAMPLE = {"null": None, "bool": True, "int": 7, "float": 2.5, "str": "text", "list": [1, "a"],
          "dict": {"k": "v"}}


def accepts(spec: Field, kind: str) -> bool:
    """Whether `spec` accepts a JSON value of `kind` by type (values may still be refused)."""
    if kind == "null":
        return spec.nullable
    if kind == "bool":
        return bool in spec.types
    python_type = {"int": int, "float": float, "str": str, "list": list, "dict": dict}[kind]
    return any(issubclass(python_type, t) and not (t is int and python_type is bool) for t in spec.types)


# -- strategies --------------------------------------------------------------------------------

json_scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=20)
HOSTILE_STRINGS = ["../../../../etc/passwd", "/etc/passwd", "..", ".", "a/../../b", "C:\\Windows\\system32",
                   "\\\\server\\share", "name\x00.txt", "\u202e\u0000", "~root/.ssh/id_rsa", "%2e%2e%2f",
                   "${jndi:ldap://x}", "{{vars.SECRET}}", "' OR 1=1 --", "\U0001f600" * 3,
                   "", " ", "MY_VAR", "unsaved-workflow", "0x" + "ab" * 20, "0x" + "1" * 130, "*"]


@st.composite
def huge_string(draw: st.DrawFn) -> str:
    size = draw(st.sampled_from([129, 4097, 65 * 1024, 300_000]))
    return draw(st.sampled_from(string.printable[:62])) * size


@st.composite
def deep_value(draw: st.DrawFn) -> Any:
    depth = draw(st.integers(10, 200))
    value: Any = draw(json_scalars)
    for _ in range(depth):
        value = [value] if draw(st.booleans()) else {"d": value}
    return value


def wrong_type_for(spec: Field) -> st.SearchStrategy[Any]:
    kinds = [k for k in JSON_KINDS if not accepts(spec, k)]
    return st.sampled_from(kinds).map(lambda k: SAMPLE[k]) if kinds else st.nothing()


def plausible_for(spec: Field, msg_type: str, name: str) -> st.SearchStrategy[Any]:
    """Values of the right type, often near the limits."""
    nested = NESTED.get((msg_type, name))
    if nested is not None:
        return payload_fields(nested, msg_type + "." + name)
    options: list[st.SearchStrategy[Any]] = []
    if spec.choices:
        options.append(st.sampled_from(spec.choices))
    if str in spec.types:
        options += [st.sampled_from(HOSTILE_STRINGS), st.text(max_size=spec.max_len or 64)]
    if int in spec.types or float in spec.types:
        options.append(st.integers(-10**12, 10**12))
    if float in spec.types:
        options.append(st.floats(allow_nan=True, allow_infinity=True))
    if bool in spec.types:
        options.append(st.booleans())
    if list in spec.types:
        options.append(st.lists(json_values, max_size=6))
    if dict in spec.types:
        options += [st.dictionaries(st.text(max_size=12), json_values, max_size=6), workflow_like()]
    return st.one_of(options) if options else json_values


@st.composite
def workflow_like(draw: st.DrawFn) -> dict[str, Any]:
    """Workflow-shaped objects with fuzzed parts: the shape save_preset and execute_workflow read."""
    node = st.fixed_dictionaries({"id": st.text(max_size=8) | json_values,
                                  "module_id": st.sampled_from(["", "no-such-module", "../x"]) | json_values,
                                  "config_values": json_values})
    conn = st.fixed_dictionaries({"id": st.text(max_size=4), "source": st.text(max_size=4) | json_values,
                                  "target": st.text(max_size=4) | json_values})
    return {"nodes": draw(st.lists(node, max_size=4) | json_values),
            "connections": draw(st.lists(conn, max_size=4) | json_values),
            "global_loop_config": draw(json_values)}


def field_value(spec: Field, msg_type: str, name: str) -> st.SearchStrategy[Any]:
    return st.one_of(plausible_for(spec, msg_type, name), wrong_type_for(spec), huge_string(),
                     deep_value(), json_values)


@st.composite
def payload_fields(draw: st.DrawFn, schema: Schema, msg_type: str) -> dict[str, Any]:
    """Each declared field: missing, plausible, of a wrong type, huge or deep; plus extras."""
    fields: dict[str, Any] = {}
    for name, spec in schema.fields.items():
        if draw(st.integers(0, 5)) == 0:
            continue  # missing
        fields[name] = draw(field_value(spec, msg_type, name))
    if draw(st.booleans()):
        fields.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=3)))
    return fields


@st.composite
def message_type(draw: st.DrawFn) -> Any:
    return draw(st.sampled_from(TYPES) | st.sampled_from(TYPES) | st.text(max_size=70)
                | json_values | huge_string())


@st.composite
def structured_frame(draw: st.DrawFn) -> tuple[Any, bool]:
    """({auth, payload} object, whether it carries a usable request_id, set when sent)."""
    msg_type = draw(message_type())
    spec = REGISTRY.get(msg_type) if isinstance(msg_type, str) else None
    payload: dict[str, Any] = {}
    if draw(st.integers(0, 9)) > 0:
        payload["type"] = msg_type
    if spec is not None:
        payload.update(draw(payload_fields(spec.schema, msg_type)))
    rid = True
    roll = draw(st.integers(0, 9))
    if roll == 0:
        rid = False
    elif roll == 1:  # a request_id the engine must not echo
        payload["request_id"] = draw(st.sampled_from([None, True, 1.5, [1], {"a": 1}, "x" * 129]))
        rid = False
    auth_roll = draw(st.integers(0, 9))
    auth: Any = "VALID"
    if auth_roll == 0:
        auth = draw(json_values | st.fixed_dictionaries(
            {}, optional={"address": json_values | st.just("0x" + "ab" * 20),
                          "message": json_values | st.just("Flowork GUI-to-Engine Authentication: 1"),
                          "signature": json_values | st.just("0x" + "1b" * 65)}))
    frame: dict[str, Any] = {"auth": auth, "payload": payload}
    shape = draw(st.integers(0, 19))
    if shape == 0:
        frame["payload"] = draw(json_values)  # not an object
        rid = False
    elif shape == 1:
        del frame["payload"]
        rid = False
    elif shape == 2:
        del frame["auth"]
    elif shape == 3:
        frame.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=3)))
        frame.setdefault("payload", payload)
    if not isinstance(frame.get("payload"), dict) or frame["payload"] is not payload:
        rid = False
    return frame, rid


@st.composite
def fuzz_frame(draw: st.DrawFn) -> tuple[str, Any, bool]:
    """("text" | "binary" | "object", data, whether a request_id is to be set when sent)."""
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return "binary", draw(st.binary(max_size=300)), False
    if kind == 1:
        return "text", draw(st.text(max_size=300)), False
    if kind == 2:  # valid JSON that is not a frame object
        return "text", json.dumps(draw(json_values)), False
    if kind == 3:  # nested past every limit, including the JSON decoder's recursion limit
        depth = draw(st.sampled_from([65, 1500, 100_000]))
        return "text", "[" * depth + "]" * depth, False
    frame, rid = draw(structured_frame())
    if kind == 4:  # a truncated frame
        text = json.dumps({**frame, "auth": {}}, allow_nan=True)
        return "text", text[: draw(st.integers(1, max(1, len(text) - 1)))], False
    return "object", frame, rid


# -- the engine under fuzz ---------------------------------------------------------------------

class FuzzTarget:
    """One engine, three owners with one connection each, a log catcher, a running counter."""

    def __init__(self, base: Path) -> None:
        self.wallets = [Wallet() for _ in range(3)]
        shared = base / "shared"
        (shared / "sub").mkdir(parents=True)
        (shared / "file.txt").write_text("hello")
        self.logs_cm = catch_logs(logging.INFO)
        self.logs: LogCatcher = self.logs_cm.__enter__()
        config = EngineConfig(host="127.0.0.1", port=0, engine_id="fuzz-engine", data_dir=base / "data",
                              owners=tuple(w.address for w in self.wallets), roots=(shared,),
                              status_interval=30.0, webhook_port=0)
        self.target = ThreadedEngine(config)
        self.clients: list[EngineClient] = [
            self.target.call(EngineClient.connect(self.target.engine.url, w.key)) for w in self.wallets]
        self._auth: list[tuple[float, dict[str, str]]] = [(0.0, {})] * len(self.wallets)
        self.frames_sent = 0
        self.replies_checked = 0

    def auth_for(self, i: int) -> dict[str, str]:
        """A valid auth block, re-signed every minute (the GUI may reuse one within the window)."""
        made, block = self._auth[i]
        if time.monotonic() - made > 60:
            block = auth_block(self.wallets[i].key)
            self._auth[i] = (time.monotonic(), block)
        return block

    def close(self) -> None:
        try:
            for c in self.clients:
                self.target.call(c.close())
            self.target.close()
        finally:
            self.logs_cm.__exit__(None, None, None)


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    target = FuzzTarget(tmp_path_factory.mktemp("fuzz"))
    yield target
    target.close()


async def _exchange(client: EngineClient, items: list[tuple[str, Any, str | None]],
                    auth: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Send the batch, then a sentinel request; return what arrived before the sentinel's reply."""
    client.pending_events()  # forget anything left over from earlier batches
    for kind, data, _rid in items:
        if kind == "object":
            frame = dict(data)
            if frame.get("auth") == "VALID":
                frame["auth"] = auth
            await client.send_raw(json.dumps(frame, allow_nan=True))
        else:
            await client.send_raw(data)
    sentinel = await client.request("request_prompts_list", timeout=30, check=False, auth=auth)
    return client.pending_events(), sentinel


def check_batch(received: list[dict[str, Any]], sentinel: dict[str, Any],
                items: list[tuple[str, Any, str | None]]) -> int:
    assert sentinel.get("type") == "prompts_list_response" and "error" not in sentinel, sentinel
    for frame in received:
        assert isinstance(frame, dict) and isinstance(frame.get("type"), str) and frame["type"], frame
        if frame.get("error"):
            assert isinstance(frame.get("code"), str), frame
            assert frame["code"] != "internal_error", frame
    by_rid: dict[Any, list[dict[str, Any]]] = {}
    for frame in received:
        by_rid.setdefault(frame.get("request_id"), []).append(frame)
    expected_unmatched = 0
    for _kind, _data, rid in items:
        if rid is None:
            expected_unmatched += 1
        else:
            replies = by_rid.get(rid, [])
            assert len(replies) == 1, f"request {rid} got {len(replies)} replies: {replies}"
    unmatched = [f for f in by_rid.get(None, []) if f["type"] not in EVENT_TYPES]
    assert len(unmatched) >= expected_unmatched, (
        f"{expected_unmatched} frames without a usable request_id, only {len(unmatched)} replies: {unmatched}")
    return len(items)


batches = st.tuples(st.integers(0, 2), st.lists(fuzz_frame(), min_size=1, max_size=10))


@pytest.mark.slow
# The engine's own thread uses `random` (jittered retries, random variables) while hypothesis
# generates; hypothesis notices the global random state move and warns.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_fuzzed_frames_always_get_typed_replies(fuzz_target: FuzzTarget) -> None:
    counter = {"batch": 0}

    @settings(max_examples=1200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(batch=batches)
    def run(batch: tuple[int, list[tuple[str, Any, bool]]]) -> None:
        conn, drawn = batch
        counter["batch"] += 1
        # Request ids unique across the whole run, so no reply can be mistaken for another's.
        items = []
        for position, (kind, data, has_rid) in enumerate(drawn):
            rid = f"fz-{counter['batch']}-{position}" if has_rid else None
            if rid is not None:
                data = {**data, "payload": {**data["payload"], "request_id": rid}}
            items.append((kind, data, rid))
        client = fuzz_target.clients[conn]
        mark = fuzz_target.logs.mark()
        received, sentinel = fuzz_target.target.call(
            _exchange(client, items, fuzz_target.auth_for(conn)))
        fuzz_target.frames_sent += check_batch(received, sentinel, items)
        problems = fuzz_target.logs.problems(since=mark)
        assert not problems, "\n".join(problems)

    run()
    print(f"\nfuzzed {fuzz_target.frames_sent} frames")
    assert fuzz_target.frames_sent >= 4000
    # Still healthy: a fresh connection gets a correct answer to a well-formed request.
    fresh = fuzz_target.target.call(EngineClient.connect(fuzz_target.target.engine.url,
                                                         fuzz_target.wallets[0].key))
    try:
        reply = fuzz_target.target.call(fresh.request("request_components_list", component_type="modules"))
        assert reply["type"] == "components_list_response"
    finally:
        fuzz_target.target.call(fresh.close())
    assert not fuzz_target.logs.problems(), "\n".join(fuzz_target.logs.problems())


# -- every field of every message type, each wrong JSON type, exhaustively ---------------------

def wrong_type_cases() -> list[tuple[str, str, str, str]]:
    """(message type, field, JSON kind, field the error must name)."""
    cases = []
    for msg_type in TYPES:
        fields = list(REGISTRY.get(msg_type).schema.fields.items())  # type: ignore[union-attr]
        for position, (name, spec) in enumerate(fields):
            blame = next((n for n, s in fields[:position] if s.required), name)
            for kind in JSON_KINDS:
                if not accepts(spec, kind):
                    cases.append((msg_type, name, kind, blame))
    return cases


async def test_every_field_of_every_message_refuses_every_wrong_type(make_engine: Any, owner: Wallet) -> None:
    cases = wrong_type_cases()
    assert len(cases) > 50  # the registry really was read
    engine = await make_engine()
    async with await EngineClient.connect(engine.url, owner.key) as client:
        with catch_logs() as logs:
            for msg_type, name, kind, blame in cases:
                reply = await client.request(msg_type, check=False, **{name: SAMPLE[kind]})
                assert reply.get("code") == "invalid_field", (msg_type, name, kind, reply)
                assert reply.get("field") == blame, (msg_type, name, kind, reply)
                # Install statuses carry their text in `message` (an `error` would stick the GUI).
                assert f"'{blame}'" in (reply.get("error") or reply["message"])
                assert reply["type"] == REGISTRY.get(msg_type).reply_type or reply["type"] == "error"  # type: ignore[union-attr]
            assert (await client.request("request_settings"))["type"] == "settings_response"
        assert not logs.problems(), logs.problems()
