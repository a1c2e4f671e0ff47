"""Per-user presets (saved workflows) with every version kept, and who they are shared with."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from engine.store.db import Database

EVERYONE = "*"


@dataclass(frozen=True)
class PresetSummary:
    name: str
    version: int
    updated_at: float
    versions: int
    shared_with: tuple[str, ...]

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "updated_at": self.updated_at,
                "versions": self.versions, "shared_with": list(self.shared_with)}


class PresetsStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(self, owner: str, name: str, workflow: dict[str, Any] | str, signature: str) -> int:
        """Store a new version; returns its number (1 for a new preset). `workflow` may be
        given as its JSON text."""
        return await self._db.transaction(_save, owner, name, workflow, signature)

    async def list(self, owner: str) -> list[PresetSummary]:
        return await self._db.run(_list, owner)

    async def load(self, owner: str, name: str, version: int | None = None) -> tuple[int, dict[str, Any]] | None:
        return await self._db.run(_load, owner, name, version)

    async def load_text(self, owner: str, name: str, version: int | None = None) -> tuple[int, str] | None:
        """Like `load`, but the workflow as its stored JSON text, for a reply (no decoding)."""
        return await self._db.run(_load_text, owner, name, version)

    async def delete(self, owner: str, name: str) -> bool:
        return await self._db.transaction(_delete, owner, name)

    async def share(self, owner: str, name: str, grantees: list[str]) -> bool:
        """Replace who may load the preset; False when the preset does not exist."""
        return await self._db.transaction(_share, owner, name, grantees)

    async def is_shared_with(self, owner: str, name: str, grantee: str) -> bool:
        return await self._db.run(_is_shared, owner, name, grantee)


def _save(conn: sqlite3.Connection, owner: str, name: str, workflow: dict[str, Any] | str,
          signature: str) -> int:
    # Already-encoded text (the handler's canonical JSON) is stored as is.
    text = workflow if isinstance(workflow, str) else json.dumps(
        workflow, ensure_ascii=False, separators=(",", ":"))
    row = conn.execute("SELECT max(version) FROM presets WHERE address = ? AND name = ?",
                       (owner, name)).fetchone()
    version = (row[0] or 0) + 1
    conn.execute("INSERT INTO presets (address, name, version, workflow, signature, created_at) "
                 "VALUES (?, ?, ?, ?, ?, ?)", (owner, name, version, text, signature, time.time()))
    return version


def _list(conn: sqlite3.Connection, owner: str) -> list[PresetSummary]:
    rows = conn.execute(
        "SELECT name, max(version), max(created_at), count(*) FROM presets WHERE address = ? "
        "GROUP BY name ORDER BY name COLLATE NOCASE", (owner,)).fetchall()
    shares: dict[str, list[str]] = {}
    for name, grantee in conn.execute(
            "SELECT name, grantee FROM preset_shares WHERE address = ? ORDER BY grantee", (owner,)):
        shares.setdefault(name, []).append(grantee)
    return [PresetSummary(name, version, created, count, tuple(shares.get(name, ())))
            for name, version, created, count in rows]


def _load(conn: sqlite3.Connection, owner: str, name: str,
          version: int | None) -> tuple[int, dict[str, Any]] | None:
    found = _load_text(conn, owner, name, version)
    return (found[0], json.loads(found[1])) if found else None


def _load_text(conn: sqlite3.Connection, owner: str, name: str,
               version: int | None) -> tuple[int, str] | None:
    if version is None:
        row = conn.execute("SELECT version, workflow FROM presets WHERE address = ? AND name = ? "
                           "ORDER BY version DESC LIMIT 1", (owner, name)).fetchone()
    else:
        row = conn.execute("SELECT version, workflow FROM presets WHERE address = ? AND name = ? "
                           "AND version = ?", (owner, name, version)).fetchone()
    return (row[0], row[1]) if row else None


def _delete(conn: sqlite3.Connection, owner: str, name: str) -> bool:
    deleted = conn.execute("DELETE FROM presets WHERE address = ? AND name = ?",
                           (owner, name)).rowcount
    conn.execute("DELETE FROM preset_shares WHERE address = ? AND name = ?", (owner, name))
    return deleted > 0


def _share(conn: sqlite3.Connection, owner: str, name: str, grantees: list[str]) -> bool:
    exists = conn.execute("SELECT 1 FROM presets WHERE address = ? AND name = ? LIMIT 1",
                          (owner, name)).fetchone()
    if not exists:
        return False
    conn.execute("DELETE FROM preset_shares WHERE address = ? AND name = ?", (owner, name))
    conn.executemany("INSERT INTO preset_shares (address, name, grantee) VALUES (?, ?, ?)",
                     [(owner, name, g) for g in dict.fromkeys(grantees)])
    return True


def _is_shared(conn: sqlite3.Connection, owner: str, name: str, grantee: str) -> bool:
    row = conn.execute("SELECT 1 FROM preset_shares WHERE address = ? AND name = ? "
                       "AND grantee IN (?, ?) LIMIT 1", (owner, name, grantee, EVERYONE)).fetchone()
    return row is not None
