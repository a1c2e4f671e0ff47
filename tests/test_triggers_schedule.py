"""Schedule triggers end to end: a preset saved with a schedule starts runs on real timers, as
its owner, from the trigger node, with the fire as data; policies, restarts and bad rules."""

from __future__ import annotations

import asyncio
import time

import pytest

from engine.client import EngineReplyError
from tests.runtime_support import edge, node, workflow
from tests.triggers_support import next_run_end, save, triggered, triggers, wait_for


def every_second(**extra: object) -> dict:
    return triggered("t", "schedule_trigger", schedule_type="interval", interval_value="1",
                     interval_unit="seconds", **extra)


async def test_a_saved_schedule_starts_runs_that_reach_the_owner(engine, client) -> None:
    reply = await save(client, "Every second", every_second())
    assert reply["version"] == 1
    [rule] = await triggers(client)
    assert rule["preset_name"] == "Every second" and rule["node_id"] == "t"
    assert rule["module_id"] == "schedule_trigger" and rule["enabled"] is True
    assert rule["summary"] == "every 1 second" and rule["next_run"]
    end = await next_run_end(client, kind="schedule", timeout=10)
    data = end["status_data"]
    assert data["status"] == "SUCCEEDED"
    assert data["started_by"] == {"kind": "schedule", "rule_id": rule["rule_id"]}
    assert data["preset_name"] == "Every second"
    result = data["result"]["data"]
    assert result["marked"] is True and result["trigger"] == "schedule"
    assert result["rule_id"] == rule["rule_id"]
    assert 0 <= data["start_time"] - result["scheduled_for"] < 5
    # the job record says which rule started it
    status = await client.request("request_job_status", job_id=end["job_id"])
    assert status["status_data"]["started_by"]["rule_id"] == rule["rule_id"]
    # the list is pushed with the last run once it ended
    pushed = await client.next_event("triggers_list_response", timeout=5,
                                     where=lambda f: f["triggers"][0]["last_run"] is not None)
    assert pushed["triggers"][0]["last_run"]["job_id"]


async def test_a_triggered_run_uses_the_latest_saved_version(engine, client) -> None:
    await save(client, "Versions", every_second())
    changed = every_second()
    changed["nodes"][1]["config_values"]["data"] = {"version": 2}
    await save(client, "Versions", changed)
    assert len(await triggers(client)) == 1  # updated, not a second rule
    for _ in range(3):
        end = await next_run_end(client, kind="schedule")
        if end["status_data"]["result"]["data"].get("version") == 2:
            break
    else:
        pytest.fail("runs kept using the first version")


async def test_saving_without_triggers_or_deleting_removes_the_rules(engine, client) -> None:
    await save(client, "Gone", every_second())
    assert len(await triggers(client)) == 1
    await save(client, "Gone", workflow([node("m", "manual_trigger")], []))
    assert await triggers(client) == []
    await save(client, "Gone", every_second())
    assert len(await triggers(client)) == 1
    await client.request("delete_preset", name="Gone")
    assert await triggers(client) == []
    assert engine.automations.rules == {}


async def test_disabling_stops_runs_and_enabling_starts_them_again(engine, client) -> None:
    await save(client, "Toggle", every_second())
    [rule] = await triggers(client)
    reply = await client.request("set_trigger_enabled", rule_id=rule["rule_id"], enabled=False)
    assert reply["enabled"] is False
    [listed] = await triggers(client)
    assert listed["enabled"] is False and listed["next_run"] is None
    client.pending_events()
    await asyncio.sleep(2.5)
    assert not [e for e in client.pending_events() if e.get("type") == "workflow_status_update"]
    await client.request("set_trigger_enabled", rule_id=rule["rule_id"], enabled=True)
    await next_run_end(client, kind="schedule", timeout=10)
    with pytest.raises(EngineReplyError) as refused:
        await client.request("set_trigger_enabled", rule_id="r-nope", enabled=True)
    assert refused.value.frame["code"] == "not_found"


