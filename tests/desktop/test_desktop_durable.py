"""Durable jobs on the desktop (issue 13): Quit, Restart engine and Stop engine say that running
workflows are kept and continue at the next start (and offer to stop them instead); a workflow
waiting for an approval survives a restart of the engine, its approval is shown again by the
desktop (also when it was restored before the desktop subscribed) and answering it there
finishes the job."""

from __future__ import annotations

import pytest

from desktop.approvals import ApprovalsController
from desktop.confirm_end import QUITTING, RESTARTING, STOPPING, ConfirmEndDialog, question
from desktop.supervisor import State
from engine.client import EngineClient
from tests.desktop.conftest import wait_until
from tests.desktop.test_desktop_approvals import Recorder, approval_flow
from tests.runtime_support import collect, final, start


def test_the_words_say_what_becomes_of_running_workflows_and_approvals():
    text, info, details = question(QUITTING, 1, 0, 5.0)
    assert text == "1 workflow is running. It will continue when Flowork starts again."
    assert info.startswith("Quitting keeps it: a step that is running gets up to 5 seconds to finish, "
                           "then the workflow is saved where it stands. To end it now instead")
    assert "approval" not in info and "“Quit and stop workflows”" in info and "recorded as stopped" in info
    text, info, _ = question(RESTARTING, 3, 2, 2.5)
    assert text == "3 workflows are running. They will continue as soon as the engine is back."
    assert "Restarting keeps them" in info and "up to 2.5 seconds" in info
    assert "The 2 approvals waiting for your answer are kept and asked again then." in info
    assert "the workflows are saved where they stand." in info
    assert "and the approvals withdrawn" in info and "“Restart and stop workflows”" in info
    _, info, _ = question(STOPPING, 2, 1, 1)
    assert "The approval waiting for your answer is kept and asked again then." in info and "up to 1 second " in info
    assert "and the approval withdrawn" in info
    # The fine print: what a cut-short step and a passing time limit do.
    assert "safe to repeat runs again" in details and "resumed" in details
    assert "takes its default answer" in details


def test_the_dialog_keeps_by_default_choice_and_cancels_on_enter(qapp):
    dialog = ConfirmEndDialog(RESTARTING, 2, 1, grace_s=5.0)
    chosen: list[str] = []
    dialog.confirmed.connect(lambda: chosen.append("keep"))
    dialog.stop_chosen.connect(lambda: chosen.append("stop"))
    dialog.show()
    assert dialog.windowTitle() == "Restart engine?"
    assert dialog.defaultButton() is dialog.cancel_button and dialog.escapeButton() is dialog.cancel_button
    assert dialog.keep_button.text() == "&Restart engine"
    assert dialog.stop_button.text() == "Restart and &stop workflows"
    assert "resumed" in dialog.detailedText()
    dialog.keep_button.click()
    dialog.stop_button.click()
    assert chosen == ["keep", "stop"]
    dialog.deleteLater()


async def test_stopping_them_instead_records_them_stopped(make_app, owner, desktop_config):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, approval_flow(), preset_name="Release")
        await client.next_event("MANUAL_APPROVAL_REQUESTED")
        await wait_until(lambda: app.approvals.pending, what="the approval on the desktop")
        app.menu.restart.trigger()
        dialog = app.confirm_dialog
        assert dialog.isVisible() and "1 workflow is running." in dialog.text()
        assert "The approval waiting for your answer is kept and asked again then." in dialog.informativeText()
        states: list[State] = []
        app.supervisor.state_changed.connect(states.append)
        dialog.stop_button.click()
        await wait_until(lambda: State.STARTING in states and app.engine is not None,
                         what="the engine back")
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        status = await client.request("request_job_status", job_id=job_id)
        assert status["status_data"]["status"] == "STOPPED"
        assert (await client.request("request_jobs_list", status="RUNNING"))["jobs"] == []
    assert app.approvals.pending == [] and not app.approvals.dialogs


async def test_an_approval_pending_before_the_controller_attaches_is_shown(engine, client, qapp):
    """Restored approvals are put into the ApprovalCenter while the engine starts, before the
    desktop subscribes: the controller reads what is pending when it attaches."""
    job_id = await start(client, approval_flow(), preset_name="Release")
    asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    recorder = Recorder()
    controller = ApprovalsController(recorder)
    controller.attach(engine)
    try:
        assert [r.approval_id for r in controller.pending] == [asked["approval_id"]]
        dialog = controller.dialogs[asked["approval_id"]]
        assert dialog.isVisible() and recorder.sent[0]["title"] == "Approval needed: Release"
        dialog.approve_button.click()
        events = await collect(client, job_id)
        assert final(events)["status"] == "SUCCEEDED"
        assert final(events)["result"]["data"]["result"] == "approved"
        assert controller.pending == [] and recorder.cleared == ["n0"]
    finally:
        controller.detach()


@pytest.mark.parametrize("how", ["restart", "quit"])
async def test_a_waiting_approval_survives_restart_and_quit(make_app, owner, desktop_config, how):
    desktop_config.update(owners=(owner.address,))
    recorder = Recorder()
    app = await make_app(notifier=recorder)
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, approval_flow(), preset_name="Release")
        asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
    await wait_until(lambda: asked["approval_id"] in app.approvals.dialogs, what="the dialog")
    if how == "restart":
        states: list[State] = []
        app.supervisor.state_changed.connect(states.append)
        app.menu.restart.trigger()
        app.confirm_dialog.keep_button.click()
        await wait_until(lambda: State.STARTING in states, what="the engine to restart")
    else:
        app.menu.quit.trigger()
        assert "continue when Flowork starts again" in app.confirm_dialog.text()
        app.confirm_dialog.keep_button.click()
        await wait_until(app.finished.is_set, what="quit")
        app = await make_app(notifier=recorder)  # Flowork started again, same folders
    await wait_until(lambda: app.engine is not None and asked["approval_id"] in app.approvals.dialogs,
                     what="the same approval shown again")
    dialog = app.approvals.dialogs[asked["approval_id"]]
    assert dialog.isVisible() and any(n["title"] == "Approval needed: Release" for n in recorder.sent[1:])
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        listed = (await client.request("request_jobs_list", status="RUNNING"))["jobs"]
        assert [j["job_id"] for j in listed] == [job_id]
        dialog.approve_button.click()
        events = await collect(client, job_id)
        done = final(events)
        assert done["status"] == "SUCCEEDED" and done["result"]["data"]["result"] == "approved"
        assert [h["node_id"] for h in done["result"]["history"]] == ["t", "ask", "yes"]
    assert app.approvals.pending == []
