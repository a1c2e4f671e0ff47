"""Per-user variables: plain or secret, single/random/sequential. Secrets are Fernet-encrypted
at rest and leave this module masked, except through `resolve` (for the runtime only)."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from engine.protocol.errors import EngineError
from engine.store.db import Database

MASK = "********"
MODES = ("single", "random", "sequential")


@dataclass(frozen=True)
class Variable:
    name: str
    value: str | list[str]
    is_secret: bool
    is_enabled: bool
    mode: str

    def public(self) -> dict[str, Any]:
        """The shape clients see, secret values masked element by element. A single value is
        its text; a list is `{"type": mode, "value": [...]}`, the value model of the GUI's
        variable dialog (which wraps a text as `{"type": "static", "value": text}` itself, but
        shows a bare list as a variable of no type)."""
        if self.is_secret:
            shown: str | list[str] = [MASK] * len(self.value) if isinstance(self.value, list) else MASK
        else:
            shown = self.value
        value: Any = shown if self.mode == "single" else {"type": self.mode, "value": shown}
        return {"name": self.name, "value": value, "is_secret": self.is_secret,
                "is_enabled": self.is_enabled, "mode": self.mode}


class VariablesStore:
    def __init__(self, db: Database, key: bytes) -> None:
        self._db = db
        self._fernet = Fernet(key)

    async def list(self, owner: str) -> list[Variable]:
        # Decrypting is CPU work: it happens on the database thread, off the loop.
        return await self._db.run(lambda conn: [self._decode(r) for r in _list_rows(conn, owner)])

    async def upsert(self, owner: str, name: str, value: str | list[str], *, is_secret: bool,
                     is_enabled: bool, mode: str) -> None:
        """Create or replace a variable. A secret sent back masked keeps its old value (for a
        list, element by element), so the GUI can edit one without knowing the secret.
        Encryption runs on the database thread, off the loop."""
        await self._db.transaction(self._upsert, owner, name, value, is_secret, is_enabled, mode)

    def _upsert(self, conn: sqlite3.Connection, owner: str, name: str, value: str | list[str],
                is_secret: bool, is_enabled: bool, mode: str) -> None:
        if _has_mask(value):
            row = conn.execute("SELECT value, is_secret FROM variables WHERE address = ? AND name = ?",
                               (owner, name)).fetchone()
            if row is not None and row[1]:
                if not is_secret:
                    raise EngineError.invalid(
                        "data.value", "still holds the masked secret; type the value again to "
                        "store the variable as plain text")
                value = _unmask(value, self._decrypt(row[0], True))
        conn.execute(
            "INSERT INTO variables (address, name, is_secret, is_enabled, mode, value, cursor, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (address, name) DO UPDATE SET "
            "is_secret = excluded.is_secret, is_enabled = excluded.is_enabled, mode = excluded.mode, "
            "value = excluded.value, updated_at = excluded.updated_at",
            (owner, name, int(is_secret), int(is_enabled), mode, self._encode(value, is_secret),
             time.time()))

    async def delete(self, owner: str, name: str) -> bool:
        return await self._db.transaction(_delete, owner, name)

    async def resolve(self, owner: str) -> dict[str, str]:
        """Current values of the user's enabled variables, secrets in clear, for one job.
        `random` picks one element; `sequential` takes the next one (kept across jobs)."""
        return await self._db.transaction(lambda conn: self._resolve(_resolve_rows(conn, owner)))

    def _resolve(self, rows: list[tuple[Any, ...]]) -> dict[str, str]:
        values: dict[str, str] = {}
        for name, is_secret, mode, blob, cursor in rows:
            value = self._decrypt(blob, bool(is_secret))
            if isinstance(value, list):
                if not value:
                    continue
                value = random.choice(value) if mode == "random" else value[cursor % len(value)]
            values[name] = str(value)
        return values

    async def secret_values(self, owner: str) -> list[str]:
        """Every secret value (each list element), so the runtime can mask them in output."""
        return await self._db.run(lambda conn: self._secrets(_secret_rows(conn, owner)))

    def _secrets(self, rows: list[tuple[Any, ...]]) -> list[str]:
        found: list[str] = []
        for (blob,) in rows:
            value = self._decrypt(blob, True)
            found.extend(value if isinstance(value, list) else [value])
        return [v for v in found if v]

    def _encode(self, value: str | list[str], is_secret: bool) -> bytes:
        text = json.dumps(value, ensure_ascii=False).encode("utf-8")
        return self._fernet.encrypt(text) if is_secret else text

    def _decrypt(self, blob: bytes, is_secret: bool) -> Any:
        if is_secret:
            try:
                blob = self._fernet.decrypt(bytes(blob))
            except InvalidToken:
                return ""  # a key that changed: the secret is unreadable, not fatal
        return json.loads(bytes(blob).decode("utf-8"))

    def _decode(self, row: tuple[Any, ...]) -> Variable:
        name, is_secret, is_enabled, mode, blob = row
        value = self._decrypt(blob, bool(is_secret))
        return Variable(name, value, bool(is_secret), bool(is_enabled), mode)


def _has_mask(value: str | list[str]) -> bool:
    return value == MASK or (isinstance(value, list) and MASK in value)


def _unmask(value: str | list[str], old: Any) -> str | list[str]:
    """Put the stored secret back where the client sent the mask."""
    if not isinstance(value, list):
        return old if value == MASK else value
    if not isinstance(old, list):
        old = [old]
    return [old[i] if item == MASK and i < len(old) else item for i, item in enumerate(value)]


def _list_rows(conn: sqlite3.Connection, owner: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT name, is_secret, is_enabled, mode, value FROM variables WHERE address = ? ORDER BY name",
        (owner,)).fetchall()


def _delete(conn: sqlite3.Connection, owner: str, name: str) -> bool:
    return conn.execute("DELETE FROM variables WHERE address = ? AND name = ?",
                        (owner, name)).rowcount > 0


def _resolve_rows(conn: sqlite3.Connection, owner: str) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT name, is_secret, mode, value, cursor FROM variables "
        "WHERE address = ? AND is_enabled = 1", (owner,)).fetchall()
    conn.execute("UPDATE variables SET cursor = cursor + 1 "
                 "WHERE address = ? AND is_enabled = 1 AND mode = 'sequential'", (owner,))
    return rows


def _secret_rows(conn: sqlite3.Connection, owner: str) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT value FROM variables WHERE address = ? AND is_secret = 1",
                        (owner,)).fetchall()
