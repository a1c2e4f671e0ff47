"""The tray icon and its menu: the state at a glance, every action one click away.

The menu is built once and updated in place (actions enabled/disabled, texts changed), so it is
cheap to refresh from every engine status frame. The same menu serves the status window when
the desktop has no system tray.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from desktop.icons import TrayState, state_icon


@dataclass(frozen=True)
class StatusView:
    """What the tray shows; made by the app from the supervisor and the engine's own status."""

    state: TrayState
    headline: str                    # "Running", "Stopped", "Port 12345 in use", ...
    url: str = ""
    cpu_percent: float | None = None
    memory_percent: float | None = None
    running_jobs: int = 0
    clients: int = 0
    notes: tuple[str, ...] = ()      # keyring fallback, tunnel state, error text
    approvals: tuple[tuple[str, str], ...] = ()  # (approval_id, label)
    engine_running: bool = False
    can_start: bool = True

    def detail_line(self) -> str:
        if not self.engine_running:
            return ""
        parts = [self.url.split("/?", 1)[0]]  # the full URL is one click away (Copy WebSocket URL)
        if self.cpu_percent is not None:
            parts.append(f"CPU {self.cpu_percent:.0f}%")
        if self.memory_percent is not None:
            parts.append(f"memory {self.memory_percent:.0f}%")
        parts.append(f"{self.running_jobs} job{'s' if self.running_jobs != 1 else ''} running")
        parts.append(f"{self.clients} client{'s' if self.clients != 1 else ''}")
        return " · ".join(parts)

    def tooltip(self) -> str:
        lines = [f"Flowork: {self.headline}"]
        if self.engine_running:
            lines.append(self.url)
            if self.cpu_percent is not None and self.memory_percent is not None:
                lines.append(f"CPU {self.cpu_percent:.0f}% · memory {self.memory_percent:.0f}%")
            lines.append(f"{self.running_jobs} running job(s) · {self.clients} client(s)")
        if self.approvals:
            lines.append(f"{len(self.approvals)} approval(s) waiting")
        lines.extend(self.notes)
        return "\n".join(lines)


class Actions(Protocol):
    def start_engine(self) -> None: ...
    def stop_engine(self) -> None: ...
    def restart_engine(self) -> None: ...
    def open_gui(self) -> None: ...
    def open_window(self) -> None: ...
    def copy_engine_id(self) -> None: ...
    def copy_ws_url(self) -> None: ...
    def show_approval(self, approval_id: str) -> None: ...
    def show_folders(self) -> None: ...
    def show_settings(self) -> None: ...
    def show_error(self) -> None: ...
    def refresh_status(self) -> None: ...
    def autostart_enabled(self) -> bool: ...
    def set_autostart(self, enabled: bool) -> None: ...
    def open_logs(self) -> None: ...
    def quit(self) -> None: ...


