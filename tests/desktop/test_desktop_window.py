"""The Flowork window, offscreen, with the real app, a real engine in process and signed clients
on real sockets: runs appear while they run and end with their status, the timeline has one bar
per node run, a failed run opens on its failing node, paging over 100,000 stored runs, Stop and
Approve from the window reach the engine, Enter approves nothing, charts from the engine's status.
"""

from __future__ import annotations

import asyncio

import json
import logging
import sqlite3
import time

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent, QTextCursor
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from desktop.window.feed import MAX_IDS, EngineFeed
from desktop.window.runs_model import MAX_FOLLOWING_ROWS, PAGE, STATUS
from engine.client import EngineClient
from engine.events import Delivery, Event
from tests.desktop.conftest import wait_until
from tests.desktop.test_desktop_approvals import approval_flow
from tests.runtime_support import collect, edge, final, node, start, workflow
from tests.test_engine_presets import save


def slow_flow(seconds: float = 60) -> dict:
    return workflow([node("t", "manual_trigger", "Start"), node("wait", "delay", "Wait", seconds=seconds),
                     node("after", "set_data", "After", data={"x": 1})],
                    [edge("t", "wait", edge_id="c1"), edge("wait", "after", edge_id="c2")])


def failing_flow() -> dict:
    return workflow([node("t", "manual_trigger", "Start"),
                     node("prep", "set_data", "Prepare", data={"path": "/tmp/report.csv"}),
                     node("boom", "stop_and_error", "Upload", message="the server said 503")],
                    [edge("t", "prep", edge_id="c1"), edge("prep", "boom", edge_id="c2")])


def looped_flow(names: tuple[str, str, str, str] = ("Start", "Set", "Flaky", "Rescue"), retries: int = 2) -> dict:
    """Four nodes run three times (the loop); the third fails every attempt, is retried, and
    leaves through its error port."""
    looped = workflow([node("t", "manual_trigger", names[0]), node("s", "set_data", names[1], data={"n": 1}),
                       node("flaky", "stop_and_error", names[2], message="nope", retry_max=retries),
                       node("rescue", "set_data", names[3], data={"rescued": True})],
                      [edge("t", "s", edge_id="c1"), edge("s", "flaky", edge_id="c2"),
                       edge("flaky", "rescue", "error", edge_id="c3")])
    looped["global_loop_config"].update(isEnabled=True, iterations=3)
    return looped


async def window_app(make_app, owner, desktop_config):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    app.open_window()
    return app, app.window.window


def shown(window) -> list:
    return window.runs.model.runs


async def test_a_run_appears_while_it_runs_and_stop_from_the_window_ends_it(make_app, owner, desktop_config):
    app, window = await window_app(make_app, owner, desktop_config)
    assert window.isVisible() and window.tabs.currentWidget() is window.runs
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, slow_flow(), preset_name="Slow report")
        await wait_until(lambda: shown(window) and shown(window)[0].job_id == job_id, what="the running run")
        model = window.runs.model
        assert model.data(model.index(0, 0)) == "Slow report"
        assert model.data(model.index(0, 1)) == "GUI"
        assert model.data(model.index(0, STATUS)) == "Running"
        await wait_until(lambda: "of 3 nodes" in model.data(model.index(0, 5)), what="progress")
        window.runs.table.selectRow(0)
        assert window.runs.stop_button.isEnabled() and window.runs.pause_button.isEnabled()
        window.runs.pause_button.click()
        await wait_until(lambda: model.data(model.index(0, STATUS)) == "Paused", what="paused")
        assert window.runs.resume_button.isEnabled()
        window.runs.stop_button.click()
        events = await collect(client, job_id)
        assert final(events)["status"] == "STOPPED"  # the engine heard the window
        assert [e["status_data"]["status"] for e in events if e["type"] == "workflow_status_update"][-3:] \
            == ["PAUSED", "RUNNING", "STOPPED"] or "PAUSED" in json.dumps(events)
        await wait_until(lambda: model.data(model.index(0, STATUS)) == "Stopped", what="stopped in the table")
        assert not window.runs.stop_button.isEnabled()
        second = await start(client, workflow([node("t", "manual_trigger"), node("s", "set_data", data={"a": 1})],
                                              [edge("t", "s")]), preset_name="Quick one")
        assert final(await collect(client, second))["status"] == "SUCCEEDED"
        await wait_until(lambda: shown(window)[0].job_id == second and shown(window)[0].status == "SUCCEEDED",
                         what="the second run, ended")
        assert [r.job_id for r in shown(window)] == [second, job_id]


