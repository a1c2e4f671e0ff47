"""Failed runs leave a trace: a notice naming the workflow and the node (rate-limited), a red
cross on the icon until the menu is opened, a Recent runs menu with each run's status and
details; and Stop engine / Restart / Quit ask before ending running workflows."""

from __future__ import annotations

import asyncio
import time

from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtGui import QAction

from desktop.app import RUNS_REFRESH_MS
from desktop.icons import TrayState
from desktop.runs import KEEP, FailureNotices, RecentRuns, Run
from desktop.supervisor import State
from engine.client import EngineClient
from tests.desktop.conftest import wait_until
from tests.desktop.test_desktop_approvals import Recorder
from tests.runtime_support import collect, edge, final, node, start, workflow


def failing_flow() -> dict:
    return workflow([node("t", "manual_trigger"),
                     node("boom", "stop_and_error", "Check stock", message="The stock file is empty.")],
                    [edge("t", "boom")])


def slow_flow() -> dict:
    return workflow([node("t", "manual_trigger"), node("wait", "delay", seconds=30)], [edge("t", "wait")])


async def test_a_failed_run_is_notified_with_workflow_and_node(make_app, owner, desktop_config):
    desktop_config.update(owners=(owner.address,))
    recorder = Recorder()
    app = await make_app(notifier=recorder)
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, failing_flow(), preset_name="Nightly import")
        assert final(await collect(client, job_id))["status"] == "FAILED"
        await wait_until(lambda: any(n["title"].startswith("Workflow failed") for n in recorder.sent))
        (notice,) = [n for n in recorder.sent if n["title"].startswith("Workflow failed")]
        assert notice["title"] == "Workflow failed: Nightly import"
        assert "Check stock" in notice["message"] and "The stock file is empty." in notice["message"]
        assert set(notice["buttons"]) == {"Details…", "Open web GUI"}
        await wait_until(lambda: app.view.state is TrayState.RUN_FAILED, what="the red cross")
        assert app.tray.state is TrayState.RUN_FAILED
        assert app.menu.header.text() == "Flowork: “Nightly import” failed"

        # the same workflow failing again at once: no second notice, but it is in Recent runs
        again = await start(client, failing_flow(), preset_name="Nightly import")
        await collect(client, again)
        await wait_until(lambda: len(app.runs.runs) == 2, what="both runs listed")
        assert len([n for n in recorder.sent if n["title"].startswith("Workflow failed")]) == 1

        ok = await start(client, workflow([node("t", "manual_trigger")], []), preset_name="Hello")
        await collect(client, ok)
        await wait_until(lambda: len(app.menu.run_items) == 3, what="three runs in the menu")
    labels = [a.text() for a in app.menu.run_items]
    assert labels[0].startswith("✓ Hello — succeeded at ")
    assert labels[1].startswith("✗ Nightly import — failed at ") and labels[2].startswith("✗ Nightly import")
    assert app.view.state is TrayState.RUN_FAILED  # another workflow's success does not clear it
    app.menu.aboutToShow.emit()  # the person looks at the menu: the failure has been seen
    assert app.view.state is TrayState.IDLE

    app.menu.run_items[1].trigger()  # the Flowork window, on that run's detail
    await wait_until(lambda: shown_run(app) == again, what="the run in the window")
    detail = app.window.window.runs.detail
    assert app.window.window.isVisible()
    assert "Check stock" in detail.error.text() and "The stock file is empty." in detail.error.text()
    assert again in detail.facts.text()
    notice["on_clicked"]()  # the first notice's click shows its own run
    await wait_until(lambda: shown_run(app) == job_id, what="the first run in the window")


def shown_run(app) -> str | None:
    """The job id of the run the Flowork window's detail shows, if the window is open."""
    window = app.window.window
    run = window.runs.detail.run if window is not None and window.isVisible() else None
    return run.job_id if run is not None else None


async def test_stop_and_quit_ask_while_a_workflow_runs(make_app, owner, desktop_config):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        await start(client, slow_flow(), preset_name="Long job")
        await wait_until(lambda: app.running_jobs() == 1, what="the job to run")
        app.menu.stop.trigger()
        dialog = app.confirm_dialog
        assert dialog.isVisible()
        assert dialog.text() == "1 workflow is running. It will continue when the engine is started again."
        assert dialog.defaultButton() is dialog.cancel_button  # Enter changes nothing
        assert dialog.keep_button.text() == "S&top engine"
        assert dialog.stop_button.text() == "Stop engine and &workflows"
        dialog.cancel_button.click()
        assert app.supervisor.state is State.RUNNING and app.running_jobs() == 1

        app.menu.quit.trigger()
        quit_dialog = app.confirm_dialog
        assert quit_dialog.isVisible() and "continue when Flowork starts again" in quit_dialog.text()
        quit_dialog.cancel_button.click()
        assert not app.finished.is_set()

        app.menu.stop.trigger()
        app.confirm_dialog.keep_button.click()
        await wait_until(lambda: app.supervisor.state is State.STOPPED, what="stop after confirming")