class TrayMenu(QMenu):
    def __init__(self, actions: Actions) -> None:
        super().__init__()
        self._actions = actions
        self.header = self._add("Flowork", None, enabled=False)
        self.detail = self._add("", None, enabled=False)
        self.notes: list[QAction] = []
        self._notes_anchor = self.addSeparator()
        self.error_details = self._add("Show error details…", actions.show_error)
        self.start = self._add("Start engine", actions.start_engine)
        self.stop = self._add("Stop engine", actions.stop_engine)
        self.restart = self._add("Restart engine", actions.restart_engine)
        self.addSeparator()
        self.open_window = self._add("Open Flowork", actions.open_window)
        self.open_gui = self._add("Open web GUI", actions.open_gui)
        self.copy_id = self._add("Copy engine ID", actions.copy_engine_id)
        self.copy_url = self._add("Copy WebSocket URL", actions.copy_ws_url)
        self._approvals_anchor = self.addSeparator()
        self.approvals_header = self._add("Pending approvals", None, enabled=False)
        self.approval_items: list[QAction] = []
        self._after_approvals = self.addSeparator()
        self.folders = self._add("Shared folders…", actions.show_folders)
        self.settings = self._add("Settings…", actions.show_settings)
        self.autostart = self._add("Start at login", None)
        self.autostart.setCheckable(True)
        self.autostart.triggered.connect(lambda checked: actions.set_autostart(bool(checked)))
        self.open_logs = self._add("Open logs folder", actions.open_logs)
        self.addSeparator()
        self.quit = self._add("Quit Flowork", actions.quit)
        self.aboutToShow.connect(actions.refresh_status)  # current figures when looked at
        self.aboutToShow.connect(self.refresh_autostart)
        self.refresh_autostart()

    def _add(self, text: str, slot: Callable[[], Any] | None, *, enabled: bool = True) -> QAction:
        action = self.addAction(text)
        action.setEnabled(enabled)
        if slot is not None:
            action.triggered.connect(lambda _checked=False, s=slot: s())
        return action

    def refresh_autostart(self) -> None:
        """Read the real OS state every time the menu opens."""
        self.autostart.setChecked(self._actions.autostart_enabled())

    def action_named(self, text: str) -> QAction:
        for action in self.actions():
            if action.text() == text:
                return action
        raise KeyError(text)

    def update_view(self, view: StatusView) -> None:
        self.header.setText(f"Flowork: {view.headline}")
        detail = view.detail_line()
        self.detail.setText(detail)
        self.detail.setVisible(bool(detail))
        for action in self.notes:
            self.removeAction(action)
        self.notes = []
        for note in view.notes:
            action = QAction(note, self)
            action.setEnabled(False)
            self.insertAction(self._notes_anchor, action)
            self.notes.append(action)
        self.error_details.setVisible(view.state in (TrayState.ERROR, TrayState.PORT_IN_USE))
        self.start.setEnabled(not view.engine_running and view.can_start)
        self.stop.setEnabled(view.engine_running or view.state is TrayState.STARTING
                             or not view.can_start)
        self.restart.setEnabled(view.engine_running or view.state in (TrayState.ERROR, TrayState.PORT_IN_USE))
        for action in (self.open_gui, self.copy_url):
            action.setEnabled(view.engine_running)
        for action in self.approval_items:
            self.removeAction(action)
        self.approval_items = []
        self.approvals_header.setText(f"Pending approvals ({len(view.approvals)})" if view.approvals
                                      else "No pending approvals")
        for approval_id, label in view.approvals:
            action = QAction(label, self)
            action.triggered.connect(lambda _c=False, a=approval_id: self._actions.show_approval(a))
            self.insertAction(self._after_approvals, action)
            self.approval_items.append(action)


def opens_window(reason: QSystemTrayIcon.ActivationReason, platform: str = sys.platform) -> bool:
    """A click or double-click on the icon opens the window on Windows and Linux desktops; on
    macOS a click on a menu-bar icon opens its menu, as everywhere there ("Open Flowork")."""
    return platform != "darwin" and reason in (QSystemTrayIcon.ActivationReason.Trigger,
                                               QSystemTrayIcon.ActivationReason.DoubleClick)


class Tray:
    """The QSystemTrayIcon: icon per state, tooltip, the menu; a click opens the window."""

    def __init__(self, menu: TrayMenu, on_activated: Callable[[], None]) -> None:
        self.menu = menu
        self.icon = QSystemTrayIcon()
        self.icon.setContextMenu(menu)
        self.icon.activated.connect(lambda reason: on_activated() if opens_window(reason) else None)
        self.state: TrayState | None = None

    def update_view(self, view: StatusView) -> None:
        if view.state is not self.state:
            self.state = view.state
            self.icon.setIcon(state_icon(view.state))
        self.icon.setToolTip(view.tooltip())

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def message(self, title: str, text: str) -> None:
        self.icon.showMessage(title, text, state_icon(self.state or TrayState.IDLE), 10_000)
