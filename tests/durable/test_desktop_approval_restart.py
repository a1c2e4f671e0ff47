"""The tray app's side of a restart: an engine process killed while a job waits for an
approval, then the desktop's in-process engine started on the same data folder (as the tray app
does after a crash or a reboot). Its approval controller shows the restored approval (dialog and
notification) and answers it; the job ends with the data from before and after the approval."""

from __future__ import annotations

import shiboken6

from desktop.approvals import ApprovalsController
from engine.client import EngineClient
from tests.conftest import Wallet
from tests.desktop.conftest import wait_until
from tests.desktop.test_desktop_approvals import Recorder
from tests.durable.support import POSIX_ONLY, approval_flow, expect_event, sign_in, wait_status
from tests.runtime_support import start

import pytest

pytestmark = [POSIX_ONLY, pytest.mark.qt]


async def test_the_desktop_controller_answers_an_approval_restored_after_a_kill(
        start_engine, make_engine, owner: Wallet, qapp) -> None:
    process = start_engine()
    async with await EngineClient.connect(process.url, owner.key) as client:
        job_id = await start(client, approval_flow(timeout_s=600), preset_name="Release")
        asked = await expect_event(client, "MANUAL_APPROVAL_REQUESTED", what="before the kill")
        process.kill()

    engine = await make_engine()  # in-process, same data folder, as the tray app runs it
    recorder = Recorder()
    controller = ApprovalsController(recorder, show_dialogs=True)
    controller.attach(engine)
    try:
        await wait_until(lambda: asked["approval_id"] in controller.dialogs, timeout=15,
                         what="the restored approval's dialog")
        (request,) = [r for r in engine.approvals.pending() if r.approval_id == asked["approval_id"]]
        assert (request.job_id, request.node_id, request.workflow_name) == (job_id, "ask", "Release")
        assert abs(request.requested_at - asked["requested_at"]) < 0.01  # the original time
        assert recorder.sent and set(recorder.sent[-1]["buttons"]) == {"Approve", "Reject"}
        async with await EngineClient.connect(engine.url, owner.key) as client:
            await sign_in(client)
            controller.dialogs[asked["approval_id"]].approve_button.click()
            resolved = await expect_event(client, "MANUAL_APPROVAL_RESOLVED",
                                          where=lambda e: e["approval_id"] == asked["approval_id"])
            assert (resolved["decision"], resolved["decided_by"]) == ("APPROVED", "desktop")
            done = await wait_status(client, job_id)
            assert done["status"] == "SUCCEEDED", done
            assert done["result"]["data"]["before"] == 1 and done["result"]["data"]["after"] == 2
        assert controller.pending == [] and engine.approvals.pending() == []
    finally:
        dialogs = list(controller.dialogs.values()) + list(controller._closing)
        controller.detach()
        for obj in (*dialogs, controller):
            if shiboken6.isValid(obj):
                shiboken6.delete(obj)


async def test_the_restored_approval_is_answered_from_its_notification(
        start_engine, make_engine, owner: Wallet, qapp) -> None:
    """As a person would: the notification for the restored approval, its Reject button."""
    process = start_engine()
    async with await EngineClient.connect(process.url, owner.key) as client:
        job_id = await start(client, approval_flow(timeout_s=600), preset_name="Release")
        asked = await expect_event(client, "MANUAL_APPROVAL_REQUESTED", what="before the kill")
        process.kill()

    engine = await make_engine()
    recorder = Recorder()
    controller = ApprovalsController(recorder, show_dialogs=False)
    controller.attach(engine)
    try:
        await wait_until(lambda: any(r.approval_id == asked["approval_id"] for r in controller.pending),
                         timeout=15, what="the restored approval")
        (sent,) = recorder.sent
        assert "Release" in sent["title"] and "Go on?" in sent["message"]
        async with await EngineClient.connect(engine.url, owner.key) as client:
            await sign_in(client)
            sent["buttons"]["Reject"]()
            done = await wait_status(client, job_id)
            assert done["status"] == "SUCCEEDED", done
            data = done["result"]["data"]
            assert data["before"] == 1 and data["rejected"] is True and "after" not in data
            assert data["approval"]["decided_by"] == "desktop"
        assert controller.pending == [] and recorder.cleared  # the notification is taken back
    finally:
        controller.detach()
        if shiboken6.isValid(controller):
            shiboken6.delete(controller)
