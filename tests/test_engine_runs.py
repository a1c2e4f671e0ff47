"""engine.runs: paged run listings over the real store, a run's node timings, connections, log
lines and graph, and Stop / Pause / Resume / Run again, with a real engine and signed clients."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from engine.app import Engine
from engine.client import EngineClient
from engine.store.db import Database
from engine.store.history import RunFilter
from tests.runtime_support import collect, edge, final, node, start, workflow
from tests.test_engine_presets import save


def slow_flow(seconds: float = 30) -> dict:
    return workflow([node("t", "manual_trigger", "Start"), node("wait", "delay", "Wait", seconds=seconds),
                     node("after", "set_data", "After", data={"x": 1})],
                    [edge("t", "wait", edge_id="c1"), edge("wait", "after", edge_id="c2")])


def failing_flow() -> dict:
    return workflow([node("t", "manual_trigger", "Start"), node("say", "log_message", "Say", message="hello"),
                     node("boom", "stop_and_error", "Boom", message="the disk is full")],
                    [edge("t", "say", edge_id="c1"), edge("say", "boom", edge_id="c2")])


async def fill(engine: Engine, count: int, *, owner: str = "0xabc", start: float = 1_600_000_000.0) -> None:
    """`count` finished runs straight into the jobs table (as the recorder would leave them)."""
    statuses = ("SUCCEEDED", "SUCCEEDED", "FAILED", "STOPPED")

    def write(conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO jobs (job_id, address, preset_name, mode, status, start_time, end_time, error) "
            "VALUES (?, ?, ?, 'EXECUTE', ?, ?, ?, ?)",
            [(f"old-{i:06d}", owner, f"Nightly {i % 7}", statuses[i % 4], start + i, start + i + 0.5,
              "went wrong" if statuses[i % 4] == "FAILED" else None) for i in range(count)])
    assert engine.db is not None
    await engine.db.transaction(write)


async def test_a_run_is_listed_while_it_runs_and_ends_with_its_status(engine: Engine, client: EngineClient) -> None:
    runs = engine.runs
    assert runs is not None
    job_id = await start(client, slow_flow(), preset_name="Slow one")
    await client.next_event("NODE_EXECUTION_METRIC")
    await engine.runtime.recorder.flush()
    (run,) = await runs.page()
    assert (run.job_id, run.workflow, run.status, run.started_by) == (job_id, "Slow one", "RUNNING", {"kind": "gui"})
    assert run.nodes_total == 3 and run.ended_at is None
    assert runs.pause(job_id)
    assert (await runs.run(job_id)).status == "PAUSED"  # before its record says so
    assert runs.resume(job_id)
    assert runs.stop(job_id)
    assert final(await collect(client, job_id))["status"] == "STOPPED"
    run = await runs.run(job_id)
    assert run.status == "STOPPED" and run.ended_at is not None
    assert not runs.stop(job_id)  # no longer running


async def test_a_failed_run_has_its_node_timings_log_lines_and_connection_data(engine: Engine,
                                                                             client: EngineClient) -> None:
    job_id = await start(client, failing_flow(), preset_name="Fails")
    assert final(await collect(client, job_id))["status"] == "FAILED"
    runs = engine.runs
    run = await runs.run(job_id)
    assert run.status == "FAILED" and "the disk is full" in run.error
    assert run.nodes_done == 3 and run.node_runs == 3
    timings = await runs.node_runs(job_id)
    assert [(t.node_id, t.status) for t in timings] == [("t", "SUCCESS"), ("say", "SUCCESS"), ("boom", "ERROR")]
    assert all(t.end_time >= t.start_time for t in timings)
    assert "the disk is full" in timings[-1].error
    lines = runs.log_lines(job_id)
    assert lines and any(line.node_id == "boom" and line.level == "ERROR" for line in lines)
    assert any("hello" in line.message for line in lines)
    assert runs.log_lines("never-ran") is None
    connections = await runs.connections(job_id)
    assert [c.connection_id for c in connections] == ["c1", "c2"]
    assert all(c.count == 1 and c.size > 0 for c in connections)
    history = await runs.connection_history(job_id, "c2")
    assert history[0]["payload"]["data"] == {}
    graph = await runs.graph(job_id)  # seen running: its own graph, though never saved
    assert graph.exact and graph.nodes == {"t": "Start", "say": "Say", "boom": "Boom"}
    assert graph.edges == {"c1": ("t", "say"), "c2": ("say", "boom")}


async def test_runs_of_one_workflow_share_one_graph_view(engine: Engine, client: EngineClient) -> None:
    """A trigger's thousand runs of one preset get one node-and-edge view, not one each."""
    first = await start(client, failing_flow(), preset_name="Fails")
    second = await start(client, failing_flow(), preset_name="Fails")
    other = await start(client, slow_flow(0), preset_name="Slow one")
    for job_id in (first, second, other):
        await collect(client, job_id)
    runs = engine.runs
    one, two, three = [await runs.graph(job_id) for job_id in (first, second, other)]
    assert one.exact and one.nodes == {"t": "Start", "say": "Say", "boom": "Boom"}
    assert one is two
    assert three.nodes == {"t": "Start", "wait": "Wait", "after": "After"} and three is not one