async def test_the_timeline_has_one_bar_per_node_run_retries_visible(make_app, owner, desktop_config):
    app, window = await window_app(make_app, owner, desktop_config)
    looped = looped_flow()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        await save(client, "Looped", looped)  # a saved workflow: names and connection ends known
        job_id = await start(client, looped, preset_name="Looped")
        assert final(await collect(client, job_id))["status"] == "SUCCEEDED"
    await wait_until(lambda: shown(window) and shown(window)[0].status == "SUCCEEDED", what="the run")
    window.runs.table.selectRow(0)
    detail = window.runs.detail
    await wait_until(lambda: detail.run is not None and detail.run.job_id == job_id and detail.bars, what="detail")
    stored = await app.engine.runs.node_runs(job_id)
    assert len(stored) == 12  # 4 nodes, 3 iterations
    assert len(detail.timeline.bars) == len(stored) == len({b.run_seq for b in detail.timeline.bars})
    assert [lane for lane, _ in detail.timeline.lanes] == ["t", "s", "flaky", "rescue"]
    flaky = [b for b in detail.timeline.bars if b.node_id == "flaky"]
    assert len(flaky) == 3 and all(b.status == "ERROR" and len(b.retries) == 2 for b in flaky)
    # A click on a bar shows that node run's data.
    bar = detail.timeline.bars[1]
    rect = detail.timeline.bar_rect(bar)
    from PySide6.QtTest import QTest
    QTest.mouseClick(detail.timeline, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    assert detail.timeline.selected == bar.run_seq
    await wait_until(lambda: "Set (node s)" in detail.data.toPlainText(), what="node data")
    assert '"n": 1' in detail.data.toPlainText()  # what it sent on, pretty-printed


async def test_a_failed_run_opens_on_its_failing_node_with_the_error(make_app, owner, desktop_config):
    app, window = await window_app(make_app, owner, desktop_config)
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, failing_flow(), preset_name="Nightly upload")
        assert final(await collect(client, job_id))["status"] == "FAILED"
    await wait_until(lambda: shown(window) and shown(window)[0].status == "FAILED", what="the failed run")
    model = window.runs.model
    assert model.data(model.index(0, STATUS), Qt.ItemDataRole.ForegroundRole).name() == "#c53030"
    window.runs.table.selectRow(0)
    detail = window.runs.detail
    await wait_until(lambda: detail.run is not None and "Upload (node boom)" in detail.data.toPlainText(),
                     what="the failing node's data")
    assert detail.error.isVisible() or not window.isVisible()
    assert "the server said 503" in detail.error.text()
    failing = next(b for b in detail.timeline.bars if b.node_id == "boom")
    assert detail.timeline.selected == failing.run_seq
    text = detail.data.toPlainText()
    assert "Error: the server said 503" in text or "the server said 503" in text
    assert "/tmp/report.csv" in text  # the payload it received
    assert "the server said 503" in detail.log.toPlainText()
    assert "hello" not in detail.log.toPlainText()


async def test_secrets_stay_masked_in_the_window(make_app, owner, desktop_config):
    app, window = await window_app(make_app, owner, desktop_config)
    secret = "hunter2-very-secret"
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        await client.request("update_variable", name="TOKEN",
                             data={"value": secret, "is_secret": True, "is_enabled": True, "mode": "single"})
        wf = workflow([node("t", "manual_trigger"), node("s", "set_data", "Use token", data={"token": "{{vars.TOKEN}}"}),
                       node("l", "log_message", "Say", message="token is {{vars.TOKEN}}")],
                      [edge("t", "s", edge_id="c1"), edge("s", "l", edge_id="c2")])
        job_id = await start(client, wf, preset_name="Secret flow")
        await collect(client, job_id)
    await wait_until(lambda: shown(window) and not shown(window)[0].active, what="the run")
    window.runs.table.selectRow(0)
    detail = window.runs.detail
    await wait_until(lambda: detail.connection_list.count() == 2, what="connections")
    detail.connection_list.itemClicked.emit(detail.connection_list.item(1))
    await wait_until(lambda: '"token"' in detail.data.toPlainText(), what="the payload")
    shown_text = detail.data.toPlainText() + detail.log.toPlainText()
    assert secret not in shown_text and "********" in shown_text


