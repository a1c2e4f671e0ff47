"""The global error workflow: a failed run of the owner starts the preset named in their
settings with what failed; never for a run of the error workflow itself."""

from __future__ import annotations

import asyncio

from tests.runtime_support import collect, edge, node, start, workflow
from tests.triggers_support import next_run_end, save

HANDLER = workflow([node("m", "manual_trigger"), node("s", "set_data", data={"handled": True})],
                   [edge("m", "s")])
FAILING = workflow([node("m", "manual_trigger"), node("x", "stop_and_error", "Breaker",
                                                      message="broken on purpose")], [edge("m", "x")])


async def enable(client, preset: str = "On error") -> None:
    await client.request("save_settings", settings={"global_error_handler_enabled": True,
                                                    "global_error_workflow_preset": preset})


async def test_a_failed_run_starts_the_error_workflow_with_what_failed(engine, client) -> None:
    await save(client, "On error", HANDLER)
    await enable(client)
    job_id = await start(client, FAILING, preset_name="Fragile")
    events = await collect(client, job_id)
    assert events[-1]["status_data"]["status"] == "FAILED"
    end = await next_run_end(client, kind="error_workflow")
    data = end["status_data"]
    assert data["status"] == "SUCCEEDED" and data["preset_name"] == "On error"
    assert data["started_by"] == {"kind": "error_workflow", "failed_job_id": job_id}
    failure = data["result"]["data"]
    assert failure["handled"] is True and failure["failed_job_id"] == job_id
    assert failure["preset_name"] == "Fragile" and failure["node_id"] == "x"
    assert failure["node_name"] == "Breaker" and "broken on purpose" in failure["error"]
    assert failure["started_by"] == {"kind": "gui"}


async def test_the_error_workflow_failing_starts_nothing_more(engine, client) -> None:
    await save(client, "On error", FAILING)
    await enable(client)
    job_id = await start(client, FAILING, preset_name="Fragile")
    await collect(client, job_id)
    end = await next_run_end(client, kind="error_workflow")
    assert end["status_data"]["status"] == "FAILED"
    await asyncio.sleep(1.0)
    assert not [e for e in client.pending_events() if e.get("type") == "workflow_status_update"
                and (e["status_data"].get("started_by") or {}).get("kind") == "error_workflow"]


async def test_nothing_starts_when_disabled_or_on_success(engine, client) -> None:
    await save(client, "On error", HANDLER)
    await client.request("save_settings", settings={"global_error_handler_enabled": False,
                                                    "global_error_workflow_preset": "On error"})
    await collect(client, await start(client, FAILING))
    await enable(client)
    await collect(client, await start(client, HANDLER))
    await asyncio.sleep(1.0)
    assert not [e for e in client.pending_events() if e.get("type") == "workflow_status_update"]


async def test_a_failed_triggered_run_starts_it_too(engine, client) -> None:
    await save(client, "On error", HANDLER)
    await enable(client)
    failing = workflow([node("t", "schedule_trigger", interval_value="1", interval_unit="seconds"),
                        node("x", "stop_and_error", message="nope")], [edge("t", "x")])
    await save(client, "Scheduled failure", failing)
    end = await next_run_end(client, kind="error_workflow", timeout=10)
    failure = end["status_data"]["result"]["data"]
    assert failure["preset_name"] == "Scheduled failure"
    assert failure["started_by"]["kind"] == "schedule"
