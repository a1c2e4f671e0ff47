"""Per-user settings: a JSON object per address, merged over the documented defaults."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from engine.store.db import Database

# Documented in README.md ("Settings"). Stored values override these key by key.
DEFAULT_SETTINGS: dict[str, Any] = {
    "language": "en",
    "theme": "dark",
    "notifications_enabled": True,
    "approval_timeout_s": 3600,
    "approval_default_decision": "REJECTED",
    "history_retention_days": 14,
    "history_max_jobs": 500,
    "history_max_bytes": 256 * 1024 * 1024,
    "history_payload_preview_bytes": 64 * 1024,
    "log_level": None,  # None: the engine's --log-level; else DEBUG, INFO, WARNING or ERROR
}
MAX_SETTINGS_BYTES = 256 * 1024


class SettingsStore:
    """Reads are served from memory after the first (the GUI asks on every connect, and a trip
    to the database thread was most of request_settings' cost); every write goes through
    `save`, which updates the copy after the commit. Callers must not mutate nested values."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[str, dict[str, Any]] = {}
        self._generation = 0  # bumped by every save, so a read that raced a save is not cached

    async def get(self, owner: str) -> dict[str, Any]:
        stored = self._cache.get(owner)
        if stored is None:
            generation = self._generation
            stored = await self._db.run(_read, owner)
            if generation == self._generation:
                self._cache[owner] = stored
        return {**DEFAULT_SETTINGS, **stored}

    async def save(self, owner: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Replace the user's stored settings; returns the merged view."""
        body = json.dumps(settings, ensure_ascii=False, separators=(",", ":"))
        self._generation += 1
        self._cache.pop(owner, None)
        await self._db.transaction(_write, owner, body)
        self._cache[owner] = json.loads(body)  # a private copy, not the caller's object
        self._generation += 1
        return {**DEFAULT_SETTINGS, **settings}


def _read(conn: sqlite3.Connection, owner: str) -> dict[str, Any]:
    row = conn.execute("SELECT body FROM settings WHERE address = ?", (owner,)).fetchone()
    return json.loads(row[0]) if row else {}


def _write(conn: sqlite3.Connection, owner: str, body: str) -> None:
    conn.execute(
        "INSERT INTO settings (address, body, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (address) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        (owner, body, time.time()),
    )
