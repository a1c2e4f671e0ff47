"""The Engine: the public Python API that the CLI and the desktop app use.

It wires the store, the components, the shared folders, the event bus, the runtime and the
server, and exposes start/stop, status, owners, shared folders, pairing and approvals. The
desktop app uses only this class (never server internals), so the engine stays runnable
headless and testable without Qt.
"""

from __future__ import annotations

import asyncio
import inspect
import errno
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Awaitable, Callable

import platformdirs

from cryptography.fernet import Fernet

from engine import __version__, heap
from engine.auth.access import AccessRequest
from engine.auth.frame_auth import FrameAuthenticator, OwnerList, normalize_address
from engine.components.catalog import ComponentCatalog
from engine.config import APP_NAME, CONFIG_FILE, EngineConfig
from engine.datasets import DatasetFeed, OwnerDatasets
from engine.events import Delivery, Event, EventBus, Listener
from engine.files import SharedFolders
from engine.handlers import build_registry
from engine.runs import RunQueries
from engine.server.server import EngineServer
from engine.status import EngineStatus, ResourceSampler
from engine.store.datasets import DatasetLimits, DatasetsStore
from engine.store.db import Database, disk_full_message
from engine.store.history import HistoryStore
from engine.store.presets import PresetsStore
from engine.store.secret_key import KEY_FILE, KeySource, load_or_create_key
from engine.store.settings import SettingsStore
from engine.store.triggers import TriggersStore
from engine.store.variables import VariablesStore
from engine.storage_files import (PRIVATE_DIR, PRIVATE_FILE, create_private_file, make_private_dir,
                                  restrict)
from engine.workers import Workers

log = logging.getLogger(__name__)

DB_FILE = "engine.sqlite3"


