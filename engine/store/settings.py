"""Per-user settings: a JSON object per address, read through one typed view.

SETTINGS is the one table of the engine's own keys: type, range and default of each. `save`
refuses a value that does not fit (the error names the key), so a stored setting can never
stop a job; the view gives every known key its typed value (the default where something stored
before this check existed no longer fits). Keys the engine does not know (the web GUI keeps its
own preferences here) are stored and returned as they came.

To add a setting: one `Setting` line in SETTINGS, and its line in README.md ("Settings").
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from engine.protocol.errors import EngineError
from engine.store.db import Database

log = logging.getLogger(__name__)

MAX_SETTINGS_BYTES = 256 * 1024
KINDS = ("integer", "number", "boolean", "text", "choice")


@dataclass(frozen=True)
class Setting:
    """One known key: its kind, default and limits (inclusive)."""

    kind: str                          # one of KINDS
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()      # kind "choice": the allowed values (matched ignoring case)
    max_len: int = 256                 # kind "text"

    def check(self, key: str, value: Any) -> Any:
        """The value in its stored form, or EngineError naming `settings.<key>`."""
        if self.kind in ("integer", "number"):
            return self._number(key, value)
        if self.kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return value.strip().lower() == "true"
            raise _invalid(key, f"must be true or false, not {value!r}")
        if self.kind == "choice":
            if isinstance(value, str):
                for choice in self.choices:
                    if choice.lower() == value.strip().lower():
                        return choice
            raise _invalid(key, f"must be one of {', '.join(self.choices)}, not {value!r}")
        if not isinstance(value, str):
            raise _invalid(key, f"must be a text, not {value!r}")
        if len(value) > self.max_len:
            raise _invalid(key, f"must be at most {self.max_len} characters long")
        return value

    def _number(self, key: str, value: Any) -> int | float:
        number: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # a number field's text, as web forms send it
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        whole = self.kind == "integer"
        if number is None or not math.isfinite(number) or (whole and number != int(number)):
            raise _invalid(key, f"must be {'a whole number' if whole else 'a number'}"
                                f"{self._range()}, not {value!r}")
        if (self.minimum is not None and number < self.minimum) or (
                self.maximum is not None and number > self.maximum):
            raise _invalid(key, f"must be {self._range().strip()}, not {value!r}")
        return int(number) if whole or number == int(number) else number

    def _range(self) -> str:
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f" from {_shown(low)} to {_shown(high)}"
        if low is not None:
            return f" of at least {_shown(low)}"
        return f" of at most {_shown(high)}" if high is not None else ""


def _shown(number: float) -> str:
    """16777216, not 1.67772e+07."""
    return str(int(number)) if number == int(number) else f"{number:g}"


def _invalid(key: str, problem: str) -> EngineError:
    return EngineError.invalid(f"settings.{key}", problem)


# The engine's settings, documented in README.md ("Settings").
SETTINGS: dict[str, Setting] = {
    "language": Setting("text", "en", max_len=35),
    "theme": Setting("text", "dark", max_len=64),
    "notifications_enabled": Setting("boolean", True),
    "approval_timeout_s": Setting("number", 3600, minimum=1, maximum=30 * 86400),
    "approval_default_decision": Setting("choice", "REJECTED", choices=("APPROVED", "REJECTED")),
    "history_retention_days": Setting("number", 14, minimum=0, maximum=36500),
    "history_max_jobs": Setting("integer", 500, minimum=0, maximum=10_000_000),
    "history_max_bytes": Setting("integer", 256 * 1024 * 1024, minimum=0, maximum=2**50),
    "history_payload_preview_bytes": Setting("integer", 64 * 1024, minimum=256, maximum=16 * 1024 * 1024),
    # The global error workflow (engine/triggers/error_workflow.py): when a run of the owner
    # fails, start this preset of theirs with what failed.
    "global_error_handler_enabled": Setting("boolean", False),
    "global_error_workflow_preset": Setting("text", "", max_len=128),
    # Datasets (engine/store/datasets.py): one row's JSON, rows per dataset, all of an owner's rows.
    "dataset_max_row_bytes": Setting("integer", 64 * 1024, minimum=16, maximum=16 * 1024 * 1024),
    "dataset_max_rows": Setting("integer", 100_000, minimum=1, maximum=100_000_000),
    "dataset_max_total_bytes": Setting("integer", 256 * 1024 * 1024, minimum=16, maximum=2**50),
    # The engine log's level, engine-wide, applied when saved; "" keeps --log-level.
    "log_level": Setting("choice", "", choices=("", "DEBUG", "INFO", "WARNING", "ERROR")),
}
DEFAULT_SETTINGS: dict[str, Any] = {key: setting.default for key, setting in SETTINGS.items()}


def validate_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What `save` stores: known keys checked and normalized ("3600" -> 3600, "approved" ->
    "APPROVED"); a known key set to null is dropped, so it reads as its default."""
    clean: dict[str, Any] = {}
    for key, value in settings.items():
        setting = SETTINGS.get(key)
        if setting is None:
            clean[key] = value
        elif value is not None:
            clean[key] = setting.check(key, value)
    return clean


class SettingsView(Mapping[str, Any]):
    """One user's settings as everything reads them: each known key with a value of its kind
    and range, unknown keys as stored. Read-only."""

    def __init__(self, stored: Mapping[str, Any], owner: str = "") -> None:
        values = dict(DEFAULT_SETTINGS)
        for key, value in stored.items():
            setting = SETTINGS.get(key)
            if setting is None:
                values[key] = value
                continue
            if value is None:
                continue
            try:
                values[key] = setting.check(key, value)
            except EngineError as exc:  # stored before values were checked: the default applies
                log.warning("the stored setting %s of %s is ignored (%s); using %r", key,
                            owner or "a user", exc.message, setting.default)
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def as_dict(self) -> dict[str, Any]:
        """A copy, for a reply."""
        return dict(self._values)


class SettingsStore:
    """Reads are served from memory after the first (the GUI asks on every connect, and a trip
    to the database thread was most of request_settings' cost); every write goes through
    `save`, which updates the copy after the commit."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[str, SettingsView] = {}
        self._generation = 0  # bumped by every save, so a read that raced a save is not cached

    async def get(self, owner: str) -> SettingsView:
        view = self._cache.get(owner)
        if view is None:
            generation = self._generation
            view = SettingsView(await self._db.run(_read, owner), owner)
            if generation == self._generation:
                self._cache[owner] = view
        return view

    async def save(self, owner: str, settings: Mapping[str, Any]) -> SettingsView:
        """Check, then replace the user's stored settings; returns the new view. EngineError
        (nothing stored) when a known key's value does not fit."""
        clean = validate_settings(settings)
        body = json.dumps(clean, ensure_ascii=False, separators=(",", ":"))
        self._generation += 1
        self._cache.pop(owner, None)
        await self._db.transaction(_write, owner, body)
        view = SettingsView(json.loads(body), owner)  # a private copy, not the caller's object
        self._cache[owner] = view
        self._generation += 1
        return view


def _read(conn: sqlite3.Connection, owner: str) -> dict[str, Any]:
    row = conn.execute("SELECT body FROM settings WHERE address = ?", (owner,)).fetchone()
    return json.loads(row[0]) if row else {}


def _write(conn: sqlite3.Connection, owner: str, body: str) -> None:
    conn.execute(
        "INSERT INTO settings (address, body, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (address) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        (owner, body, time.time()),
    )
