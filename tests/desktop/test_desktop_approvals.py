"""Manual approvals: a dialog and a notification per request; answered from the dialog, from
the notification's buttons, or from a client (which closes the dialog)."""

from __future__ import annotations

import shiboken6

from desktop.icons import TrayState
from engine.client import EngineClient
from tests.desktop.conftest import wait_until
from tests.runtime_support import collect, edge, final, node, start, workflow


def approval_flow() -> dict:
    return workflow([node("t", "manual_trigger"),
                     node("ask", "manual_approval", "Ask the boss", message="Deploy to production?",
                          timeout_s=600),
                     node("yes", "set_data", data={"result": "approved"}),
                     node("no", "set_data", data={"result": "rejected"})],
                    [edge("t", "ask"), edge("ask", "yes", "APPROVED"), edge("ask", "no", "REJECTED")])


class Recorder:
    """Notifications the app sends (the platform has no notification service here)."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.cleared: list[str] = []

    def notify(self, title, message, *, buttons=(), on_clicked=None, on_sent=None):
        ident = f"n{len(self.sent)}"
        self.sent.append({"title": title, "message": message, "buttons": dict(buttons),
                          "on_clicked": on_clicked})
        if on_sent:
            on_sent(ident)

    def clear(self, identifier):
        self.cleared.append(identifier)

    async def aclose(self):
        pass


async def test_approved_from_the_dialog(make_app, owner, desktop_config):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, approval_flow(), preset_name="Release")
        await wait_until(lambda: app.approvals.dialogs, what="approval dialog")
        (approval_id, dialog), = app.approvals.dialogs.items()
        assert dialog.isVisible() and not dialog.isModal()
        text = " ".join(w.text() for w in dialog.findChildren(type(dialog.time_left)))
        assert "Release" in text and "Ask the boss" in text and "Deploy to production?" in text
        assert ":" in dialog.time_left.text()  # m:ss left
        assert app.view.state is TrayState.APPROVAL
        assert [a.text() for a in app.menu.approval_items] == ["Approval waiting: Release · Ask the boss…"]
        del dialog, text  # the app alone keeps the dialog alive, as when a person clicks
        app.approvals.dialogs[approval_id].approve_button.click()
        events = await collect(client, job_id)
        assert final(events)["status"] == "SUCCEEDED"
        resolved = [e for e in events if e["type"] == "MANUAL_APPROVAL_RESOLVED"]
        assert resolved and resolved[0]["decision"] == "APPROVED" and resolved[0]["decided_by"] == "desktop"
        ran = [e["node_id"] for e in events if e["type"] == "NODE_EXECUTION_METRIC" and e["status"] == "SUCCESS"]
        assert "yes" in ran and "no" not in ran
    assert not app.approvals.dialogs and app.menu.approval_items == []
    await wait_until(lambda: app.view.state is TrayState.IDLE, what="idle icon")


async def test_answered_by_a_client_closes_the_dialog(make_app, owner, desktop_config):
    desktop_config.update(owners=(owner.address,))
    recorder = Recorder()
    app = await make_app(notifier=recorder)
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, approval_flow())
        asked = await client.next_event("MANUAL_APPROVAL_REQUESTED")
        await wait_until(lambda: asked["approval_id"] in app.approvals.dialogs, what="dialog")
        dialog = app.approvals.dialogs[asked["approval_id"]]
        assert recorder.sent and set(recorder.sent[0]["buttons"]) == {"Approve", "Reject"}
        await client.request("manual_approval_response", approval_id=asked["approval_id"],
                             decision="REJECTED")
        events = await collect(client, job_id)
        assert final(events)["status"] == "SUCCEEDED"
        await wait_until(lambda: not shiboken6.isValid(dialog) or not dialog.isVisible(),
                         what="the dialog to close")
        assert recorder.cleared == ["n0"]
        assert app.approvals.pending == [] and app.menu.approval_items == []


async def test_rejected_from_the_notification_button(make_app, owner, desktop_config):
    desktop_config.update(owners=(owner.address,))
    recorder = Recorder()
    app = await make_app(notifier=recorder)
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, approval_flow())
        await wait_until(lambda: recorder.sent, what="notification")
        recorder.sent[0]["buttons"]["Reject"]()  # what desktop-notifier calls on a button press
        events = await collect(client, job_id)
        resolved = [e for e in events if e["type"] == "MANUAL_APPROVAL_RESOLVED"]
        assert resolved[0]["decision"] == "REJECTED"
        ran = [e["node_id"] for e in events if e["type"] == "NODE_EXECUTION_METRIC" and e["status"] == "SUCCESS"]
        assert "no" in ran and "yes" not in ran
    assert not app.approvals.dialogs


async def test_pending_requests_survive_a_hidden_dialog_and_reopen_from_the_menu(make_app, owner, desktop_config):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, approval_flow())
        await wait_until(lambda: app.approvals.dialogs, what="dialog")
        (approval_id, dialog), = app.approvals.dialogs.items()
        dialog.reject()  # the window's close button: the request stays pending
        assert not dialog.isVisible() and app.approvals.pending
        app.menu.approval_items[0].trigger()
        assert dialog.isVisible()
        dialog.reject_button.click()
        assert final(await collect(client, job_id))["status"] == "SUCCEEDED"


async def test_an_engine_restart_resubscribes(make_app, owner, desktop_config):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    app.menu.restart.trigger()
    first = app.engine
    await wait_until(lambda: app.engine is not None and app.engine is not first, what="restart")
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        job_id = await start(client, approval_flow())
        await wait_until(lambda: app.approvals.dialogs, what="dialog after restart")
        next(iter(app.approvals.dialogs.values())).approve_button.click()
        assert final(await collect(client, job_id))["status"] == "SUCCEEDED"
