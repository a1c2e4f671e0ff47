"""Automation rules (one per trigger node of a saved preset), their last fire and run, and the
engine-wide "paused" switch. The only module that touches those tables.

A webhook's token is a bearer secret: it is kept Fernet-encrypted with the engine's key, like
secret variables, and decrypted on the database thread.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from engine.store.db import Database

TOKEN_BYTES = 32


@dataclass(frozen=True)
class RuleSpec:
    """What a trigger node of a preset asks for."""

    node_id: str
    module_id: str
    kind: str
    config: dict[str, Any]


@dataclass(frozen=True)
class RuleRecord:
    rule_id: str
    owner: str
    preset_name: str
    preset_version: int
    node_id: str
    module_id: str
    kind: str
    config: dict[str, Any]
    enabled: bool
    disabled_reason: str | None
    token: str | None
    created_at: float
    updated_at: float
    last_fire: float | None = None
    last_job_id: str | None = None
    last_status: str | None = None
    last_at: float | None = None


@dataclass
class RuleState:
    """Progress written in batches: the last fire (for misfires) and the last run."""

    last_fire: float | None = None
    last_job_id: str | None = None
    last_status: str | None = None
    last_at: float | None = None
    fields: set[str] = field(default_factory=set)


class TriggersStore:
    def __init__(self, db: Database, key: bytes) -> None:
        self._db = db
        self._fernet = Fernet(key)

    async def all(self) -> list[RuleRecord]:
        return await self._db.run(self._all)

    async def sync_preset(self, owner: str, preset_name: str, version: int,
                          specs: list[RuleSpec]) -> tuple[list[RuleRecord], list[str]]:
        """Make the preset's rules match `specs` in one transaction. A node keeps its rule
        (id, token, a user's "disabled"); a rule the engine had disabled for a reason is
        enabled again, since the new settings are checked anew. Returns (the preset's rules,
        ids removed)."""
        return await self._db.transaction(self._sync, owner, preset_name, version, specs)

    async def remove_preset(self, owner: str, preset_name: str) -> list[str]:
        return await self._db.transaction(_remove_preset, owner, preset_name)

    async def set_enabled(self, rule_id: str, enabled: bool, reason: str | None = None) -> bool:
        return await self._db.transaction(_set_enabled, rule_id, enabled, reason)

    async def write_states(self, states: dict[str, RuleState]) -> None:
        await self._db.transaction(_write_states, states)

    async def flag(self, name: str) -> str | None:
        return await self._db.run(_flag, name)

    async def set_flag(self, name: str, value: str) -> None:
        await self._db.transaction(_set_flag, name, value)

    # -- on the database thread ---------------------------------------------------------------

    def _decode(self, row: sqlite3.Row | tuple[Any, ...]) -> RuleRecord:
        (rule_id, owner, preset_name, version, node_id, module_id, kind, config, enabled,
         reason, token, created, updated, last_fire, last_job, last_status, last_at) = row
        plain = None
        if token is not None:
            try:
                plain = self._fernet.decrypt(token).decode("utf-8")
            except InvalidToken:
                plain = None  # a key that changed: the rule is disabled by its owner below
        return RuleRecord(rule_id, owner, preset_name, version, node_id, module_id, kind,
                          json.loads(config), bool(enabled), reason, plain, created, updated,
                          last_fire, last_job, last_status, last_at)

    def _all(self, conn: sqlite3.Connection) -> list[RuleRecord]:
        return [self._decode(r) for r in conn.execute(_SELECT + " ORDER BY created_at, rule_id")]

    def _sync(self, conn: sqlite3.Connection, owner: str, preset_name: str, version: int,
              specs: list[RuleSpec]) -> tuple[list[RuleRecord], list[str]]:
        now = time.time()
        existing = {r.node_id: r for r in (self._decode(row) for row in conn.execute(
            _SELECT + " WHERE address = ? AND preset_name = ?", (owner, preset_name)))}
        wanted = {spec.node_id for spec in specs}
        removed = [r.rule_id for node_id, r in existing.items() if node_id not in wanted]
        conn.executemany("DELETE FROM trigger_rules WHERE rule_id = ?", [(i,) for i in removed])
        for spec in specs:
            old = existing.get(spec.node_id)
            token = old.token if old is not None else None
            if spec.kind == "webhook" and token is None:
                token = secrets.token_urlsafe(TOKEN_BYTES)
            sealed = self._fernet.encrypt(token.encode("utf-8")) if token else None
            config = json.dumps(spec.config, ensure_ascii=False, separators=(",", ":"))
            if old is None:
                conn.execute(
                    "INSERT INTO trigger_rules (rule_id, address, preset_name, preset_version, "
                    "node_id, module_id, kind, config, enabled, disabled_reason, token, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, NULL, ?, ?, ?)",
                    ("r-" + uuid.uuid4().hex[:16], owner, preset_name, version, spec.node_id,
                     spec.module_id, spec.kind, config, sealed, now, now))
            else:
                enabled = old.enabled or old.disabled_reason is not None
                conn.execute(
                    "UPDATE trigger_rules SET preset_version = ?, module_id = ?, kind = ?, "
                    "config = ?, enabled = ?, disabled_reason = NULL, token = ?, updated_at = ? "
                    "WHERE rule_id = ?",
                    (version, spec.module_id, spec.kind, config, int(enabled), sealed, now,
                     old.rule_id))
        rules = [self._decode(row) for row in conn.execute(
            _SELECT + " WHERE address = ? AND preset_name = ? ORDER BY created_at, rule_id",
            (owner, preset_name))]
        return rules, removed


_SELECT = ("SELECT rule_id, address, preset_name, preset_version, node_id, module_id, kind, "
           "config, enabled, disabled_reason, token, created_at, updated_at, last_fire, "
           "last_job_id, last_status, last_at FROM trigger_rules")


def _remove_preset(conn: sqlite3.Connection, owner: str, preset_name: str) -> list[str]:
    ids = [r[0] for r in conn.execute("SELECT rule_id FROM trigger_rules WHERE address = ? AND "
                                      "preset_name = ?", (owner, preset_name))]
    conn.execute("DELETE FROM trigger_rules WHERE address = ? AND preset_name = ?", (owner, preset_name))
    return ids


def _set_enabled(conn: sqlite3.Connection, rule_id: str, enabled: bool, reason: str | None) -> bool:
    return conn.execute("UPDATE trigger_rules SET enabled = ?, disabled_reason = ?, updated_at = ? "
                        "WHERE rule_id = ?", (int(enabled), None if enabled else reason,
                                              time.time(), rule_id)).rowcount > 0


def _write_states(conn: sqlite3.Connection, states: dict[str, RuleState]) -> None:
    for rule_id, state in states.items():
        columns = sorted(state.fields)
        if not columns:
            continue
        assignments = ", ".join(f"{c} = ?" for c in columns)
        conn.execute(f"UPDATE trigger_rules SET {assignments} WHERE rule_id = ?",
                     [getattr(state, c) for c in columns] + [rule_id])


def _flag(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT value FROM trigger_flags WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def _set_flag(conn: sqlite3.Connection, name: str, value: str) -> None:
    conn.execute("INSERT INTO trigger_flags (name, value) VALUES (?, ?) ON CONFLICT (name) "
                 "DO UPDATE SET value = excluded.value", (name, value))


__all__ = ["RuleRecord", "RuleSpec", "RuleState", "TriggersStore", "replace"]