async def test_another_owner_neither_sees_nor_toggles_the_rules(engine, client, make_client, stranger) -> None:
    engine.set_owners([client.address, stranger.address])
    other = await make_client(stranger)
    await save(client, "Mine", every_second())
    [rule] = await triggers(client)
    assert await triggers(other) == []
    with pytest.raises(EngineReplyError):
        await other.request("set_trigger_enabled", rule_id=rule["rule_id"], enabled=False)
    assert (await triggers(client))[0]["enabled"] is True


@pytest.mark.parametrize("config, field", [
    ({"schedule_type": "cron", "cron": "61 * * * *"}, "cron"),
    ({"schedule_type": "cron", "cron": "* * *"}, "cron"),
    ({"schedule_type": "cron", "cron": "0 8 * * *", "timezone": "Mars/Olympus"}, "timezone"),
    ({"interval_value": "0", "interval_unit": "seconds"}, "interval_value"),
    ({"interval_value": "soon"}, "interval_value"),
    ({"overlap": "sometimes"}, "overlap"),
    ({"start_at": "2026-12-24T10:00", "end_at": "2026-12-24T09:00"}, "end_at"),
])
async def test_a_bad_schedule_is_refused_and_changes_nothing(engine, client, config, field) -> None:
    await save(client, "Good", every_second())
    before = await triggers(client)
    with pytest.raises(EngineReplyError) as refused:
        await save(client, "Good", triggered("t", "schedule_trigger", **config))
    frame = refused.value.frame
    assert frame["code"] == "invalid_field" and frame["field"] == field
    assert "Trigger" in frame["error"] and "Nothing was saved" in frame["error"]
    loaded = await client.request("load_preset", name="Good")
    assert loaded["version"] == 1
    assert [r["rule_id"] for r in await triggers(client)] == [r["rule_id"] for r in before]


async def test_a_cron_schedule_with_seconds_fires(engine, client) -> None:
    await save(client, "Cron", triggered("t", "schedule_trigger", schedule_type="cron",
                                         cron="*/1 * * * * *", timezone="America/New_York"))
    [rule] = await triggers(client)
    assert rule["summary"] == "cron */1 * * * * * (America/New_York)"
    end = await next_run_end(client, kind="schedule", timeout=10)
    assert end["status_data"]["status"] == "SUCCEEDED"


async def test_skip_overlap_starts_no_second_run_while_one_is_going(engine, client) -> None:
    slow = workflow([node("t", "schedule_trigger", schedule_type="interval", interval_value="1",
                          interval_unit="seconds"), node("d", "delay", seconds=2.6)], [edge("t", "d")])
    await save(client, "Slow", slow)
    first = await next_run_end(client, kind="schedule", timeout=15)
    second = await next_run_end(client, kind="schedule", timeout=15)
    # runs never overlap: the next one started after the previous ended
    assert second["status_data"]["start_time"] >= first["status_data"]["end_time"] - 0.05


async def test_queue_overlap_keeps_one_fire_and_runs_it_after(engine, client) -> None:
    slow = workflow([node("t", "schedule_trigger", schedule_type="interval", interval_value="1",
                          interval_unit="seconds", overlap="queue"),
                     node("d", "delay", seconds=2.5)], [edge("t", "d")])
    await save(client, "Queued", slow)
    first = await next_run_end(client, kind="schedule", timeout=15)
    second = await next_run_end(client, kind="schedule", timeout=15)
    # the queued run starts right when the first ends, not at the next whole second
    assert 0 <= second["status_data"]["start_time"] - first["status_data"]["end_time"] < 0.5
    assert second["status_data"]["result"]["data"]["scheduled_for"] < first["status_data"]["end_time"]


async def test_parallel_overlap_runs_side_by_side_up_to_its_bound(engine, client) -> None:
    slow = workflow([node("t", "schedule_trigger", schedule_type="interval", interval_value="1",
                          interval_unit="seconds", overlap="parallel", max_parallel="2"),
                     node("d", "delay", seconds=3.5)], [edge("t", "d")])
    await save(client, "Parallel", slow)
    [rule] = await triggers(client)
    gate = engine.automations.rules[rule["rule_id"]].gate
    seen = await wait_for(lambda: gate.running == 2, timeout=10)
    assert seen
    await asyncio.sleep(1.2)
    assert gate.running == 2  # never a third


