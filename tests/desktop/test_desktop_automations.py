"""The tray's Automations submenu against a real engine: rules with their next run, enabling
from the check box, Pause all kept across an engine restart, the webhook base URL to copy."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication

from engine.client import EngineClient
from tests.desktop.conftest import wait_until
from tests.triggers_support import save, triggered


def texts(app) -> list[str]:
    return [a.text() for a in app.automations_menu.rule_items.values()]


async def test_rules_in_the_menu_enable_pause_and_restart(make_app, owner, desktop_config):
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    menu = app.automations_menu
    assert menu.menuAction() in app.menu.actions()
    assert menu.empty.isVisible() and not menu.rule_items
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        await save(client, "Every 5 s", triggered("t", "schedule_trigger", interval_value="5",
                                                  interval_unit="seconds"))
        await save(client, "Hook", triggered("t", "webhook_trigger"))
    await wait_until(lambda: len(menu.rule_items) == 2, what="the rules in the menu")
    labels = texts(app)
    assert any(t.startswith("Every 5 s · Trigger: every 5 seconds, next ") for t in labels), labels
    assert all(a.isChecked() for a in menu.rule_items.values())
    base = app.engine.automations.webhook_base_url
    assert base and menu.url.text() == f"Webhooks: {base}"
    menu.copy_url.trigger()
    assert QGuiApplication.clipboard().text() == base

    rule_id = next(r for r, a in menu.rule_items.items() if a.text().startswith("Hook"))
    menu.rule_items[rule_id].trigger()  # uncheck: disable
    await wait_until(lambda: not app.engine.automations.rules[rule_id].record.enabled, what="disabled")
    await wait_until(lambda: not menu.rule_items[rule_id].isChecked(), what="the box follows")

    menu.pause.trigger()
    await wait_until(lambda: app.engine.automations.paused, what="paused")
    first = app.engine
    app.menu.restart.trigger()
    await wait_until(lambda: app.engine is not None and app.engine is not first, what="restart")
    menu.refresh()
    assert menu.pause.isChecked() and app.engine.automations.paused
    assert len(menu.rule_items) == 2 and not menu.rule_items[rule_id].isChecked()
    assert all("next" not in t for t in texts(app))  # paused: nothing is due
    menu.pause.trigger()
    await wait_until(lambda: not app.engine.automations.paused, what="resumed")
    await wait_until(lambda: any(", next " in t for t in texts(app)), what="next runs again")


async def test_with_a_tunnel_the_webhook_url_uses_its_hostname(make_app, desktop_config):
    app = await make_app()
    app.tunnel_settings = ("a-token", "flows.example.org")
    app.automations_menu.refresh()
    assert app.automations_menu.webhook_base_url() == "https://flows.example.org/webhook/"
    app.automations_menu.copy_url.trigger()
    assert QGuiApplication.clipboard().text() == "https://flows.example.org/webhook/"
    app.stop_engine()
    await wait_until(lambda: app.engine is None and not app.automations_menu.copy_url.isEnabled(),
                     what="no URL while stopped")
    assert app.automations_menu.empty.text() == "The engine is not running"