async def test_paging_over_100000_stored_runs(make_app, owner, desktop_config):
    app, window = await window_app(make_app, owner, desktop_config)
    now = time.time()
    statuses = ("SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "FAILED")

    def fill(conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO jobs (job_id, address, preset_name, mode, status, start_time, end_time, error) "
            "VALUES (?, ?, ?, 'EXECUTE', ?, ?, ?, ?)",
            [(f"stored-{i:06d}", owner.address.lower(), f"Import {i % 10}", statuses[i % 4],
              now - 100_000 + i, now - 100_000 + i + 1.5, "timeout" if i % 4 == 3 else None)
             for i in range(100_000)])
    await app.engine.db.transaction(fill)
    model = window.runs.model
    model.reload()
    await wait_until(lambda: model.rowCount() == PAGE, what="the first page")
    assert model.run_at(0).job_id == "stored-099999" and model.canFetchMore()
    table = window.runs.table
    for pages in range(2, 5):  # scrolled to the end, the view fetches the next page
        table.scrollToBottom()
        await wait_until(lambda p=pages: model.rowCount() == p * PAGE, what=f"page {pages}")
    ids = [r.job_id for r in model.runs]
    assert ids == [f"stored-{i:06d}" for i in range(99_999, 99_999 - 4 * PAGE, -1)]
    assert len(app.engine.runs._preset_graphs) <= 10  # node counts of the 10 presets, looked up once
    window.runs.status_filter.setCurrentIndex(2)  # Failed
    await wait_until(lambda: model.rowCount() == PAGE and all(r.status == "FAILED" for r in model.runs),
                     what="failed runs only")
    assert model.run_at(0).job_id == "stored-099999"
    window.runs.search.setText("import 7")
    await wait_until(lambda: model.rowCount() == PAGE and all(r.workflow == "Import 7" for r in model.runs),
                     what="text filter")
    assert model.run_at(0).job_id == "stored-099987" and model.run_at(1).job_id == "stored-099967"
    assert "100+ runs shown" in window.runs.count.text()


async def test_following_the_newest_runs_keeps_the_table_bounded(make_app, owner, desktop_config):
    app, window = await window_app(make_app, owner, desktop_config)
    model = window.runs.model
    now = time.time()

    def fill(conn: sqlite3.Connection, first: int, count: int) -> None:
        conn.executemany(
            "INSERT INTO jobs (job_id, address, preset_name, mode, status, start_time, end_time) "
            "VALUES (?, ?, 'Burst', 'EXECUTE', 'SUCCEEDED', ?, ?)",
            [(f"burst-{i:06d}", owner.address.lower(), now + i / 1000, now + i / 1000) for i in range(first, first + count)])
    for round_ in range(8):  # rounds of 90 new runs, each announced by its event
        await app.engine.db.transaction(fill, round_ * 90, 90)
        window.runs.on_runs_changed(frozenset({f"burst-{round_ * 90:06d}"}))
        await wait_until(lambda r=round_: model.runs and model.run_at(0).job_id == f"burst-{r * 90 + 89:06d}",
                         what=f"round {round_}")
    assert model.rowCount() == MAX_FOLLOWING_ROWS and model.canFetchMore()
    # scrolled down, new runs are counted, not inserted
    model.set_following(False)
    await app.engine.db.transaction(fill, 1000, 5)
    window.runs.on_runs_changed(frozenset({"burst-001000"}))
    await wait_until(lambda: model.has_newer, what="newer runs noticed")
    assert model.run_at(0).job_id == "burst-000719" and window.runs.newer.isVisibleTo(window.runs)
    window.runs.newer.click()
    await wait_until(lambda: model.runs and model.run_at(0).job_id == "burst-001004", what="newest shown")


async def test_approve_from_the_window_and_enter_approves_nothing(make_app, owner, desktop_config):
    app, window = await window_app(make_app, owner, desktop_config)
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, approval_flow(), preset_name="Release <b>v2</b>")
        await wait_until(lambda: window.approvals.model.rowCount() == 1, what="the pending approval")
        view = window.approvals
        assert window.tabs.tabText(window.tabs.indexOf(view)) == "Approvals (1)"
        model = view.model
        assert [model.data(model.index(0, c)) for c in range(3)] == ["Release <b>v2</b>", "Ask the boss",
                                                                     "Deploy to production?"]
        assert ":" in model.data(model.index(0, 3))
        assert window.tabs.currentWidget() is window.runs  # a request never switches tabs or takes focus
        assert not view.approve_button.isEnabled()  # nothing is selected by itself
        window.tabs.setCurrentWidget(view)
        view.table.selectRow(0)
        assert view.approve_button.isEnabled()
        assert view.workflow.text() == "Release <b>v2</b>" and view.workflow.textFormat() == Qt.TextFormat.PlainText
        view.approve_button.setFocus()
        for target in (view.table, view.approve_button, window):
            for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                QApplication.sendEvent(target, QKeyEvent(QEvent.Type.KeyPress, key, Qt.KeyboardModifier.NoModifier))
                QApplication.sendEvent(target, QKeyEvent(QEvent.Type.KeyRelease, key, Qt.KeyboardModifier.NoModifier))
        assert len(app.approvals.pending) == 1 and app.engine.approvals.pending()
        assert not view.approve_button.autoDefault() and not view.approve_button.isDefault()
        view.approve_button.click()
        events = await collect(client, job_id)
        assert final(events)["status"] == "SUCCEEDED"
        resolved = [e for e in events if e["type"] == "MANUAL_APPROVAL_RESOLVED"]
        assert resolved[0]["decision"] == "APPROVED" and resolved[0]["decided_by"] == "desktop"
    assert model.rowCount() == 0 and not app.approvals.dialogs  # the dialog closed too: one controller
    assert window.tabs.tabText(window.tabs.indexOf(view)) == "Approvals"


