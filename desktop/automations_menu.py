"""The tray's Automations submenu: each rule with its next run and a check box to enable it,
"Pause all automations" (kept by the engine across restarts) and the webhook base URL to copy.

It reads and changes everything through the Engine's `automations` object (public API) and
refreshes when the engine says a rule changed, or when the menu is opened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Coroutine

from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QMenu

Spawn = Callable[[Coroutine[Any, Any, Any]], Any]


def when(iso: str | None, now: datetime | None = None) -> str:
    """A next-run time for people: the time today, else the day and time (local zone)."""
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    now = now or datetime.now().astimezone()
    if moment.date() == now.date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%a %d %b %H:%M")


def rule_label(item: dict[str, Any]) -> str:
    head = f"{item['preset_name']} · {item.get('node_name') or item['node_id']}: {item['summary']}"
    if item.get("disabled_reason"):
        return f"{head} (disabled: {item['disabled_reason']})"
    if item.get("next_run"):
        return f"{head}, next {when(item['next_run'])}"
    return head


class AutomationsMenu(QMenu):
    def __init__(self, spawn: Spawn, tunnel_hostname: Callable[[], str],
                 parent: QMenu | None = None) -> None:
        super().__init__("Aut&omations", parent)  # a child of the tray menu: deleted with it
        self._spawn = spawn
        self._tunnel_hostname = tunnel_hostname
        self._automations: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self.rule_items: dict[str, QAction] = {}
        self.empty = self.addAction("No automations: save a preset with a trigger node")
        self.empty.setEnabled(False)
        self._rules_end = self.addSeparator()
        self.pause = self.addAction("Pause all automations")
        self.pause.setCheckable(True)
        self.pause.triggered.connect(self._toggle_pause)
        self.url = self.addAction("")
        self.url.setEnabled(False)
        self.copy_url = self.addAction("Copy webhook base URL")
        self.copy_url.triggered.connect(self.copy_webhook_url)
        self.aboutToShow.connect(self.refresh)
        self.refresh()

    def attach(self, engine: Any) -> None:
        self.detach()
        self._automations = engine.automations
        if self._automations is not None:
            self._unsubscribe = self._automations.subscribe(self.refresh)
        self.refresh()

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._automations = None
        self.refresh()

    def webhook_base_url(self) -> str | None:
        automations = self._automations
        if automations is None or automations.webhook_base_url is None:
            return None
        hostname = self._tunnel_hostname().strip()
        return f"https://{hostname}/webhook/" if hostname else automations.webhook_base_url

    def refresh(self) -> None:
        automations = self._automations
        items = automations.listing() if automations is not None else []
        seen = set()
        for item in items:
            rule_id = item["rule_id"]
            seen.add(rule_id)
            action = self.rule_items.get(rule_id)
            if action is None:
                action = QAction(self)
                action.setCheckable(True)
                action.triggered.connect(lambda checked, r=rule_id: self._toggle_rule(r, bool(checked)))
                self.insertAction(self._rules_end, action)
                self.rule_items[rule_id] = action
            action.setText(rule_label(item))
            action.setChecked(bool(item["enabled"]))
        for rule_id in [r for r in self.rule_items if r not in seen]:
            gone = self.rule_items.pop(rule_id)
            self.removeAction(gone)
            gone.deleteLater()  # removed is not deleted: the menu still owns it
        self.empty.setVisible(not items)
        self.empty.setText("No automations: save a preset with a trigger node" if automations is not None
                           else "The engine is not running")
        running = automations is not None
        self.pause.setEnabled(running)
        self.pause.setChecked(bool(running and automations.paused))
        url = self.webhook_base_url()
        self.url.setText(f"Webhooks: {url}" if url else
                         f"Webhooks off: {automations.webhook_error}" if running and automations.webhook_error
                         else "Webhooks: off")
        self.copy_url.setEnabled(url is not None)

    def copy_webhook_url(self) -> None:
        url = self.webhook_base_url()
        if url is not None:
            QGuiApplication.clipboard().setText(url)

    def _toggle_rule(self, rule_id: str, enabled: bool) -> None:
        if self._automations is not None:
            self._spawn(self._automations.set_enabled(None, rule_id, enabled))

    def _toggle_pause(self, checked: bool) -> None:
        if self._automations is not None:
            self._spawn(self._automations.set_paused(bool(checked)))