async def test_the_menu_reuses_its_entries_however_many_runs_go_by(make_app, owner, desktop_config):
    """The tray updates its menu on every run: entries removed from a menu but not deleted
    stayed alive as its children (a leak of 16 actions a run, and a minute-long exit)."""
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    flow = workflow([node("t", "manual_trigger"), node("s", "set_data", data={"n": 1})], [edge("t", "s")])
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        for i in range(KEEP + 15):
            await collect(client, await start(client, flow, preset_name=f"Run {i}"))
        await wait_until(lambda: app.menu.run_items and app.menu.run_items[0].text().startswith(f"✓ Run {KEEP + 14}"),
                         what="the newest run first in the menu")
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert len(app.menu.run_items) == KEEP
    assert len(app.menu.runs_menu.findChildren(QAction)) <= KEEP + 2  # its runs, "No runs yet", its own
    assert len(app.menu.findChildren(QAction)) < 60


async def test_the_tray_follows_many_runs_a_few_times_a_second(make_app, owner, desktop_config):
    """Redrawing the icon, menu and status window for every run that starts and ends cost a
    busy engine more than its runs: runs' changes are shown at most every RUNS_REFRESH_MS
    (and on the engine status resamples), and the last of them is shown."""
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    refreshes = []
    real_refresh = app.refresh

    def counted() -> None:  # counts, then the real refresh
        refreshes.append(time.monotonic())
        real_refresh()
    app.refresh = counted
    app._runs_refresh.timeout.disconnect()  # it holds the real refresh: the counting one instead
    app._runs_refresh.timeout.connect(app.refresh)
    flow = workflow([node("t", "manual_trigger"), node("s", "set_data", data={"n": 1})], [edge("t", "s")])
    started = time.monotonic()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        async def one(i: int) -> None:
            await collect(client, await start(client, flow, preset_name=f"Burst {i}"), timeout=60)
        for batch in range(5):
            await asyncio.gather(*(one(batch * 20 + i) for i in range(20)))
    await wait_until(lambda: app.menu.run_items and app.menu.run_items[0].text().startswith("✓ Burst"),
                     what="the last runs shown")
    await wait_until(lambda: not app._runs_refresh.isActive(), what="the pending refresh")
    elapsed = time.monotonic() - started
    allowed = elapsed / (RUNS_REFRESH_MS / 1000) + elapsed / 0.3 + elapsed / 2.0 + 10
    assert len(refreshes) <= allowed, (len(refreshes), elapsed)
    assert len(refreshes) < 200  # 100 runs: a refresh per start and per end would be 200
    assert app.view is not None and app.view.recent_runs[0][1].startswith("✓ Burst")


async def test_nothing_running_means_no_question(make_app):
    app = await make_app()
    app.menu.quit.trigger()
    await wait_until(app.finished.is_set, what="quit")
    assert app.confirm_dialog is None


def test_a_scheduled_run_says_what_started_it(qapp):
    runs = RecentRuns(clock=lambda: 1000.0)
    data = {"status": "RUNNING", "preset_name": "Backup", "start_time": 990.0,
            "started_by": {"kind": "schedule", "rule_id": "r1"}}
    runs.on_frame({"type": "workflow_status_update", "job_id": "j1", "status_data": data})
    runs.on_frame({"type": "NODE_EXECUTION_METRIC", "job_id": "j1", "node_id": "n", "node_name": "Copy",
                   "status": "ERROR", "error_message": "disk full"})
    runs.on_frame({"type": "workflow_status_update", "job_id": "j1",
                   "status_data": {**data, "status": "FAILED", "end_time": 999.0, "error": "Copy failed"}})
    (run,) = runs.runs
    assert run.label().endswith("(a schedule)") and run.label().startswith("✗ Backup — failed at")
    assert run.failure() == "Node “Copy”: disk full" and run.failed_node == "Copy"


def test_failure_notices_are_rate_limited_and_count_what_they_held_back():
    now = [0.0]
    notices = FailureNotices(clock=lambda: now[0])
    a, b = (Run(job_id=x, workflow=x, status="FAILED", started_at=0) for x in "ab")
    assert notices.admit(a) == 0
    assert notices.admit(b) is None       # within 10 s of any notice
    now[0] = 15
    assert notices.admit(a) is None       # within a minute of a's notice
    assert notices.admit(b) == 2          # b's turn; two were held back meanwhile
    now[0] = 80
    assert notices.admit(a) == 0
