"""From a preset's trigger nodes to rule specs, and from a stored rule to a working one.

A trigger component says what it is with `trigger_kind` in its manifest (`schedule`,
`webhook`, `file_watch`); `manual_trigger` has none and makes no rule.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from engine.store.triggers import RuleRecord, RuleSpec
from engine.triggers import options
from engine.triggers.options import Policy, RuleError, WatchOptions, WebhookOptions
from engine.triggers.overlap import OverlapGate
from engine.triggers.schedule import Schedule, parse_schedule

KINDS = ("schedule", "webhook", "file_watch")


def trigger_specs(workflow: dict[str, Any], find: Callable[[str], Any]) -> list[RuleSpec]:
    """One spec per node whose module is a trigger component with a `trigger_kind`."""
    specs = []
    for node in workflow.get("nodes") or []:
        if not isinstance(node, dict):
            continue
        module_id = node.get("module_id")
        component = find(module_id) if isinstance(module_id, str) else None
        if component is None or component.type != "triggers":
            continue
        kind = component.manifest.get("trigger_kind")
        if kind not in KINDS:
            continue
        config = node.get("config_values")
        specs.append(RuleSpec(str(node.get("id")), module_id, kind,
                              dict(config) if isinstance(config, dict) else {}))
    return specs


def node_name(workflow: dict[str, Any] | None, node_id: str) -> str:
    for node in (workflow or {}).get("nodes") or []:
        if isinstance(node, dict) and str(node.get("id")) == node_id:
            return str(node.get("name") or node.get("module_id") or node_id)
    return node_id


@dataclass
class Parsed:
    policy: Policy
    schedule: Schedule | None = None
    webhook: WebhookOptions | None = None
    watch: WatchOptions | None = None


def parse(kind: str, config: dict[str, Any], anchor: float) -> Parsed:
    """The rule's options, or RuleError. Pure: the folder check is `check_folder`."""
    parsed = Parsed(options.policy(config))
    if kind == "schedule":
        parsed.schedule = parse_schedule(config, anchor)
    elif kind == "webhook":
        parsed.webhook = options.webhook(config)
    elif kind == "file_watch":
        parsed.watch = options.watch(config)
    else:
        raise RuleError("module_id", f"names an unknown kind of trigger {kind!r}")
    return parsed


def check_folder(shared_folders: Any, folder: str) -> Path:
    """The watched folder's real path inside a shared folder (EngineError otherwise).
    Blocking: call it off the loop."""
    from engine.protocol.errors import EngineError, ErrorCode
    real = shared_folders.resolve_inside(folder)
    if not real.is_dir():
        raise EngineError(ErrorCode.INVALID_FIELD, f"The path {folder} is not a folder.", field="folder")
    return real


@dataclass
class ActiveRule:
    """A stored rule with its options parsed and its live state."""

    record: RuleRecord
    parsed: Parsed | None
    gate: OverlapGate
    problem: str | None = None          # why the engine disabled it (kept in the record too)
    next_run: float | None = None
    folder: Path | None = None          # file watches: the real folder being watched
    workflow_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rule_id(self) -> str:
        return self.record.rule_id

    @property
    def owner(self) -> str:
        return self.record.owner

    @property
    def active(self) -> bool:
        return self.record.enabled and self.problem is None and self.parsed is not None

    def summary(self) -> str:
        parsed = self.parsed
        if parsed is None:
            return self.record.kind
        if parsed.schedule is not None:
            return parsed.schedule.summary()
        if parsed.webhook is not None:
            method = "any method" if parsed.webhook.method == "ANY" else parsed.webhook.method
            answer = "answers when the run ends" if parsed.webhook.respond == "when_finished" else "answers at once"
            return f"webhook, {method}, {answer}"
        if parsed.watch is not None:
            return (f"{', '.join(parsed.watch.events)} in {parsed.watch.folder}"
                    + (f" ({parsed.watch.pattern})" if parsed.watch.pattern != "*" else ""))
        return self.record.kind


def matches(pattern: str, path: Path, folder: Path) -> bool:
    """A glob on the file name, or on the path relative to the folder when it has a slash."""
    if pattern in ("", "*"):
        return True
    if "/" in pattern:
        try:
            return fnmatch.fnmatch(path.relative_to(folder).as_posix(), pattern)
        except ValueError:
            return False
    return fnmatch.fnmatch(path.name, pattern)
