"""Running workflows end to end over a real socket: event order, branches, the error port,
failures, merge, the loop guard, retries, timeouts, loops, validation, standalone nodes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.client import EngineClient, EngineReplyError
from tests.conftest import Wallet
from tests.runtime_support import collect, edge, final, metrics, node, ran, run, start, workflow

# Test components, installed as user components in the data folder: real code the real
# engine loads and runs.
COMPONENTS = {
    "flaky": '''
FAILURES = {}

def run(ctx, payload):
    key = (ctx.job_id, ctx.node_id)
    FAILURES[key] = FAILURES.get(key, 0) + 1
    if FAILURES[key] <= int(ctx.config.get("fail_times", 1)):
        raise RuntimeError(f"flaky failure {FAILURES[key]}")
    payload["data"]["attempts"] = FAILURES[key]
    return payload
''',
    "hold": '''
import os

def run(ctx, payload):
    """Sync: waits (in a worker thread) until the file named in config exists."""
    while not os.path.exists(ctx.config["file"]):
        if ctx.cancelled.wait(0.02):
            return payload
    payload["data"]["held"] = True
    return payload
''',
    "count": '''
async def run(ctx, payload):
    payload["data"]["n"] = payload["data"].get("n", 0) + 1
    return payload
''',
    "ask_sync": '''
def run(ctx, payload):
    """A sync module asking for approval from its worker thread."""
    answer = ctx.request_approval_blocking("sync ask " + ctx.node_id, timeout_s=30)
    return {"payload": payload, "output_name": answer.decision}
''',
    "crash": '''
def run(ctx, payload):
    return {"payload": {"data": {"x": 1 / 0}}}
''',
}


def install_components(data_dir: Path) -> None:
    for component_id, code in COMPONENTS.items():
        folder = data_dir / "components" / "modules" / component_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "manifest.json").write_text(
            '{"name": "%s", "properties": [], "output_ports": [{"name": "output"}]}' % component_id)
        (folder / "module.py").write_text(code)


@pytest.fixture
async def engine(make_engine, data_dir):
    install_components(data_dir)
    return await make_engine(max_node_runs=50)


async def test_linear_run_sends_every_event_in_order(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger", "Start"), node("s", "set_data", "Set", data={"a": 1}),
                   node("l", "log_message", "Log", message="a is {{data.a}}", level="WARN")],
                  [edge("t", "s"), edge("s", "l")])
    job_id, events = await run(client, wf)
    kinds = [(e["type"], e.get("node_id") or e.get("connection_id") or e.get("status_data", {}).get("status"),
              e.get("status")) for e in events if e["type"] != "log"]
    assert kinds == [
        ("workflow_status_update", "RUNNING", None),
        ("NODE_EXECUTION_METRIC", "t", "RUNNING"), ("NODE_EXECUTION_METRIC", "t", "SUCCESS"),
        ("CONNECTION_STATUS_UPDATE", "t-s", "ACTIVE"),
        ("NODE_EXECUTION_METRIC", "s", "RUNNING"), ("NODE_EXECUTION_METRIC", "s", "SUCCESS"),
        ("CONNECTION_STATUS_UPDATE", "s-l", "ACTIVE"),
        ("NODE_EXECUTION_METRIC", "l", "RUNNING"), ("NODE_EXECUTION_METRIC", "l", "SUCCESS"),
        ("workflow_status_update", "SUCCEEDED", None)]
    # The node's log line comes once, between its RUNNING and SUCCESS metrics.
    lines = [e for e in events if e["type"] == "log" and e.get("node_id") == "l"]
    assert [(x["message"], x["level"], x["source"]) for x in lines] == [("a is 1", "WARN", "Log")]
    index = events.index(lines[0])
    assert events[index - 1]["status"] == "RUNNING" and events[index + 1]["status"] == "SUCCESS"
    for metric in metrics(events):
        assert metric["workflow_context_id"] == job_id and metric["mode"] == "EXECUTE"
        assert metric["module_id"] in ("manual_trigger", "set_data", "log_message")
        assert metric["input_size_bytes"] > 0 and isinstance(metric["timestamp"], float)
    for metric in metrics(events, "SUCCESS"):
        assert metric["execution_time_ms"] >= 0 and metric["output_size_bytes"] > 0
    done = final(events)
    assert done["result"]["data"] == {"a": 1}
    assert [h["node_id"] for h in done["result"]["history"]] == ["t", "s", "l"]
    assert done["end_time"] >= done["start_time"] and done["preset_name"] == "unsaved-workflow"


async def test_branches_run_and_each_edge_gets_its_own_copy(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger"), node("a", "set_data", data={"side": "a"}),
                   node("b", "set_data", data={"side": "b"}), node("la", "log_message", message="{{data.side}}"),
                   node("lb", "log_message", message="{{data.side}}")],
                  [edge("t", "a"), edge("t", "b"), edge("a", "la"), edge("b", "lb")])
    _, events = await run(client, wf)
    assert final(events)["status"] == "SUCCEEDED"
    assert sorted(ran(events)) == ["a", "b", "la", "lb", "t"]
    logs = {e["node_id"]: e["message"] for e in events if e["type"] == "log" and e.get("node_id") in ("la", "lb")}
    assert logs == {"la": "a", "lb": "b"}  # neither branch saw the other's change
    # Per branch, order holds: a's edge lights up before la starts.
    order = [(e["type"], e.get("connection_id") or e.get("node_id"), e.get("status")) for e in events]
    assert order.index(("CONNECTION_STATUS_UPDATE", "a-la", "ACTIVE")) < order.index(("NODE_EXECUTION_METRIC", "la", "RUNNING"))


async def test_if_condition_takes_one_port(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger"), node("s", "set_data", data={"n": 7}),
                   node("if", "if_condition", field="n", operator="greater_than", value="5"),
                   node("yes", "log_message", message="big"), node("no", "log_message", message="small")],
                  [edge("t", "s"), edge("s", "if"), edge("if", "yes", "true"), edge("if", "no", "false")])
    _, events = await run(client, wf)
    assert ran(events) == ["t", "s", "if", "yes"]
    assert next(m for m in metrics(events, "SUCCESS") if m["node_id"] == "if")["output_name"] == "true"


async def test_error_port_catches_a_failure(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger"), node("boom", "stop_and_error", message="bad input"),
                   node("handler", "log_message", message="caught: {{data.error.message}}"),
                   node("never", "log_message", message="not reached")],
                  [edge("t", "boom"), edge("boom", "handler", "error"), edge("boom", "never")])
    _, events = await run(client, wf)
    assert final(events)["status"] == "SUCCEEDED"
    failed = metrics(events, "ERROR")
    assert [(m["node_id"], m["error_message"]) for m in failed] == [("boom", "bad input")]  # D1
    assert not [m for m in metrics(events) if "error" in m]
    assert "never" not in ran(events) and "handler" in ran(events)
    assert any(e["type"] == "log" and e["message"] == "caught: bad input" for e in events)
    assert final(events)["result"]["data"]["error"]["node_id"] == "boom"


async def test_an_unhandled_error_fails_the_job_with_the_node_and_message(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger"), node("boom", "stop_and_error", "Check input", message="no data"),
                   node("after", "log_message", message="x")],
                  [edge("t", "boom"), edge("boom", "after")])
    _, events = await run(client, wf)
    done = final(events)
    assert done["status"] == "FAILED"
    assert "Check input" in done["error"] and "no data" in done["error"]
    assert "after" not in [m["node_id"] for m in metrics(events)]
    # A module's own bug (an exception it did not mean) fails the same clear way.
    _, events = await run(client, workflow([node("c", "crash")], []))
    assert final(events)["status"] == "FAILED" and "ZeroDivisionError" in final(events)["error"]


async def test_merge_waits_for_all_inputs(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger"), node("a", "set_data", data={"a": 1}),
                   node("slow", "delay", seconds=0.05), node("b", "set_data", data={"b": 2}),
                   node("m", "merge"), node("after", "log_message", message="{{data.a}}+{{data.b}}")],
                  [edge("t", "a"), edge("t", "slow"), edge("slow", "b"), edge("a", "m"), edge("b", "m"),
                   edge("m", "after")])
    _, events = await run(client, wf)
    assert final(events)["status"] == "SUCCEEDED"
    assert ran(events).count("m") == 1 and ran(events).count("after") == 1
    assert any(e["type"] == "log" and e["message"] == "1+2" for e in events)
    assert final(events)["result"]["data"] == {"a": 1, "b": 2}


async def test_merge_runs_with_what_arrived_when_a_branch_ends_early(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger"), node("if", "if_condition", field="x", operator="exists"),
                   node("a", "set_data", data={"a": 1}), node("m", "merge", mode="list")],
                  [edge("t", "if"), edge("if", "m", "true"), edge("t", "a"), edge("a", "m")])
    _, events = await run(client, wf)
    assert final(events)["status"] == "SUCCEEDED"
    assert final(events)["result"]["data"] == {"items": [{"a": 1}]}
    assert any(e["type"] == "log" and "1 of 2 inputs" in e["message"] for e in events)


async def test_the_loop_guard_stops_an_endless_loop(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger"), node("c", "count"), node("again", "log_message", message="{{data.n}}")],
                  [edge("t", "c"), edge("c", "again"), edge("again", "c")])
    _, events = await run(client, wf)
    done = final(events)
    assert done["status"] == "FAILED"
    assert "50 node runs" in done["error"] and "loop" in done["error"]
    assert len(metrics(events, "RUNNING")) == 50


async def test_a_node_with_several_inputs_runs_once_per_arrival(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger"), node("a", "set_data", data={}), node("b", "set_data", data={}),
                   node("c", "count")],
                  [edge("t", "a"), edge("t", "b"), edge("a", "c"), edge("b", "c")])
    _, events = await run(client, wf)
    assert ran(events).count("c") == 2


async def test_retries_then_success_and_per_node_timeout(client: EngineClient, shared_dir: Path) -> None:
    wf = workflow([node("f", "flaky", fail_times=2, retry_max=2, retry_delay_s=0.01)], [])
    _, events = await run(client, wf)
    assert final(events)["status"] == "SUCCEEDED"
    assert final(events)["result"]["data"]["attempts"] == 3
    warnings = [e["message"] for e in events if e["type"] == "log" and e["level"] == "WARN"]
    assert len(warnings) == 2 and "Attempt 1 of 3 failed: RuntimeError: flaky failure 1" in warnings[0]
    # Not enough retries: the job fails with the last error.
    _, events = await run(client, workflow([node("f", "flaky", fail_times=5, retry_max=1)], []))
    assert final(events)["status"] == "FAILED" and "flaky failure 2" in final(events)["error"]
    # A node timeout ends a sync module that hangs (it sees ctx.cancelled) and fails the node.
    _, events = await run(client, workflow([node("h", "hold", file=str(shared_dir / "never"), timeout_s=0.2)], []))
    assert final(events)["status"] == "FAILED" and "timed out after 0.2 s" in final(events)["error"]


async def test_workflow_timeout(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger"), node("d", "delay", seconds=30)], [edge("t", "d")], timeout_s=0.3)
    _, events = await run(client, wf)
    assert final(events)["status"] == "FAILED"
    assert "timeout of 0.3 s" in final(events)["error"]


async def test_global_loop_config_repeats_the_run(client: EngineClient) -> None:
    wf = workflow([node("t", "manual_trigger"), node("c", "count")], [edge("t", "c")])
    wf["global_loop_config"] = {"isEnabled": True, "iterations": 3, "isDelayEnabled": True,
                                "delayType": "random_range", "delayStatic": 0,
                                "delayRandomMin": 0.01, "delayRandomMax": 0.02}
    _, events = await run(client, wf)
    assert final(events)["status"] == "SUCCEEDED"
    assert ran(events) == ["t", "c"] * 3
    assert [e["message"] for e in events if e["type"] == "log" and e["message"].startswith("Iteration")] == [
        "Iteration 1 of 3.", "Iteration 2 of 3.", "Iteration 3 of 3."]
    assert final(events)["result"]["data"] == {"n": 1}  # every iteration starts from the initial payload


async def test_older_connection_spelling_and_start_node_and_initial_payload(client: EngineClient) -> None:
    wf = {"nodes": [node("a", "set_data", data={"x": 1}), node("b", "log_message", message="{{data.x}}/{{data.y}}"),
                    node("c", "log_message", message="c")],
          "connections": [{"id": "e1", "from": "a", "to": "b", "sourceHandle": "output", "targetHandle": "input"},
                          {"id": "e2", "from": "b", "to": "c", "sourceHandle": None}]}
    _, events = await run(client, wf, initial_payload={"y": "given"})
    assert ran(events) == ["a", "b", "c"]
    assert any(e["type"] == "log" and e["message"] == "1/given" for e in events)
    _, events = await run(client, wf, start_node_id="b")
    assert ran(events) == ["b", "c"]


@pytest.mark.parametrize("wf, problem", [
    ({"nodes": [{"id": "a", "module_id": "nope"}], "connections": []}, "not installed"),
    ({"nodes": [{"id": "a", "module_id": "log_message"}], "connections": [{"source": "a", "target": "zz"}]}, "names no node"),
    ({"nodes": [{"id": "a", "module_id": "log_message"}, {"id": "a", "module_id": "log_message"}], "connections": []}, "repeats"),
    ({"nodes": "x", "connections": []}, "must be a list"),
    ({"nodes": [{"id": "a", "module_id": "log_message", "config_values": []}], "connections": []}, "must be an object"),
    ({"nodes": [{"id": "a", "module_id": "log_message"}], "connections": [], "global_loop_config": {"isEnabled": True, "iterations": 0}}, "at least 1"),
])
async def test_a_bad_workflow_is_refused_with_a_clear_error(client: EngineClient, wf, problem) -> None:
    with pytest.raises(EngineReplyError) as caught:
        await client.request("execute_workflow", job_id="bad-1", workflow_data=wf, mode="EXECUTE")
    assert problem in caught.value.frame["error"]
    assert caught.value.frame["type"] == "status_response"


async def test_job_ids_are_used_once_and_modes_are_checked(client: EngineClient) -> None:
    wf = workflow([node("d", "delay", seconds=30)], [])
    job_id = await start(client, wf, job_id="same-id")
    with pytest.raises(EngineReplyError) as caught:
        await start(client, wf, job_id="same-id")
    assert caught.value.code == "conflict" and "cannot start a new run" in caught.value.frame["error"]
    await client.request("stop_workflow", job_id=job_id)
    await collect(client, job_id)
    with pytest.raises(EngineReplyError) as caught:
        await start(client, wf, job_id="same-id")
    assert caught.value.code == "conflict" and "cannot start a new run" in caught.value.frame["error"]
    with pytest.raises(EngineReplyError) as caught:
        await start(client, wf, mode="FAST")
    assert caught.value.code == "invalid_field"


async def test_execute_standalone_node(client: EngineClient) -> None:
    reply = await client.request("execute_standalone_node", job_id="solo-1", mode="SIMULATE",
                                 node_data={"module_id": "set_data", "config_values": {"data": {"k": "v"}}})
    assert reply["job_id"] == "solo-1"
    events = await collect(client, "solo-1")
    assert final(events)["status"] == "SUCCEEDED" and final(events)["result"]["data"] == {"k": "v"}
    assert [m["mode"] for m in metrics(events)] == ["SIMULATE", "SIMULATE"]
    with pytest.raises(EngineReplyError):
        await client.request("execute_standalone_node", job_id="solo-2", node_data={"config_values": {}})


async def test_a_blocking_module_never_stalls_the_engine(client: EngineClient, shared_dir: Path) -> None:
    release = shared_dir / "release"
    job_id = await start(client, workflow([node("h", "hold", file=str(release))], []))
    await client.next_event("NODE_EXECUTION_METRIC", where=lambda e: e["node_id"] == "h" and e["status"] == "RUNNING")
    # The module is blocked in a worker thread; the engine still answers at once.
    for _ in range(5):
        assert "settings" in await client.request("request_settings", timeout=5)
    release.write_text("go")
    events = await collect(client, job_id)
    assert final(events)["status"] == "SUCCEEDED" and final(events)["result"]["data"]["held"] is True


async def test_status_of_a_job_and_other_owners_cannot_see_it(make_engine, owner: Wallet, stranger: Wallet) -> None:
    engine = await make_engine(owners=(owner.address, stranger.address))
    async with await EngineClient.connect(engine.url, owner.key) as mine, \
            await EngineClient.connect(engine.url, stranger.key) as theirs:
        job_id, events = await run(mine, workflow([node("s", "set_data", data={"a": 1})], []))
        status = await mine.request("request_job_status", job_id=job_id)
        assert status["status_data"]["status"] == "SUCCEEDED"
        with pytest.raises(EngineReplyError) as caught:
            await theirs.request("request_job_status", job_id=job_id)
        assert caught.value.code == "not_found"
        # The other owner's connection got none of this job's events.
        await theirs.request("request_settings")
        assert not [e for e in theirs.pending_events() if e.get("job_id") == job_id]
        await asyncio.sleep(0)


async def test_a_sync_module_can_ask_for_approval(engine, client: EngineClient) -> None:
    wf = workflow([node("a", "ask_sync"), node("yes", "set_data", data={"r": "yes"})], [edge("a", "yes", "APPROVED")])
    job_id = await start(client, wf)
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    assert asked["message"] == "sync ask a" and asked["module_id"] == "ask_sync"
    assert engine.approvals.resolve(asked["approval_id"], "APPROVED")
    assert final(await collect(client, job_id))["result"]["data"] == {"r": "yes"}
    # Stopping the job releases the waiting worker thread and withdraws the request.
    job_id = await start(client, wf)
    await client.next_event("MANUAL_APPROVAL_REQUESTED")
    await client.request("stop_workflow", job_id=job_id)
    assert final(await collect(client, job_id))["status"] == "STOPPED"
    assert (await client.next_event("MANUAL_APPROVAL_RESOLVED"))["decided_by"] == "cancelled"


def test_port_names_match_like_a_person_expects() -> None:
    from engine.runtime.graph import parse_workflow
    graph = parse_workflow({"nodes": [{"id": n, "module_id": "log_message"} for n in "abcde"],
                            "connections": [{"source": "a", "target": "b"},
                                            {"source": "a", "target": "c", "source_port_name": "output"},
                                            {"source": "a", "target": "d", "sourceHandle": "True"},
                                            {"source": "a", "target": "e", "source_port_name": "error"}]})
    assert [e.target for e in graph.edges_from("a", None)] == ["b", "c"]
    assert [e.target for e in graph.edges_from("a", "output")] == ["b", "c"]
    assert [e.target for e in graph.edges_from("a", "true")] == ["d"]
    assert [e.target for e in graph.edges_from("a", "error")] == ["e"]
    assert graph.edges_from("a", "REJECTED") == []


async def test_integers_past_64_bits_run_and_come_back_exactly(client: EngineClient) -> None:
    """The GUI writes 1e20 as 21 digits, and a module may compute any integer: orjson cannot
    write those (the job's checkpoint failed the start with an internal error) nor read them
    back as integers (they became floats)."""
    big = {"gui": 100000000000000000000, "module": 2**70 + 1, "negative": -(2**65) - 7}
    wf = workflow([node("t", "manual_trigger"), node("s", "set_data", data=big),
                   node("a", "set_data", data={"after": 1}), node("b", "set_data", data={"after": 2})],
                  [edge("t", "s"), edge("s", "a"), edge("s", "b")])
    _, events = await run(client, wf)
    assert final(events)["status"] == "SUCCEEDED"
    data = final(events)["result"]["data"]
    assert {k: data[k] for k in big} == big and all(type(data[k]) is int for k in big)
