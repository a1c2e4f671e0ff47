"""The tray icon and its menu. Both show a StatusView the app makes; the menu's entries call
the app's actions (desktop/app.py), never the engine.

The menu stays narrow and readable: one short bold header (a click opens the status window),
then actions only. The details (address, Flowork's own CPU and memory, the machine's, notes)
are in the icon's tooltip and the status window, where long text does not widen a menu.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from desktop.icons import TrayState, state_icon


def format_bytes(count: float) -> str:
    """96 MB, 1.2 GB: sizes as desktop apps show them (decimal units)."""
    for unit in ("bytes", "KB", "MB"):
        if count < 1000:
            return f"{count:.0f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def format_percent(value: float) -> str:
    return f"{value:.1f} %" if value < 10 else f"{value:.0f} %"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class StatusView:
    """What the tray shows; made by the app from the supervisor and the engine's own status."""

    state: TrayState
    headline: str                    # a few words: "running", "port 12345 is in use"
    url: str = ""
    engine_cpu_percent: float | None = None      # Flowork's own process (the engine runs in it)
    engine_memory_bytes: int | None = None
    machine_cpu_percent: float | None = None     # the whole machine, labelled so where shown
    machine_memory_percent: float | None = None
    running_jobs: int = 0
    clients: int = 0
    notes: tuple[str, ...] = ()      # keyring fallback, tunnel state, what went wrong
    approvals: tuple[tuple[str, str], ...] = ()  # (approval_id, label)
    recent_runs: tuple[tuple[str, str], ...] = ()  # (job_id, label), newest first
    engine_running: bool = False
    can_start: bool = True

    def header(self) -> str:
        return f"Flowork: {self.headline}"

    def usage(self) -> str:
        """Flowork's own CPU and memory (not the machine's)."""
        memory = self.engine_memory_bytes
        return _figures(self.engine_cpu_percent, None if memory is None else format_bytes(memory))

    def machine(self) -> str:
        memory = self.machine_memory_percent
        return _figures(self.machine_cpu_percent, None if memory is None else f"{format_percent(memory)} used")

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) for the status window."""
        if not self.engine_running:
            return []
        rows = [("Address:", self.url)]
        if self.usage():
            rows.append(("Flowork uses:", self.usage()))
        if self.machine():
            rows.append(("This computer:", self.machine()))
        rows.append(("Workflows:", f"{self.running_jobs} running"))
        rows.append(("Web GUIs:", f"{self.clients} connected"))
        return rows

    def tooltip(self) -> str:
        lines = [f"Flowork: {self.headline}"]
        if self.engine_running:
            lines.append(self.url.split("/?", 1)[0])  # the whole URL: Copy WebSocket URL
            if self.usage():
                lines.append(f"Flowork uses {self.usage()}")
            lines.append(f"{plural(self.running_jobs, 'workflow')} running · "
                         f"{plural(self.clients, 'web GUI')} connected")
        if self.approvals:
            lines.append(f"{plural(len(self.approvals), 'approval')} waiting")
        lines.extend(self.notes)
        return "\n".join(lines)


def _figures(cpu: float | None, memory: str | None) -> str:
    parts = [f"CPU {format_percent(cpu)}"] if cpu is not None else []
    return " · ".join(parts + ([f"memory {memory}"] if memory is not None else []))


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
    def show_status_window(self) -> None: ...
    def show_run(self, job_id: str) -> None: ...
    def menu_opened(self) -> None: ...
    def autostart_enabled(self) -> bool: ...
    def set_autostart(self, enabled: bool) -> None: ...
    def open_logs(self) -> None: ...
    def show_about(self) -> None: ...
    def open_help(self) -> None: ...
    def check_for_updates(self) -> None: ...
    def request_quit(self) -> None: ...


class KeyedActions:
    """A run of menu entries kept in step with a list of (key, label), the key passed to
    `on_trigger` when one is chosen. The entries are reused from one update to the next: the
    tray updates its menu every second and on every run, and a QAction removed from a menu
    without being deleted lives on as the menu's child (16 leaked actions a run, gigabytes
    and a minute-long exit after a day of busy automations)."""

    def __init__(self, menu: QMenu, before: QAction, on_trigger: Callable[[str], None]) -> None:
        self._menu = menu
        self._before = before
        self._on_trigger = on_trigger
        self._items: list[QAction] = []

    def show(self, entries: Sequence[tuple[str, str]]) -> None:
        while len(self._items) > len(entries):
            action = self._items.pop()
            self._menu.removeAction(action)
            action.deleteLater()
        for action, (key, label) in zip(self._items, entries):
            action.setText(label.replace("&", "&&"))
            action.setData(key)
        for key, label in entries[len(self._items):]:
            action = QAction(label.replace("&", "&&"), self._menu)
            action.setData(key)
            action.triggered.connect(lambda _c=False, a=action: self._on_trigger(str(a.data())))
            self._menu.insertAction(self._before, action)
            self._items.append(action)

    @property
    def items(self) -> list[QAction]:
        return list(self._items)


class TrayMenu(QMenu):
    def __init__(self, actions: Actions) -> None:
        super().__init__()
        self._actions = actions
        # Enabled, so it reads at full contrast (a disabled item is faint grey); it opens the
        # status window, where the details are.
        self.header = self._add("Flowork", actions.show_status_window)
        font = self.header.font()
        font.setBold(True)
        self.header.setFont(font)
        self.error_details = self._add("Show &error details…", actions.show_error)
        self.addSeparator()
        self.start = self._add("&Start engine", actions.start_engine)
        self.stop = self._add("S&top engine", actions.stop_engine)
        self.restart = self._add("&Restart engine", actions.restart_engine)
        self.addSeparator()
        self.open_window = self._add("O&pen Flowork", actions.open_window)
        self.open_gui = self._add("Open &web GUI", actions.open_gui)
        self.copy_id = self._add("Copy engine &ID", actions.copy_engine_id)
        self.copy_url = self._add("Copy WebSocket &URL", actions.copy_ws_url)
        self._approvals_anchor = self.addSeparator()
        self._after_approvals = self.addSeparator()
        self._approvals = KeyedActions(self, self._after_approvals, actions.show_approval)
        self.runs_menu = QMenu("Re&cent runs", self)
        self.runs_menu.aboutToShow.connect(actions.menu_opened)
        self.addMenu(self.runs_menu)
        self.no_runs = self.runs_menu.addAction("No runs yet")
        self.no_runs.setEnabled(False)
        self._runs = KeyedActions(self.runs_menu, self.no_runs, actions.show_run)
        self.addSeparator()
        self.folders = self._add("Shared &folders…", actions.show_folders)
        self.settings = self._add("Setti&ngs…", actions.show_settings)
        self.autostart = self._add("Start at &login", None)
        self.autostart.setCheckable(True)
        self.autostart.triggered.connect(lambda checked: actions.set_autostart(bool(checked)))
        self.open_logs = self._add("Open lo&gs folder", actions.open_logs)
        self.addSeparator()
        self.about = self._add("&About Flowork", actions.show_about)
        self.help = self._add("&Help (online)", actions.open_help)
        self.updates = self._add("Check for up&dates…", actions.check_for_updates)
        self.addSeparator()
        self.quit = self._add("&Quit Flowork", actions.request_quit)
        self.aboutToShow.connect(actions.menu_opened)  # current figures when looked at
        self.aboutToShow.connect(self.refresh_autostart)
        self.refresh_autostart()

    def _add(self, text: str, slot: Callable[[], Any] | None, *, enabled: bool = True) -> QAction:
        action = self.addAction(text)
        action.setEnabled(enabled)
        if slot is not None:
            action.triggered.connect(lambda _checked=False, s=slot: s())
        return action

    @property
    def approval_items(self) -> list[QAction]:
        return self._approvals.items

    @property
    def run_items(self) -> list[QAction]:
        return self._runs.items

    def refresh_autostart(self) -> None:
        """Read the real OS state every time the menu opens."""
        self.autostart.setChecked(self._actions.autostart_enabled())

    def action_named(self, text: str) -> QAction:
        """The entry whose text (without its & mnemonic marker) is `text`."""
        for action in self.actions():
            if action.text().replace("&", "") == text:
                return action
        raise KeyError(text)

    def update_view(self, view: StatusView) -> None:
        self.header.setText(view.header().replace("&", "&&"))
        self.error_details.setVisible(view.state in (TrayState.ERROR, TrayState.PORT_IN_USE))
        running = view.engine_running
        # One way to do each thing: a stopped (or failed) engine is started, a running one
        # stopped or restarted; a starting one can only be stopped.
        self.start.setEnabled(not running and view.can_start)
        self.stop.setEnabled(running or not view.can_start)
        self.restart.setEnabled(running)
        for action in (self.open_gui, self.copy_url):
            action.setEnabled(running)
        self._approvals.show(view.approvals)
        self._after_approvals.setVisible(bool(view.approvals))
        self._runs.show(view.recent_runs)
        self.no_runs.setVisible(not view.recent_runs)


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