class EngineStartError(RuntimeError):
    """The engine cannot start; the text is one sentence a person can act on."""

    def __init__(self, message: str, *, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason  # "port_in_use", "data_dir", "other"


class Engine:
    def __init__(self, config: EngineConfig, *, key_source: KeySource | None = None) -> None:
        if not config.engine_id:
            raise ValueError("an EngineConfig without engine_id; call config.ensure_engine_id first")
        self.config = config
        self.version = __version__
        self.bus = EventBus()
        self.owners = OwnerList.of(config.owners)
        self.shared_folders = SharedFolders(config.roots, protected=self.own_folders)
        self.components = ComponentCatalog(config.data_dir / "components")
        self.workers = Workers()  # blocking CPU work, off the loop (see engine/workers.py)
        self._key_source = key_source
        self.key_location: str | None = None
        self.db: Database | None = None
        self.settings: SettingsStore
        self.variables: VariablesStore
        self.sealer: Fernet | None = None
        self.presets: PresetsStore
        self.history: HistoryStore
        self.datasets: DatasetsStore
        self.dataset_feed: DatasetFeed
        self.authenticator = FrameAuthenticator(config.engine_id, self.owners,
                                                freshness_s=config.freshness_s)
        self.server = EngineServer(self, build_registry(), self.authenticator)
        self.server.on_authenticated = self._on_authenticated
        self._sampler: ResourceSampler | None = None
        self._last_status: EngineStatus | None = None
        self._status_task: asyncio.Task[None] | None = None
        self._bus_unsubscribe: Callable[[], None] | None = None
        self.runtime: Any = None  # engine.runtime.Runtime, created in start()
        # The run queries and controls the desktop window uses (engine/runs.py), from start().
        self.runs: RunQueries | None = None
        self._runs_unsubscribe: Callable[[], None] | None = None
        # engine.triggers.service.Automations (rules, schedules, webhooks, folder watches),
        # created in start(); the desktop's Automations menu uses it.
        self.automations: Any = None
        self._error_workflow: Any = None
        self._background: set[asyncio.Task[Any]] = set()
        # May return an awaitable (e.g. a save on a worker thread): pairing awaits it, so the
        # new owner is on disk before the frame that triggered pairing is answered.
        self.on_owners_changed: Callable[[list[str]], Awaitable[None] | None] | None = None
        self.on_drives_requested_empty: Callable[[], None] | None = None
        # A validly signed frame of a non-owner was refused while owners exist (every such
        # frame: the listener rate-limits what it shows). Must not block.
        self.on_address_refused: Callable[[AccessRequest], None] | None = None
        self.running = False
        # Why the engine broke (an essential task ended while running), or None; see wait_failed.
        self.failure: str | None = None
        self._failed: asyncio.Future[str | None] | None = None  # one per run of start()
        self._gc_before: heap.Thresholds | None = None  # the collector's thresholds before start

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open storage, load components, start the runtime and listen. Raises EngineStartError."""
        if self.running:
            return
        self.failure = None
        await asyncio.to_thread(self._prepare_data_dir)
        self.db = Database(self.config.data_dir / DB_FILE)
        try:
            await self.db.open()
        except Exception as exc:
            await self.db.close()
            full = await asyncio.to_thread(disk_full_message, self.config.data_dir)
            if full is not None:
                raise EngineStartError(f"{full} Free some space on that disk (or choose another "
                                       f"data folder with --data-dir) and start again.",
                                       reason="data_dir") from exc
            raise EngineStartError(f"The engine cannot open its database in {self.config.data_dir}: {exc}.",
                                   reason="data_dir") from exc
        self.datasets = DatasetsStore(self.db)
        self.dataset_feed = DatasetFeed(self.datasets)
        try:
            key = self._key_source or await asyncio.to_thread(load_or_create_key, self.config.data_dir)
            self.key_location = key.location
            self.settings = SettingsStore(self.db)
            self.variables = VariablesStore(self.db, key.key)
            self.sealer = Fernet(key.key)  # checkpoints of jobs with secrets (engine/store/checkpoints.py)
            self.presets = PresetsStore(self.db)
            self.history = HistoryStore(self.db)
            await asyncio.to_thread(self.components.scan)
            self.runtime = _make_runtime(self)
            await self.runtime.start()
            self.runs = RunQueries(self.history, self.presets, lambda: self.runtime)
            self._runs_unsubscribe = self.bus.subscribe(self.runs.on_event, RunQueries.EVENT_TYPES)
            self._bus_unsubscribe = self.bus.subscribe(self.server.deliver)
            await self._start_automations(key.key)
            await self._listen()
        except BaseException:
            await self._teardown()
            raise
        self._sampler = ResourceSampler()
        self._status_task = asyncio.create_task(self._publish_status_forever(), name="engine-status")
        self.running = True
        self._failed = asyncio.get_running_loop().create_future()
        self._watch_essential({"the WebSocket server": self.server.serve_task,
                               "the status publisher": self._status_task,
                               **self.runtime.essential_tasks(),
                               **self.automations.essential_tasks()})
        self._gc_before = heap.freeze_startup_objects()
        log.info("engine %s listening on %s", self.version, self.url)

    async def _listen(self) -> None:
        try:
            await self.server.start(self.config.host, self.config.port)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
                raise EngineStartError(
                    f"Port {self.config.port} on {self.config.host} is already in use by another "
                    f"program; stop it or choose another port with --port.",
                    reason="port_in_use") from None
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
                raise EngineStartError(f"The engine cannot listen on {self.config.host}:"
                                       f"{self.config.port}: {exc.strerror}.") from None
            raise EngineStartError(f"The engine cannot listen on {self.config.host}:"
                                   f"{self.config.port}: {exc}.") from None
        if self.config.port == 0:  # an ephemeral port (tests, benchmarks): report the real one
            self.config = replace(self.config, port=self.server.bound_port)

    async def _start_automations(self, key: bytes) -> None:
        from engine.triggers.error_workflow import ErrorWorkflow
        from engine.triggers.launch import RuntimeStarter
        from engine.triggers.service import Automations, WebhookConfig
        assert self.db is not None
        starter = RuntimeStarter(lambda: self.runtime)
        config = self.config
        self.automations = Automations(
            store=TriggersStore(self.db, key), presets=self.presets,
            find_component=lambda module_id: self.runtime.loader.find(module_id) if self.runtime else None,
            shared_folders=self.shared_folders, starter=starter, variables=self.variables,
            # The list is whole each time: a newer one replaces one still queued for a client.
            publish=lambda owner, frame, delivery: self.bus.publish(
                Event(normalize_address(owner), frame, delivery, "triggers_list")),
            webhook=WebhookConfig(config.webhooks, config.webhook_host, config.webhook_port,
                                  config.webhook_max_body))
        await self.automations.start()
        self._error_workflow = ErrorWorkflow(settings=self.settings, presets=self.presets,
                                             starter=starter, subscribe=self.bus.subscribe)
        self._error_workflow.start()

    def _prepare_data_dir(self) -> None:
        folder = self.config.data_dir
        try:
            make_private_dir(folder)
            fixed = [str(p) for p, mode in [(folder, PRIVATE_DIR)] + [
                (folder / name, PRIVATE_FILE) for name in (DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm",
                                                           CONFIG_FILE, KEY_FILE)] if restrict(p, mode)]
            if fixed:
                log.warning("other users of this computer could read %s; restricted to the owner "
                            "only (folders 0700, files 0600)", ", ".join(fixed))
            create_private_file(folder / DB_FILE)
            probe = folder / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            full = disk_full_message(folder) if exc.errno == errno.ENOSPC else None
            if full is not None:
                raise EngineStartError(f"{full} Free some space on that disk (or choose another "
                                       f"data folder with --data-dir) and start again.",
                                       reason="data_dir") from None
            raise EngineStartError(f"The data folder {folder} is not writable ({exc.strerror}); "
                                   f"choose another with --data-dir.", reason="data_dir") from None

    async def stop(self, *, suspend: bool = True) -> None:
        """Stop listening, then the jobs, then storage. With `suspend` (the default) running
        nodes get a grace period and every unfinished job is kept for the next start (durable
        jobs); without, the jobs are stopped (recorded STOPPED). Also what to do with an engine
        that failed (see wait_failed) before starting a new one."""
        if not self.running:
            return
        self.running = False
        heap.thaw(self._gc_before)
        self._gc_before = None
        if self._failed is not None and not self._failed.done():
            self._failed.set_result(None)  # stopped as asked: what ends from here on is no failure
        await self._teardown(suspend=suspend)
        log.info("engine stopped")

    async def wait_failed(self) -> str | None:
        """Wait until the running engine breaks: one of its essential tasks (the server, the
        status publisher, the runtime's history recorder and retention) ended without stop()
        being asked. Returns the reason, a sentence for people; the engine then no longer
        works as it should: stop it and start another. Returns None once the engine is
        stopped as asked (or if it is not running)."""
        if self._failed is None:
            return None
        return await asyncio.shield(self._failed)

    def _watch_essential(self, tasks: dict[str, asyncio.Task[Any] | None]) -> None:
        failed = self._failed
        assert failed is not None
        for what, task in tasks.items():
            if task is not None:
                task.add_done_callback(lambda done, what=what: self._essential_ended(what, done, failed))

    def _essential_ended(self, what: str, task: asyncio.Task[Any],
                         failed: asyncio.Future[str | None]) -> None:
        if failed.done():
            return  # this run was stopped as asked, or it already broke
        exc = None if task.cancelled() else task.exception()
        if task.cancelled():
            reason = f"{what} was cancelled"
        elif exc is not None:
            reason = f"{what} failed ({type(exc).__name__}: {exc})"
        else:
            reason = f"{what} ended"
        self.failure = reason
        log.error("the engine no longer works: %s", reason, exc_info=exc)
        failed.set_result(reason)

    async def _teardown(self, *, suspend: bool = True) -> None:
        self.workers.shutdown()
        if self._status_task is not None:
            self._status_task.cancel()
            try:
                await self._status_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - a failure was reported already
                pass
            self._status_task = None
        await self.server.stop()
        if self._error_workflow is not None:
            await self._error_workflow.stop()
            self._error_workflow = None
        if self.automations is not None:
            await self.automations.stop()
            self.automations = None
        if self.runtime is not None:
            await self.runtime.stop(suspend=suspend)
            self.runtime = None
        if self.db is not None:
            await self.dataset_feed.close()
            await self.datasets.close()  # rows appended by the last nodes are written
        for unsubscribe in (self._bus_unsubscribe, self._runs_unsubscribe):
            if unsubscribe is not None:
                unsubscribe()
        self._bus_unsubscribe = self._runs_unsubscribe = None
        if self.db is not None:
            await self.db.close()
            self.db = None

    @property
    def url(self) -> str:
        return self.config.url

    # -- status ------------------------------------------------------------------------------

    def status(self) -> EngineStatus:
        """A fresh snapshot (cheap: psutil reads, no blocking calls)."""
        sampler = self._sampler or ResourceSampler()
        cpu, mem, rss, own_cpu, uptime = sampler.sample()
        running = self.runtime.running_job_count() if self.runtime is not None else 0
        self._last_status = EngineStatus(
            engine_id=self.config.engine_id, is_busy=running > 0, cpu_percent=cpu,
            memory_percent=mem, running_jobs=running, clients=self.server.client_count,
            engine_memory_bytes=rss, engine_cpu_percent=own_cpu, version=self.version,
            url=self.url, uptime_s=uptime)
        return self._last_status

    async def _publish_status_forever(self) -> None:
        while True:
            self.bus.publish(Event(None, self.status().frame(), Delivery.LATEST, "engine_status"))
            await asyncio.sleep(self.config.status_interval)

    def _on_authenticated(self, conn: Any, owner: str, first_on_connection: bool) -> None:
        if first_on_connection:
            status = self.status()
            conn.send(status.frame(), Delivery.LATEST, "engine_status")
        if self.runtime is not None:
            for frame in self.runtime.snapshot(owner):
                conn.send(frame)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Listen to every event the engine publishes (status, job events, approvals)."""
        return self.bus.subscribe(listener)

    def datasets_for(self, owner: str, settings: dict[str, Any]) -> OwnerDatasets:
        """The owner's datasets for a job's modules (`ctx.datasets`), within the limits in
        the owner's `settings`."""
        return OwnerDatasets(owner, self.datasets, self.dataset_feed,
                             DatasetLimits.from_settings(settings))

    def publish_to_owner(self, owner: str, frame: dict[str, Any],
                         delivery: Delivery = Delivery.ESSENTIAL) -> None:
        self.bus.publish(Event(normalize_address(owner), frame, delivery))

    # -- owners, pairing, shared folders -----------------------------------------------------

    def set_owners(self, addresses: list[str]) -> None:
        self.owners.replace(addresses)
        self.server.owners_changed()

    async def add_owner(self, address: str) -> None:
        self.owners.add(address)
        if self.on_owners_changed is not None:
            saved = self.on_owners_changed(list(self.owners))
            if inspect.isawaitable(saved):
                await saved

    def set_pairing_handler(self, handler: Callable[[AccessRequest], Awaitable[bool]] | None) -> None:
        """With an empty allow-list, `handler(request)` decides whether a new signer may pair;
        the request says who asks and from where. One question at a time, bounded by
        `pairing_timeout_s`; a denied address is not asked about for `pairing_cooldown_s`."""
        self.server.pairing_handler = handler

    def set_roots(self, roots: list[Path]) -> None:
        self.shared_folders.replace(roots)
        if self.automations is not None:  # folder watches outside the new set stop, with a reason
            task = asyncio.ensure_future(self.automations.roots_changed())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def own_folders(self) -> list[tuple[Path, str]]:
        """What no shared folder ever reaches, whatever is shared (engine/files.py checks it by
        identity): the data folder (database, secrets key, config.json), the log folder, the
        desktop app's config folder (its secrets fallback file) and the keyring's file backends."""
        config = self.config
        data = config.data_dir
        own = [(data, "the engine's data folder"),
               (config.resolved_log_dir(), "the engine's log folder"),
               (Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)), "the desktop app's config folder"),
               (Path(platformdirs.user_data_dir("python_keyring", appauthor=False)), "the keyring's fallback files")]
        own += [(folder, "the desktop app's config folder") for folder in config.protected]
        own += [(data / name, "the engine's data folder")
                for name in (KEY_FILE, DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm", CONFIG_FILE)]
        return own

    @property
    def roots(self) -> tuple[Path, ...]:
        return self.shared_folders.roots

    @property
    def approvals(self) -> Any:
        """engine.runtime.approvals.ApprovalCenter: subscribe, pending, resolve."""
        if self.runtime is None:
            raise RuntimeError("the engine is not running")
        return self.runtime.approvals


def _make_runtime(engine: Engine) -> Any:
    """The runtime, handed the few services it uses (not the Engine)."""
    from engine.runtime.runtime import Runtime  # imported late: it imports the store modules
    from engine.runtime.services import RuntimeLimits, RuntimeServices
    assert engine.db is not None
    return Runtime(RuntimeServices(
        db=engine.db, publish=engine.bus.publish, workers=engine.workers,
        components=engine.components, settings=engine.settings, variables=engine.variables,
        presets=engine.presets, history=engine.history, shared_folders=engine.shared_folders,
        datasets_for=engine.datasets_for,
        limits=RuntimeLimits(max_node_runs=engine.config.max_node_runs,
                             approval_timeout_s=engine.config.approval_timeout_s,
                             checkpoints=engine.config.checkpoints,
                             suspend_after_s=engine.config.suspend_after_s,
                             stop_grace_s=engine.config.stop_grace_s),
        sealer=engine.sealer))