async def test_an_approval_answered_elsewhere_leaves_the_window(make_app, owner, desktop_config):
    app, window = await window_app(make_app, owner, desktop_config)
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, approval_flow())
        asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
        await wait_until(lambda: window.approvals.model.rowCount() == 1, what="the pending approval")
        window.approvals.table.selectRow(0)
        await client.request("manual_approval_response", approval_id=asked["approval_id"], decision="REJECTED")
        await wait_until(lambda: window.approvals.model.rowCount() == 0, what="gone from the window")
        assert not window.approvals.approve_button.isEnabled()
        assert final(await collect(client, job_id))["status"] == "SUCCEEDED"


async def test_engine_tab_draws_charts_from_the_engine_status(make_app, owner, desktop_config, caplog):
    caplog.set_level(logging.INFO)  # as the app's logging setup does
    app, window = await window_app(make_app, owner, desktop_config)
    history = app.window.history
    history.sample()
    history.sample()
    window.tabs.setCurrentWidget(window.engine_view)
    view = window.engine_view
    await wait_until(lambda: view.charts is not None, what="charts")
    xs, ys = view.curves["engine_memory"].getData()
    assert len(xs) >= 3 and all(y > 0 for y in ys)
    assert set(view.curves) == {"engine_cpu", "machine_cpu", "engine_memory", "machine_memory", "running_jobs"}
    assert view.url.text() == app.engine.url and view.version.text() == app.engine.version
    assert view.data_dir.text() == str(app.engine.config.data_dir)
    assert f"listening on {app.engine.url}" in view.log.toPlainText()  # the tail of the log
    for i in range(60):  # long lines, wrapped: the box scrolls, and shows its newest line
        logging.getLogger("engine.test").info("line %d of a long log message that wraps in the box %s", i, "x" * 80)
    history.sample()
    await wait_until(lambda: "line 59 of" in view.log.toPlainText(), what="the new lines")
    await asyncio.sleep(0.2)  # laid out
    end = view.log.textCursor()
    end.movePosition(QTextCursor.MoveOperation.End)
    where = view.log.cursorRect(end)  # the last line, in the box's own coordinates
    assert view.log.verticalScrollBar().maximum() > 0
    assert 0 <= where.top() and where.bottom() <= view.log.viewport().height(), where


