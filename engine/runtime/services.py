"""What the runtime uses of the engine: one small typed object, handed in by the Engine
(engine/app.py), instead of the whole Engine. The runtime hands each of its parts less still
(engine/runtime/job.py `JobServices`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from engine.components.catalog import ComponentCatalog
    from engine.events import Event
    from engine.files import SharedFolders
    from engine.store.checkpoints import Sealer
    from engine.store.db import Database
    from engine.store.history import HistoryStore
    from engine.store.presets import PresetsStore
    from engine.store.settings import SettingsStore
    from engine.store.variables import VariablesStore
    from engine.workers import Workers


@dataclass(frozen=True)
class RuntimeLimits:
    max_node_runs: int = 10_000       # the loop guard, per top-level job
    approval_timeout_s: float = 3600.0
    checkpoints: bool = True          # durable jobs: checkpoints at node boundaries
    suspend_after_s: float = 65.0     # a job that only waits this long is released from memory
    stop_grace_s: float = 5.0         # a graceful stop lets running nodes finish this long


@dataclass(frozen=True)
class RuntimeServices:
    db: "Database"                    # the jobs store and the history recorder write here
    publish: Callable[["Event"], None]  # the event bus: the server routes frames to owners
    workers: "Workers"                # CPU work off the loop (loading modules)
    components: "ComponentCatalog"
    settings: "SettingsStore"         # read per job: preview size, approvals, retention
    variables: "VariablesStore"       # {{vars.NAME}} and the secrets to mask
    presets: "PresetsStore"           # sub-workflows
    history: "HistoryStore"           # request_job_status of a job that ended
    shared_folders: "SharedFolders"   # ctx.resolve_path
    datasets_for: Callable[[str, Any], Any] | None = None  # ctx.datasets: an owner's, within their settings
    limits: RuntimeLimits = RuntimeLimits()
    sealer: "Sealer | None" = None    # encrypts checkpoints of jobs with secrets (the engine's key)
