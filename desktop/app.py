"""The desktop app: wires the supervisor, the tray (or status window), the dialogs and the
config together. Every user action is a method here; the menu and the windows only call them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Callable, Coroutine

from PySide6.QtCore import QObject, QTimer, QUrl
from PySide6.QtGui import QCursor, QGuiApplication
from PySide6.QtWidgets import QFileDialog, QSystemTrayIcon, QToolTip

from engine import __version__
from engine.app import Engine
from engine.config import EngineConfig, new_engine_id
from engine.events import Event
from engine.store.secret_key import KeySource, load_or_create_key
from desktop.about import AboutDialog
from desktop.approvals import ApprovalsController, describe
from desktop.automations_menu import AutomationsMenu
from desktop.autostart import Autostart
from desktop.config import DesktopConfig
from desktop.confirm_end import QUITTING, RESTARTING, STOPPING, ConfirmEndDialog, Ending
from desktop.folders import SharedFolders, SharedFoldersDialog, folder_picker
from desktop.icons import TrayState
from desktop.links import HELP_URL, RELEASES_URL
from desktop.log_tail import LogTail
from desktop.notifications import Notifier
from desktop.link_dialog import LinkDialog
from desktop.open_gui import Opener, gui_link, launch
from desktop.pairing import PairingController
from desktop.errors import (CHOOSE_FOLDER, OPEN_LOGS, OTHER_PORT, RESTART, RETRY, SETTINGS,
                            Problem, describe_problem)
from desktop.port_conflict import free_port_near, port_holder
from desktop.problem_dialog import ProblemDialog
from desktop.refused import RefusedAddresses
from desktop.runs import FailureNotices, RecentRuns, Run
from desktop.settings_dialog import SettingsDialog, SettingsValues
from desktop.status_window import StatusWindow
from desktop.supervisor import EngineSupervisor, RestartPolicy, State
from desktop.tray import StatusView, Tray, TrayMenu, plural
from desktop.tunnel import Tunnel, TunnelState
from desktop.window.controller import WindowController

log = logging.getLogger(__name__)

DRIVES_NOTICE_INTERVAL_S = 300.0
TRAY_WATCH_S = 2.0
COPIED_TIP_MS = 1500
RUNS_REFRESH_MS = 250  # the tray follows a busy engine's runs a few times a second, not per run


class DesktopApp(QObject):
    def __init__(self, config: DesktopConfig, *, hidden: bool = False, tray: bool | None = None,
                 opener: Opener | None = None, autostart: Autostart | None = None,
                 policy: RestartPolicy | None = None,
                 log_tail: LogTail | None = None, notifier: Notifier | None = None,
                 tray_available: Callable[[], bool] = QSystemTrayIcon.isSystemTrayAvailable,
                 tray_watch_s: float = TRAY_WATCH_S) -> None:
        super().__init__()
        self.config = config
        self.hidden = hidden
        self.opener = opener
        self.autostart = autostart or Autostart()
        self.log_tail = log_tail or LogTail()
        if self.log_tail not in logging.getLogger().handlers:
            logging.getLogger().addHandler(self.log_tail)
        self.key_source: KeySource | None = None
        self.engine_id = ""
        self.tunnel_settings: tuple[str, str] = ("", "")  # (token, hostname), as kept in the keyring
        self.supervisor = EngineSupervisor(self._make_engine, policy=policy, log_tail=self.log_tail)
        self.tunnel = Tunnel(policy=RestartPolicy(base_delay_s=policy.base_delay_s) if policy else None)
        self.notifier = notifier or Notifier(fallback=self._fallback_message)
        self.approvals = ApprovalsController(self.notifier)
        self.pairing = PairingController()
        self.runs = RecentRuns()
        self.refused = RefusedAddresses(self.notifier, self.allow_owner, self.show_settings)
        self.failure_notices = FailureNotices()
        self.confirm_dialog: ConfirmEndDialog | None = None
        self.folders = SharedFolders(tuple(r for r in config.settings.roots if r.is_dir()),
                                     self._apply_roots)
        self.menu = TrayMenu(self)
        self.automations_menu = AutomationsMenu(
            self._spawn, lambda: self.tunnel_settings[1] if self.tunnel_settings[0] else "", self.menu)
        self.menu.insertMenu(self.menu.folders, self.automations_menu)
        self.window = WindowController(self._spawn, self.approvals, self.log_tail.lines, self.open_logs)
        use_tray = tray_available() if tray is None else tray
        self.tray: Tray | None = None
        if use_tray:
            self._make_tray()
        self.status_window = StatusWindow(self.menu, quit_on_close=self.tray is None)
        # At login the panel often starts after us: keep looking for a tray, and move into it.
        self._tray_available = tray_available
        self.tray_watch = QTimer(self)
        self.tray_watch.setInterval(int(tray_watch_s * 1000))
        self.tray_watch.timeout.connect(self._look_for_tray)
        if tray is None and self.tray is None:
            self.tray_watch.start()
        self.folders_dialog: SharedFoldersDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.problem_dialog: ProblemDialog | None = None
        self.about_dialog: AboutDialog | None = None
        self.link_dialog: LinkDialog | None = None
        self.data_dir_picker: QFileDialog | None = None
        self.port_offer: tuple[int, str, int] | None = None  # (port, its holder, a free port)
        self.last_status: dict[str, Any] | None = None
        self.view: StatusView | None = None
        self.finished = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._message_click: Callable[[], Any] | None = None
        self._last_drives_notice = -DRIVES_NOTICE_INTERVAL_S
        self._quitting = False
        self._resample_timers = [QTimer(self), QTimer(self)]
        for timer, delay_ms in zip(self._resample_timers, (300, 2000)):
            timer.setSingleShot(True)
            timer.setInterval(delay_ms)
            timer.timeout.connect(self.refresh_status)
        self.supervisor.state_changed.connect(self._on_state)
        self.supervisor.engine_started.connect(self._wire)
        self.supervisor.engine_stopping.connect(self._unwire)
        self.approvals.changed.connect(self.refresh)
        # Runs change with every job that starts and ends; redrawing the tray's icon, menu and
        # status window each time cost a busy engine more than running the jobs did.
        self._runs_refresh = QTimer(self)
        self._runs_refresh.setSingleShot(True)
        self._runs_refresh.setInterval(RUNS_REFRESH_MS)
        self._runs_refresh.timeout.connect(self.refresh)
        self.runs.changed.connect(self._refresh_soon)
        self.runs.failed.connect(self._run_failed)
        self.refused.changed.connect(self._refused_changed)
        self.tunnel.state_changed.connect(lambda _s: self.refresh())
        self.refresh()

    def _make_tray(self) -> Tray:
        self.tray = Tray(self.menu, self.open_window)
        self.tray.icon.messageClicked.connect(self._on_message_clicked)
        return self.tray

    def _look_for_tray(self) -> None:
        if self._quitting or not self._tray_available():
            return
        self.tray_watch.stop()
        log.info("a system tray appeared; Flowork moves into it")
        tray = self._make_tray()
        self.status_window.quit_on_close = False
        self.refresh()
        tray.show()
        if self.status_window.isVisible() and not self.status_window.isMinimized():
            self.status_window.update_view(self.view)  # its note now says closing keeps Flowork
        else:
            self.status_window.hide()
        tray.message("Flowork is in the tray now", "Right-click the Flowork icon for the menu.")

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, start_engine: bool = True) -> None:
        """Load the keys, show the tray, start the engine (and the tunnel when configured)."""
        secrets = self.config.secrets
        self.engine_id = await asyncio.to_thread(self.config.engine_id)
        try:
            self.key_source = await asyncio.to_thread(load_or_create_key, self.config.data_dir)
        except Exception as exc:  # noqa: BLE001 - the engine start reports the folder problem
            log.warning("the secrets key could not be loaded yet: %s", exc)
        token, hostname = await asyncio.to_thread(
            lambda: (secrets.get("tunnel_token"), secrets.get("tunnel_hostname")))
        self.tunnel_settings = (token or "", hostname or "")  # the keyring is read off the loop, once
        if self.tray is not None:
            self.tray.show()
        elif self.hidden:
            self.status_window.showMinimized()
        else:
            self.status_window.bring_up()
        self.refresh()
        if token:
            self.tunnel.configure(token, hostname)
        if start_engine:
            await self.supervisor.start()
        self._announce(start_engine)

    def _announce(self, started: bool) -> None:
        """Say where Flowork went, once the engine's fate is known and with the icon of its
        state; a failed start says nothing here (its dialog says what went wrong)."""
        if self.tray is None or self.hidden:
            return
        self.refresh()
        if self.supervisor.state is State.RUNNING:
            self.tray.message("Flowork is running", "The engine is ready for the web GUI. "
                              "Right-click the Flowork icon for the menu.")
        elif not started:
            self.tray.message("Flowork is in the tray", "The engine is stopped: choose Start "
                              "engine in the Flowork icon's menu.")

    async def shutdown(self, *, suspend: bool = True) -> None:
        """Quit: the tunnel and the engine stop cleanly; nothing is left running. The engine
        keeps running workflows for its next start (`suspend`), or stops them."""
        self.tray_watch.stop()
        self.tunnel.stop()
        await self.supervisor.stop(suspend=suspend)
        self.approvals.detach()
        self.pairing.close_all()
        await self.notifier.aclose()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:  # Quit itself runs as one of them
                task.cancel()
        await asyncio.to_thread(self.config.close)  # settings writes already queued still land
        if self.tray is not None:
            self.tray.hide()
        self.window.hide()
        logging.getLogger().removeHandler(self.log_tail)
        for window in (self.status_window, self.folders_dialog, self.settings_dialog,
                       self.problem_dialog, self.data_dir_picker, self.about_dialog,
                       self.confirm_dialog, self.link_dialog):
            if window is not None:
                window.hide()
        self.finished.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a desktop action failed", exc_info=task.exception())

    # -- the engine --------------------------------------------------------------------------

    @property
    def engine(self) -> Engine | None:
        return self.supervisor.engine if self.supervisor.state is State.RUNNING else None

    def _make_engine(self) -> Engine:
        settings = self.config.settings
        config = EngineConfig(host="127.0.0.1", port=settings.port, engine_id=self.engine_id,
                              data_dir=self.config.data_dir, log_dir=self.config.log_dir,  # type: ignore[arg-type]
                              owners=settings.owners, roots=self.folders.roots,
                              protected=(self.config.folder,),
                              webhook_port=settings.webhook_port)
        return Engine(config, key_source=self.key_source)

    def _wire(self, engine: Engine) -> None:
        self._unsubscribe = engine.subscribe(self._on_event)
        engine.set_pairing_handler(self.pairing.ask)
        engine.on_owners_changed = self._owners_changed
        engine.on_drives_requested_empty = self._drives_requested_empty
        engine.on_address_refused = self.refused.on_refused
        self.last_status = engine.status().frame()
        self.approvals.attach(engine)
        self.automations_menu.attach(engine)
        self.window.attach(engine)
        self.refresh()

    def _unwire(self, engine: Engine) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        engine.set_pairing_handler(None)
        engine.on_owners_changed = None
        engine.on_drives_requested_empty = None
        engine.on_address_refused = None
        self.approvals.detach()
        self.automations_menu.detach()
        self.window.detach()
        self.pairing.close_all()
        self.runs.clear()
        self.last_status = None

    def _on_event(self, event: Event) -> None:
        frame_type = event.frame.get("type")
        engine = self.engine
        if frame_type in ("workflow_status_update", "NODE_EXECUTION_METRIC"):
            self.runs.on_frame(event.frame)
        if frame_type == "engine_status_update" and engine is not None:
            self.last_status = dict(event.frame)  # the engine's own figures, as the GUI gets them
            self.refresh()
        elif frame_type == "workflow_status_update" and engine is not None:
            # Coalesced: a busy engine sends thousands a second, the tray needs a few. A job
            # leaves the engine's job table right after its last event: sampled again after.
            for timer in self._resample_timers:
                if not timer.isActive():
                    timer.start()

    def _resample_status(self, engine: Engine) -> None:
        if engine is self.engine:
            self.last_status = engine.status().frame()
            self.refresh()

    def refresh_status(self) -> None:
        engine = self.engine
        if engine is not None:
            self._resample_status(engine)

    def menu_opened(self) -> None:
        """The menu (or Recent runs) is being looked at: fresh figures, and a failure the icon
        showed has now been seen."""
        self.runs.seen()
        self.refresh_status()
        if self._runs_refresh.isActive():  # shown now, not in a moment
            self.refresh()

    def _refresh_soon(self) -> None:
        if not self._runs_refresh.isActive():
            self._runs_refresh.start()

    def _run_failed(self, run: Run) -> None:
        held = self.failure_notices.admit(run)
        if held is None:
            log.info("run %s of %r failed (no notice: one was shown moments ago)", run.job_id, run.workflow)
            return
        text = run.failure()
        if run.started_by:
            text += f" (started by {run.started_by})"
        if held:
            text += f"\n{held} more run{'s' if held > 1 else ''} failed before this one: see Recent runs."
        show = lambda j=run.job_id: self.show_run(j)  # noqa: E731
        self.notifier.notify(f"Workflow failed: {run.workflow}", text,
                             buttons=[("Details…", show), ("Open web GUI", self.open_gui)],
                             on_clicked=show)

    def show_run(self, job_id: str) -> None:
        """A run from Recent runs or a failure notice: the Flowork window, on that run's detail
        (a failed run opens on its failing node)."""
        self.runs.seen()
        self.open_window(job_id)

    # -- asking before work is ended ---------------------------------------------------------

    def running_jobs(self) -> int:
        engine = self.engine
        return engine.status().running_jobs if engine is not None else 0

    def confirm_ending(self, ending: Ending, proceed: Callable[[bool], None]) -> bool:
        """Run `proceed(suspend=True)` now when no workflow is running; else say what becomes
        of the running ones first: the main choice keeps them (`proceed(True)`: the engine
        suspends them, they continue at its next start), the other stops them
        (`proceed(False)`). True: done now."""
        running = self.running_jobs()
        if not running:
            proceed(True)
            return True
        if self.confirm_dialog is not None:
            self.confirm_dialog.hide()
            self.confirm_dialog.deleteLater()
        engine = self.engine
        grace_s = (engine.config if engine is not None else EngineConfig).stop_grace_s
        dialog = ConfirmEndDialog(ending, running, len(self.approvals.pending), grace_s=grace_s)
        dialog.confirmed.connect(lambda: proceed(True))
        dialog.stop_chosen.connect(lambda: proceed(False))
        self.confirm_dialog = dialog
        dialog.show()
        dialog.raise_()
        return False

    async def _owners_changed(self, owners: list[str]) -> None:
        if owners:
            self.pairing.close_all()  # someone owns the engine now: no question is still open
        await self.config.save(owners=tuple(owners))

    def allow_owner(self, address: str) -> None:
        """Allow an address that was turned away (the notice's Allow): served at its next frame."""
        owners = self.config.settings.owners
        if address.lower() not in {o.lower() for o in owners}:
            owners += (address,)
        if self.engine is not None:
            self.engine.set_owners(list(owners))
        self._spawn(self.config.save(owners=owners))

    def _refused_changed(self) -> None:
        if self.settings_dialog is not None:
            self.settings_dialog.owners.set_refused(self.refused.recent)

    def _apply_roots(self, roots: tuple[Path, ...]) -> None:
        self._spawn(self.config.save(roots=roots))
        if self.engine is not None:
            self.engine.set_roots(list(roots))

    def _drives_requested_empty(self) -> None:
        now = time.monotonic()
        if now - self._last_drives_notice < DRIVES_NOTICE_INTERVAL_S:
            return
        self._last_drives_notice = now
        self.notifier.notify("Share a folder with Flowork",
                             "The web GUI asked for your folders, but none is shared yet. "
                             "Click to choose one.",
                             buttons=[("Choose a folder…", self.pick_folder)],
                             on_clicked=self.pick_folder)

    def _on_state(self, state: State) -> None:
        if state in (State.PORT_IN_USE, State.ERROR):
            self.show_error()
        elif state is State.RUNNING and self.problem_dialog is not None:
            self.problem_dialog.hide()
        self.refresh()

    def problem(self) -> Problem | None:
        """What went wrong, in the app's words; None while nothing is wrong."""
        sup = self.supervisor
        if sup.state not in (State.PORT_IN_USE, State.ERROR, State.RESTARTING):
            return None
        port = self.config.settings.port
        offer = self.port_offer if self.port_offer and self.port_offer[0] == port else None
        return describe_problem(sup.error_reason or "start_failed", sup.error, port=port,
                                data_dir=self.config.data_dir,  # type: ignore[arg-type]
                                free_port=offer[2] if offer else None,
                                holder=offer[1] if offer else "another program")

    # -- what the tray shows -----------------------------------------------------------------

    def make_view(self) -> StatusView:
        sup = self.supervisor
        notes: list[str] = []
        if (self.key_source is not None and self.key_source.location == "file") \
                or self.config.secrets.location == "file":
            notes.append("No usable OS keyring: keys are kept in files only you can read.")
        if self.tunnel.state is not TunnelState.OFF:
            notes.append(f"Tunnel: {self.tunnel.state.value}"
                         + (f" (wss://{self.tunnel.hostname})" if self.tunnel.hostname else ""))
        approvals = tuple((r.approval_id, "Approval waiting: {} · {}…".format(*describe(r)))
                          for r in self.approvals.pending)
        status = self.last_status
        runs = tuple((r.job_id, r.label()) for r in self.runs.runs)
        base: dict[str, Any] = dict(notes=tuple(notes), approvals=approvals, recent_runs=runs)
        if sup.state is State.RUNNING and sup.engine is not None:
            status = status or {}
            running = int(status.get("runningJobs") or 0)
            failed = self.runs.unseen_failure
            state = (TrayState.APPROVAL if approvals else TrayState.RUN_FAILED if failed
                     else TrayState.BUSY if running else TrayState.IDLE)
            headline = {TrayState.APPROVAL: "approval waiting",
                        TrayState.RUN_FAILED: f"“{failed.workflow}” failed" if failed else "",
                        TrayState.BUSY: f"running {plural(running, 'workflow')}",
                        TrayState.IDLE: "running"}[state]
            return StatusView(state=state, headline=headline, url=sup.engine.url,
                              engine_cpu_percent=status.get("engineCpuPercent"),
                              engine_memory_bytes=status.get("engineMemoryBytes"),
                              machine_cpu_percent=status.get("cpuPercent"),
                              machine_memory_percent=status.get("memoryPercent"),
                              running_jobs=running, clients=int(status.get("connectedClients") or 0),
                              engine_running=True, **base)
        problem = self.problem()
        if sup.state in (State.PORT_IN_USE, State.ERROR) and problem is not None:  # always both
            state = TrayState.PORT_IN_USE if sup.state is State.PORT_IN_USE else TrayState.ERROR
            return StatusView(state=state, headline=problem.headline,
                              **{**base, "notes": base["notes"] + (problem.text,)})
        if sup.state in (State.STARTING, State.RESTARTING, State.STOPPING):
            headline = {State.STARTING: "starting…", State.STOPPING: "stopping…",
                        State.RESTARTING: "restarting after a failure…"}[sup.state]
            extra = (problem.text,) if problem is not None else ()
            return StatusView(state=TrayState.STARTING, headline=headline, can_start=False,
                              **{**base, "notes": base["notes"] + extra})
        return StatusView(state=TrayState.STOPPED, headline="stopped", **base)

    def refresh(self) -> None:
        self._runs_refresh.stop()  # this one shows them
        self.view = self.make_view()
        self.menu.update_view(self.view)
        if self.tray is not None:
            self.tray.update_view(self.view)
        self.status_window.update_view(self.view)

    # -- menu actions ------------------------------------------------------------------------

    def start_engine(self) -> None:
        self._spawn(self.supervisor.start())

    def stop_engine(self) -> None:
        self.confirm_ending(STOPPING, lambda suspend: self._spawn(self.supervisor.stop(suspend=suspend)))

    def restart_engine(self) -> None:
        if self.supervisor.state is not State.STOPPED:  # a stopped engine stays stopped
            self.confirm_ending(RESTARTING, self._restart)

    def _restart(self, suspend: bool) -> None:
        self._spawn(self.supervisor.restart(suspend=suspend))

    def ws_url(self) -> str | None:
        engine = self.engine
        if engine is None:
            return None
        public = self.tunnel.public_url_base
        return f"{public}/?engineId={self.engine_id}" if public else engine.url

    def open_gui(self) -> None:
        url = self.ws_url()
        if url is None:
            return
        self.open_link(gui_link(self.config.settings.gui_url, url, self.engine_id))

    def open_link(self, link: str) -> None:
        self._spawn(self._open(link, "Browser did not open",
                               "Flowork could not open your web browser (it may be missing, or "
                               "it failed to start). Open this address in a browser yourself:"))

    async def _open(self, link: str, title: str, text: str, shown: str | None = None) -> bool:
        if await launch(link, self.opener):
            return True
        if self.link_dialog is not None:
            self.link_dialog.hide()
            self.link_dialog.deleteLater()
        self.link_dialog = LinkDialog(title, text, shown or link)
        self.link_dialog.show()
        self.link_dialog.raise_()
        return False

    def copy_engine_id(self) -> None:
        self._copy(self.engine_id, "Engine ID copied")

    def copy_ws_url(self) -> None:
        url = self.ws_url()
        if url is not None:
            self._copy(url, "WebSocket URL copied")

    def _copy(self, text: str, said: str) -> None:
        """Copy, and say so where the pointer is (the menu has closed by now)."""
        QGuiApplication.clipboard().setText(text)
        QToolTip.showText(QCursor.pos(), said)
        QTimer.singleShot(COPIED_TIP_MS, self, QToolTip.hideText)

    def show_approval(self, approval_id: str) -> None:
        self.approvals.show(approval_id)

    def show_folders(self) -> None:
        if self.folders_dialog is None:
            self.folders_dialog = SharedFoldersDialog(self.folders)
        self.folders_dialog.show()
        self.folders_dialog.raise_()

    def pick_folder(self) -> None:
        self.folders.pick()

    def show_settings(self) -> None:
        secrets = self.config.secrets
        values = SettingsValues(engine_id=self.engine_id, port=self.config.settings.port,
                                owners=self.config.settings.owners,
                                gui_url=self.config.settings.gui_url,
                                tunnel_token=self.tunnel_settings[0],
                                tunnel_hostname=self.tunnel_settings[1],
                                start_at_login=self.autostart_enabled())
        if self.key_source is not None and self.key_source.location == "file" or secrets.location == "file":
            secrets_note = (f"No usable OS keyring: the engine ID and tunnel token are in "
                            f"{secrets.fallback_path}, the secrets key in "
                            f"{self.key_source.detail if self.key_source else 'the data folder'}; "
                            f"both readable only by you.")
        else:
            secrets_note = "Kept in the OS keyring."
        if self.tunnel.state is TunnelState.NOT_INSTALLED or (
                self.tunnel.state is TunnelState.OFF and not _cloudflared_found()):
            from desktop.tunnel import INSTALL_HINT_HTML
            tunnel_note = INSTALL_HINT_HTML
        else:
            tunnel_note = f"{self.tunnel.state.value}. {self.tunnel.detail}".strip()
        if self.settings_dialog is not None:
            self.settings_dialog.hide()
            self.settings_dialog.deleteLater()
        dialog = SettingsDialog(values, secrets_note=secrets_note, tunnel_note=tunnel_note,
                                folders_text="\n".join(map(str, self.folders.roots)) or "none",
                                show_folders=self.show_folders, new_engine_id=new_engine_id,
                                data_dir=str(self.config.data_dir),
                                choose_data_dir=self.choose_data_folder,
                                refused=self.refused.recent)
        dialog.saved.connect(lambda v: self._spawn(self.apply_settings(v)))
        self.settings_dialog = dialog
        dialog.show()
        dialog.raise_()

    async def apply_settings(self, values: SettingsValues) -> None:
        settings = self.config.settings
        old_token, old_host = self.tunnel_settings
        id_changed = values.engine_id != self.engine_id
        port_changed = values.port != settings.port
        await asyncio.to_thread(self._store_secrets, values, id_changed)
        self.tunnel_settings = (values.tunnel_token, values.tunnel_hostname)
        await self.config.save(port=values.port, owners=values.owners, gui_url=values.gui_url)
        if id_changed:
            self.engine_id = values.engine_id
        if values.start_at_login != self.autostart_enabled():
            self.set_autostart(values.start_at_login)
        if (values.tunnel_token, values.tunnel_hostname) != (old_token, old_host):
            self.tunnel.configure(values.tunnel_token, values.tunnel_hostname)
        if self.engine is not None:
            self.engine.set_owners(list(values.owners))
        if (id_changed or port_changed) and self.supervisor.state is not State.STOPPED:
            if not self.confirm_ending(RESTARTING, self._restart):
                log.info("the new port or engine ID waits for the engine's restart")
        self.refresh()

    def _store_secrets(self, values: SettingsValues, id_changed: bool) -> None:
        secrets = self.config.secrets
        secrets.set("tunnel_token", values.tunnel_token or None)
        secrets.set("tunnel_hostname", values.tunnel_hostname or None)
        if id_changed:
            secrets.set("engine_id", values.engine_id)

    def autostart_enabled(self) -> bool:
        try:
            return self.autostart.is_enabled()
        except OSError as exc:
            log.warning("cannot read the start-at-login setting: %s", exc)
            return False

    def set_autostart(self, enabled: bool) -> None:
        try:
            self.autostart.set_enabled(enabled)
        except OSError as exc:
            log.error("cannot change the start-at-login setting: %s", exc)
            self._fallback_message("Flowork", f"Start at login could not be changed: {exc}", None)
        self.menu.refresh_autostart()

    def open_logs(self) -> None:
        self.open_folder(Path(self.config.log_dir))  # type: ignore[arg-type]

    def open_folder(self, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("cannot create %s: %s", folder, exc)
        self._spawn(self._open(QUrl.fromLocalFile(str(folder)).toString(), "Folder did not open",
                               "Flowork could not open a file manager. The folder is:", str(folder)))

    def show_about(self) -> None:
        if self.about_dialog is not None:
            self.about_dialog.hide()
            self.about_dialog.deleteLater()
        dialog = AboutDialog(version=__version__, engine_id=self.engine_id,
                             data_dir=Path(self.config.data_dir),  # type: ignore[arg-type]
                             log_dir=Path(self.config.log_dir),  # type: ignore[arg-type]
                             config_dir=self.config.folder)
        dialog.open_folder.connect(self.open_folder)
        self.about_dialog = dialog
        dialog.show()
        dialog.raise_()

    def open_help(self) -> None:
        self.open_link(HELP_URL)

    def check_for_updates(self) -> None:
        """The release page, where a newer version would be; nothing is fetched in the
        background, ever."""
        self.open_link(RELEASES_URL)

    def request_quit(self) -> None:
        """Quit from the menu or the window: say first what becomes of running workflows."""
        self.confirm_ending(QUITTING, lambda suspend: self.quit(suspend=suspend))

    def quit(self, *, suspend: bool = True) -> None:
        """Quit now (also what SIGTERM and SIGINT do: the system asked). Running workflows
        are kept to continue at the next start, unless `suspend` is False (stopped)."""
        if not self._quitting:
            self._quitting = True
            self._spawn(self.shutdown(suspend=suspend))

    def show_status_window(self) -> None:
        self.status_window.bring_up()

    def open_window(self, job_id: str | None = None) -> None:
        """The Flowork window: runs, approvals, automations, the engine's load."""
        self.window.open(job_id)

    def show_error(self) -> None:
        """The problem dialog: the app's sentences, a button per fix, the log lines in details."""
        if self.supervisor.state is State.PORT_IN_USE:
            self._spawn(self._show_port_conflict())
            return
        self._show_problem()

    def _show_problem(self) -> None:
        problem = self.problem()
        if problem is None:
            return
        if self.problem_dialog is not None:
            self.problem_dialog.hide()
            self.problem_dialog.deleteLater()
        offer = self.port_offer
        dialog = ProblemDialog(problem, free_port=offer[2] if offer else None,
                               log_lines=self.supervisor.error_log or self.log_tail.lines(20))
        dialog.action_chosen.connect(self._problem_action)
        self.problem_dialog = dialog
        dialog.show()
        dialog.raise_()

    def _problem_action(self, action: str) -> None:
        if action == OTHER_PORT:
            self._spawn(self.use_another_port())
        elif action == CHOOSE_FOLDER:
            self.choose_data_folder()
        elif action in (RETRY, RESTART):
            self.restart_engine()
        elif action == OPEN_LOGS:
            self.open_logs()
        elif action == SETTINGS:
            self.show_settings()

    async def _show_port_conflict(self) -> None:
        port = self.config.settings.port
        holder, free = await asyncio.gather(asyncio.to_thread(port_holder, port),
                                            asyncio.to_thread(free_port_near, port))
        if self.supervisor.state is not State.PORT_IN_USE:
            return
        self.port_offer = (port, holder, free)
        self.refresh()
        self._show_problem()

    async def use_another_port(self) -> None:
        """The port the dialog offered (if it is still free), else the next free one."""
        current = self.config.settings.port
        offered = self.port_offer[2] if self.port_offer and self.port_offer[0] == current else None
        port = await asyncio.to_thread(free_port_near, offered - 1 if offered else current)
        log.info("using port %d instead of %d", port, current)
        await self.config.save(port=port)
        await self.supervisor.start()

    def choose_data_folder(self) -> QFileDialog:
        """The native folder picker (non-blocking); the engine restarts on the chosen folder."""
        if self.data_dir_picker is not None and self.data_dir_picker.isVisible():
            self.data_dir_picker.raise_()
            return self.data_dir_picker
        self.data_dir_picker = folder_picker("Choose Flowork's data folder",
                                             lambda folder: self._spawn(self.use_data_folder(folder)))
        return self.data_dir_picker

    async def use_data_folder(self, folder: Path) -> None:
        folder = folder.expanduser().resolve()
        log.info("data folder: %s (was %s)", folder, self.config.data_dir)
        await self.config.save(data_dir=folder)
        self.config.data_dir = folder
        try:
            self.key_source = await asyncio.to_thread(load_or_create_key, folder)
        except Exception as exc:  # noqa: BLE001 - the engine's start reports the folder's problem
            log.warning("the secrets key could not be loaded from %s: %s", folder, exc)
            self.key_source = None
        if self.settings_dialog is not None:
            self.settings_dialog.set_data_dir(str(folder))
        self.confirm_ending(RESTARTING, self._restart)

    # -- messages ----------------------------------------------------------------------------

    def _fallback_message(self, title: str, text: str, on_clicked: Callable[[], Any] | None) -> None:
        self._message_click = on_clicked
        if self.tray is not None and QSystemTrayIcon.supportsMessages():
            self.tray.message(title, text)
        else:
            self.status_window.note.setText(f"{title}: {text}")
            if on_clicked is not None:
                on_clicked()

    def _on_message_clicked(self) -> None:
        if self._message_click is not None:
            callback, self._message_click = self._message_click, None
            callback()


def _cloudflared_found() -> bool:
    from desktop.tunnel import find_cloudflared
    return find_cloudflared() is not None