async def test_keyset_pages_filters_and_counts_over_stored_runs(engine: Engine) -> None:
    await fill(engine, 5000)
    runs = engine.runs
    assert await runs.count() == 5000
    assert await runs.count(["FAILED"]) == 1250
    seen: list[str] = []
    page = await runs.page(limit=500)
    while page:
        seen += [r.job_id for r in page]
        page = await runs.page(before=page[-1].cursor, limit=500)
    assert seen == [f"old-{i:06d}" for i in range(4999, -1, -1)]  # newest first, none twice
    failed = await runs.page(RunFilter(statuses=("FAILED", "STOPPED")), limit=10)
    assert [r.job_id for r in failed] == [f"old-{i:06d}" for i in (4999, 4998, 4995, 4994, 4991, 4990, 4987, 4986, 4983, 4982)]
    assert {r.status for r in failed} == {"FAILED", "STOPPED"}
    text = await runs.page(RunFilter(text="nightly 3"), limit=5)
    assert [r.job_id for r in text] == [f"old-{i:06d}" for i in (4994, 4987, 4980, 4973, 4966)]
    both = await runs.page(RunFilter(statuses=("FAILED",), text="WENT"), before=text[-1].cursor, limit=3)
    assert [r.job_id for r in both] == ["old-004962", "old-004958", "old-004954"]
    newer = await runs.page(after=(1_600_000_000.0 + 4990, "old-004990"), limit=100)
    assert [r.job_id for r in newer] == [f"old-{i:06d}" for i in range(4999, 4990, -1)]
    assert await runs.page(RunFilter(text="no such run"), limit=5) == []
    assert (await runs.page(RunFilter(text="%")))== []  # LIKE's wildcards are literal


async def test_run_again_starts_the_latest_version_of_the_preset(engine: Engine, client: EngineClient) -> None:
    first = failing_flow()
    await save(client, "Retry me", first)
    job_id = await start(client, first, preset_name="Retry me")
    await collect(client, job_id)
    fixed = workflow([node("t", "manual_trigger", "Start"), node("ok", "set_data", "Fine", data={"ok": True})],
                     [edge("t", "ok", edge_id="c1")])
    await save(client, "Retry me", fixed)
    runs = engine.runs
    assert (await runs.graph(job_id)).nodes == {"t": "Start", "say": "Say", "boom": "Boom"}  # as it ran
    await engine.db.transaction(lambda conn: conn.execute(
        "INSERT INTO jobs (job_id, address, preset_name, mode, status, start_time) "
        "VALUES ('before-restart', ?, 'Retry me', 'EXECUTE', 'FAILED', 1.0)", (client.address.lower(),)))
    graph = await runs.graph("before-restart")  # not seen running: the preset's latest version
    assert graph.nodes == {"t": "Start", "ok": "Fine"} and not graph.exact
    assert (await runs.run("before-restart")).nodes_total == 2
    new_id = await runs.run_again(job_id)
    events = await collect(client, new_id)  # the owner's GUI hears about it
    assert final(events)["status"] == "SUCCEEDED"
    again = await runs.run(new_id)
    assert again.workflow == "Retry me" and again.owner == client.address.lower()
    assert [t.node_id for t in await runs.node_runs(new_id)] == ["t", "ok"]


async def test_run_again_without_a_saved_preset_says_why(engine: Engine, client: EngineClient) -> None:
    job_id = await start(client, failing_flow(), preset_name="Never saved")
    await collect(client, job_id)
    try:
        await engine.runs.run_again(job_id)
    except Exception as exc:  # noqa: BLE001
        assert "not saved as a preset" in str(exc)
    else:
        raise AssertionError("run_again started an unsaved workflow")