async def test_automations_tab_lists_rules_enables_and_pauses_them(make_app, owner, desktop_config):
    from tests.triggers_support import save as save_triggered, triggered
    app, window = await window_app(make_app, owner, desktop_config)
    view = window.automations
    assert window.tabs.isTabVisible(window.tabs.indexOf(view))  # the engine offers automations
    assert view.model.rowCount() == 0 and "No automations yet" in view.empty.text()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        await save_triggered(client, "Every 5 s", triggered("t", "schedule_trigger", interval_value="5",
                                                            interval_unit="seconds"))
        await save_triggered(client, "Hook", triggered("t", "webhook_trigger"))
    model = view.model
    await wait_until(lambda: model.rowCount() == 2, what="the rules in the tab")
    rows = {model.data(model.index(r, 1)): r for r in range(2)}
    schedule, hook = rows["Every 5 s"], rows["Hook"]
    assert model.data(model.index(schedule, 2)).startswith("Schedule: every 5 seconds")
    assert ":" in model.data(model.index(schedule, 3))  # the next run's time
    assert model.data(model.index(schedule, 4)) == "never"
    assert model.data(model.index(hook, 0), Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    rule_id = model.items[hook]["rule_id"]
    assert model.setData(model.index(hook, 0), Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole)
    await wait_until(lambda: not app.engine.automations.rules[rule_id].record.enabled, what="disabled")
    await wait_until(lambda: any(not i["enabled"] for i in model.items), what="the box follows")
    view.pause_all.click()
    await wait_until(lambda: app.engine.automations.paused, what="paused")
    await wait_until(lambda: all(not model.data(model.index(r, 3)) or model.data(model.index(r, 3)) == "—"
                                 for r in range(2)), what="no next run while paused")
    view.pause_all.click()
    await wait_until(lambda: not app.engine.automations.paused, what="resumed")
    # a schedule's run shows how it started
    await wait_until(lambda: any(r.started_by.get("kind") == "schedule" for r in shown(window)),
                     timeout=30, what="a scheduled run in the runs tab")
    run = next(r for r in shown(window) if r.started_by.get("kind") == "schedule")
    row = window.runs.model.row_of(run.job_id)
    assert window.runs.model.data(window.runs.model.index(row, 1)) == "Schedule"


async def test_the_tray_opens_the_window(make_app, owner, desktop_config):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    assert app.window.window is None  # made when first opened
    app.menu.action_named("Open Flowork").trigger()
    window = app.window.window
    assert window is not None and window.isVisible()
    window.close()
    assert not window.isVisible()
    app.tray.icon.activated.emit(QSystemTrayIcon.ActivationReason.Trigger)
    assert window.isVisible()
    window.close()
    app.tray.icon.activated.emit(QSystemTrayIcon.ActivationReason.Context)
    assert not window.isVisible()
    app.tray.icon.activated.emit(QSystemTrayIcon.ActivationReason.DoubleClick)
    assert window.isVisible()


def test_opening_convention_per_platform():
    from desktop.tray import opens_window
    reason = QSystemTrayIcon.ActivationReason
    assert opens_window(reason.Trigger, "win32") and opens_window(reason.DoubleClick, "win32")
    assert opens_window(reason.Trigger, "linux")
    assert not opens_window(reason.Trigger, "darwin") and not opens_window(reason.DoubleClick, "darwin")
    assert not opens_window(reason.Context, "linux") and not opens_window(reason.MiddleClick, "win32")


async def test_a_burst_of_events_is_one_signal_and_no_memory(make_engine, qapp):
    engine = await make_engine()
    feed = EngineFeed(interval_ms=100)
    heard: list = []
    feed.runs_changed.connect(heard.append)
    feed.attach(engine)
    try:
        for i in range(20_000):
            engine.bus.publish(Event(None, {"type": "NODE_EXECUTION_METRIC", "job_id": f"j{i}",
                                            "status": "SUCCESS"}, Delivery.DROPPABLE))
        assert feed._changed is None  # past MAX_IDS it stopped collecting ids
        await wait_until(lambda: heard, what="the coalesced signal")
        assert heard == [None]
        engine.bus.publish(Event(None, {"type": "workflow_status_update", "job_id": "one",
                                        "status_data": {"status": "RUNNING"}}))
        await wait_until(lambda: len(heard) == 2, what="the next signal")
        assert heard[1] == frozenset({"one"}) and MAX_IDS < 20_000
    finally:
        feed.detach()