async def test_rules_survive_a_restart_and_misfires_follow_their_policy(make_engine, owner, data_dir) -> None:
    from engine.client import EngineClient
    engine = await make_engine()
    client = await EngineClient.connect(engine.url, owner.key)
    hourly = {"schedule_type": "interval", "interval_value": "1", "interval_unit": "hours"}
    await save(client, "Caught up", triggered("t", "schedule_trigger", misfire="run_once", **hourly))
    await save(client, "Skipped", triggered("t", "schedule_trigger", **hourly))
    await save(client, "Off", triggered("t", "schedule_trigger", **hourly))
    rules = {r["preset_name"]: r for r in await triggers(client)}
    await client.request("set_trigger_enabled", rule_id=rules["Off"]["rule_id"], enabled=False)
    await client.close()
    await engine.stop()
    # Two hours pass while the engine is down: the stored anchor moves back instead of waiting.
    import sqlite3
    conn = sqlite3.connect(data_dir / "engine.sqlite3")
    conn.execute("UPDATE trigger_rules SET created_at = created_at - 7300, updated_at = updated_at - 7300")
    conn.commit()
    conn.close()
    again = await make_engine()
    client = await EngineClient.connect(again.url, owner.key)
    try:
        after = {r["preset_name"]: r for r in await triggers(client)}
        assert {k: v["rule_id"] for k, v in after.items()} == {k: v["rule_id"] for k, v in rules.items()}
        assert after["Off"]["enabled"] is False and after["Caught up"]["enabled"] is True
        # The catch-up run starts with the engine, maybe before this client signed in: read
        # it from the list and the job record rather than waiting for its events.
        async def caught_up() -> dict | None:
            listed = {r["preset_name"]: r for r in await triggers(client)}
            last = listed["Caught up"]["last_run"]
            return last if last and last["status"] == "SUCCEEDED" else None
        last = await wait_for(caught_up, timeout=15, step=0.2)
        status = (await client.request("request_job_status", job_id=last["job_id"]))["status_data"]
        assert status["result"]["data"]["misfire"] is True
        await asyncio.sleep(1.0)
        listed = {r["preset_name"]: r for r in await triggers(client)}
        assert listed["Skipped"]["last_run"] is None and listed["Off"]["last_run"] is None
    finally:
        await client.close()


async def test_a_rule_whose_module_disappeared_is_disabled_with_a_reason(make_engine, owner, data_dir) -> None:
    from engine.client import EngineClient
    import shutil
    from engine.components.catalog import BUILTIN_DIR
    user = data_dir / "components" / "triggers" / "my_timer"
    shutil.copytree(BUILTIN_DIR / "triggers" / "schedule_trigger", user)
    manifest = (user / "manifest.json").read_text().replace('"schedule_trigger"', '"my_timer"')
    (user / "manifest.json").write_text(manifest)
    engine = await make_engine()
    client = await EngineClient.connect(engine.url, owner.key)
    await save(client, "Mine", triggered("t", "my_timer", interval_value="1", interval_unit="hours"))
    await client.close()
    await engine.stop()
    shutil.rmtree(user)
    again = await make_engine()
    client = await EngineClient.connect(again.url, owner.key)
    try:
        [rule] = await triggers(client)
        assert rule["enabled"] is False
        assert "my_timer" in rule["disabled_reason"] and "no longer installed" in rule["disabled_reason"]
    finally:
        await client.close()


async def test_pause_all_stops_every_fire_and_is_kept_across_restarts(make_engine, owner) -> None:
    from engine.client import EngineClient
    engine = await make_engine()
    client = await EngineClient.connect(engine.url, owner.key)
    await save(client, "Paused", every_second())
    await engine.automations.set_paused(True)
    await client.close()
    await engine.stop()
    again = await make_engine()
    client = await EngineClient.connect(again.url, owner.key)
    try:
        assert again.automations.paused is True
        [rule] = await triggers(client)
        assert rule["next_run"] is None
        await asyncio.sleep(2.2)
        assert not [e for e in client.pending_events() if e.get("type") == "workflow_status_update"]
        await again.automations.set_paused(False)
        await next_run_end(client, kind="schedule", timeout=10)
    finally:
        await client.close()