async def test_a_database_from_before_the_run_indexes_opens_and_gets_them(tmp_path) -> None:
    path = tmp_path / "old.sqlite3"
    db = Database(path)
    await db.open()
    await db.close()
    with sqlite3.connect(path) as conn:  # as an earlier version left it
        conn.execute("DROP INDEX runs_by_time")
        conn.execute("DROP INDEX runs_by_status")
        conn.execute("INSERT INTO jobs (job_id, address, mode, status, start_time) "
                     "VALUES ('j1', '0xabc', 'EXECUTE', 'SUCCEEDED', 1.0)")
    db = Database(path)
    await db.open()
    try:
        names = await db.run(lambda c: {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='index'")})
        assert {"runs_by_time", "runs_by_status"} <= names
        plan = await db.run(lambda c: " ".join(r[3] for r in c.execute(
            "EXPLAIN QUERY PLAN SELECT job_id FROM jobs j WHERE parent_job_id IS NULL "
            "AND (start_time, job_id) < (?, ?) ORDER BY start_time DESC, job_id DESC LIMIT 10", (2.0, "x"))))
        assert "runs_by_time" in plan and "TEMP B-TREE" not in plan
    finally:
        await db.close()


async def test_many_runs_keep_the_memory_bounded(engine: Engine, client: EngineClient) -> None:
    from engine import runs as runs_module
    flow = workflow([node("t", "manual_trigger"), node("say", "log_message", message="hi")], [edge("t", "say")])
    ids = [await start(client, flow) for _ in range(40)]
    for job_id in ids:
        await collect(client, job_id)
    queries = engine.runs
    assert len(queries._done) == 0  # only running jobs are followed
    assert len(queries._logs) <= runs_module.LOG_RUNS
    started = time.monotonic()
    while any(queries.log_lines(j) is None for j in ids) and time.monotonic() - started < 10:
        await asyncio.sleep(0.05)
    assert all(queries.log_lines(j) for j in ids)


async def test_how_a_run_started_comes_from_its_record_once_recorded(engine: Engine) -> None:
    """D6: the automations change adds jobs.started_by; rows that have it say how they started,
    rows without it (older runs, or a database without the column) read as started from the GUI."""
    from desktop.window.runs_model import started_by_label

    def add(conn: sqlite3.Connection) -> None:
        if "started_by" not in {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}:
            conn.execute("ALTER TABLE jobs ADD COLUMN started_by TEXT")
        conn.executemany("INSERT INTO jobs (job_id, address, preset_name, mode, status, start_time, started_by) "
                         "VALUES (?, '0xabc', 'Nightly', 'EXECUTE', 'SUCCEEDED', ?, ?)",
                         [("by-schedule", 3.0, '{"kind": "schedule", "rule_id": "r1"}'),
                          ("by-watch", 2.0, '{"kind": "file_watch"}'), ("old", 1.0, None)])
    await engine.db.transaction(add)
    runs = await engine.runs.page()
    assert [(r.job_id, r.started_by) for r in runs] == [
        ("by-schedule", {"kind": "schedule", "rule_id": "r1"}), ("by-watch", {"kind": "file_watch"}),
        ("old", {"kind": "gui"})]
    assert [started_by_label(r.started_by) for r in runs] == ["Schedule", "Folder watch", "GUI"]


async def test_two_owners_runs_of_one_job_id_are_two_runs(make_engine, owner, stranger) -> None:
    """Job ids are per owner (engine/runtime/job_keys.py): the window lists each owner's run of
    "nightly" as its own run, follows each one's nodes and log lines, and stops only the one
    asked for, while both show the id their owner named."""
    engine = await make_engine(owners=(owner.address, stranger.address))
    runs = engine.runs
    flow = workflow([node("say", "log_message", "Say", message="{{data.who}}"), node("wait", "delay", "Wait", seconds=30)],
                    [edge("say", "wait", edge_id="c1")])
    async with await EngineClient.connect(engine.url, owner.key) as mine, \
            await EngineClient.connect(engine.url, stranger.key) as theirs:
        for client, who in ((mine, "mine"), (theirs, "theirs")):
            await start(client, flow, job_id="nightly", initial_payload={"data": {"who": who}})
            await client.next_event("NODE_EXECUTION_METRIC", where=lambda e: e["node_id"] == "wait")
        await engine.runtime.recorder.flush()
        listed = await runs.page()
        assert sorted(r.wire_id for r in listed) == ["nightly", "nightly"]
        by_owner = {r.owner: r for r in listed}
        assert len({r.job_id for r in listed}) == 2 and set(by_owner) == {owner.address.lower(), stranger.address.lower()}
        for address, who in ((owner.address.lower(), "mine"), (stranger.address.lower(), "theirs")):
            run = by_owner[address]
            assert run.status == "RUNNING" and run.nodes_done == 1
            assert [line.message for line in runs.log_lines(run.job_id) or [] if line.node_id == "say"] == [who]
        assert runs.stop(by_owner[stranger.address.lower()].job_id)
        assert final(await collect(theirs, "nightly"))["status"] == "STOPPED"
        assert (await mine.request("request_job_status", job_id="nightly"))["status_data"]["status"] == "RUNNING"
        assert runs.stop(by_owner[owner.address.lower()].job_id)
        assert final(await collect(mine, "nightly"))["status"] == "STOPPED"