async def test_the_schedule_arithmetic_follows_cron_across_dst() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo
    from engine.triggers.schedule import parse_schedule
    berlin = ZoneInfo("Europe/Berlin")
    daily = parse_schedule({"schedule_type": "cron", "cron": "30 2 * * *", "timezone": "Europe/Berlin"}, 0)
    # autumn: 02:30 happens twice on 25 Oct 2026 and fires once
    t = datetime(2026, 10, 24, 12, tzinfo=berlin).timestamp()
    fires = []
    for _ in range(3):
        t = daily.next_after(t)
        fires.append(datetime.fromtimestamp(t, berlin).strftime("%m-%d %H:%M"))
    assert fires == ["10-25 02:30", "10-26 02:30", "10-27 02:30"]
    # spring: 02:30 does not exist on 29 Mar 2026 and fires right after the change (03:00)
    t = daily.next_after(datetime(2026, 3, 28, 12, tzinfo=berlin).timestamp())
    assert datetime.fromtimestamp(t, berlin).strftime("%m-%d %H:%M") == "03-29 03:00"
    interval = parse_schedule({"interval_value": "10", "interval_unit": "seconds"}, 1000.0)
    assert [interval.next_after(x) for x in (999.0, 1000.0, 1009.99, 1010.0)] == [1000.0, 1010.0, 1010.0, 1020.0]
    bounded = parse_schedule({"interval_value": "1", "interval_unit": "hours",
                              "start_at": "2030-01-01T00:00", "end_at": "2030-01-01T02:30",
                              "timezone": "UTC"}, 0)
    start = datetime(2030, 1, 1, tzinfo=ZoneInfo("UTC")).timestamp()
    assert bounded.next_after(time.time()) == start
    assert bounded.next_after(start + 2 * 3600) is None


async def test_a_preset_the_runtime_refuses_disables_its_rule(engine, client) -> None:
    broken = every_second()
    broken["nodes"].append(node("z", "not_installed_anywhere"))
    await save(client, "Broken", broken)
    pushed = await client.next_event("triggers_list_response", timeout=10,
                                     where=lambda f: f["triggers"] and f["triggers"][0].get("disabled_reason"))
    reason = pushed["triggers"][0]["disabled_reason"]
    assert "cannot run" in reason and "not_installed_anywhere" in reason
    assert pushed["triggers"][0]["enabled"] is False


async def test_trigger_nodes_run_by_hand_pass_the_payload_on(engine, client) -> None:
    from tests.runtime_support import final, run
    for module in ("schedule_trigger", "webhook_trigger", "file_watch_trigger"):
        job_id, events = await run(client, triggered("t", module), initial_payload={"x": 1})
        assert final(events)["status"] == "SUCCEEDED"
        assert final(events)["result"]["data"] == {"x": 1, "marked": True}
        assert any(e["type"] == "log" and "Run by hand" in e["message"] for e in events)
    assert await triggers(client) == []  # running is not saving: no rule


async def test_the_terminal_client_signs_a_preset_and_follows_its_runs(engine, owner) -> None:
    """`python -m engine.client save_preset` as a person types it: the preset's signature is
    made for them; --follow shows the runs the schedule starts."""
    import json
    import os
    import subprocess
    import sys
    from tests.conftest import REPO_ROOT
    from tests.output_process import OutputProcess
    fields = json.dumps({"name": "From a terminal", "workflow_data": every_second()})
    env = {**os.environ, "FLOWORK_PRIVATE_KEY": owner.key}
    process = OutputProcess([sys.executable, "-m", "engine.client", "--url", engine.url, "--follow",
                             "save_preset", fields], env, REPO_ROOT)
    try:  # the engine runs on this loop: wait in threads
        await asyncio.to_thread(process.wait_for, r'"status": "Preset \'From a terminal\' saved\."', 60)
        await asyncio.to_thread(process.wait_for, r'"started_by": \{"kind": "schedule"', 60)
    finally:
        await asyncio.to_thread(process.stop, 10)
    listed = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "engine.client", "--url", engine.url, "request_triggers"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert json.loads(listed.stdout)["triggers"][0]["preset_name"] == "From a terminal"
