"""Declarative payload schemas: each message type states its fields once, next to its handler.

Small on purpose: the GUI's payloads are flat and few, and a failed check must say in plain words
which field is wrong and why, with the `invalid_field` code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from engine.protocol.errors import EngineError

ADDRESS_RE = re.compile(r"\A0x[0-9a-fA-F]{40}\Z")
# Preset, variable and job names never become file paths, but keep them plain anyway.
NAME_RE = re.compile(r"^[^\x00-\x1f\x7f/\\]+$")


@dataclass(frozen=True)
class Field:
    """One payload field: its type(s), whether it must be there, and its limits."""

    types: tuple[type, ...]
    required: bool = False
    max_len: int | None = None
    min_len: int | None = None
    pattern: re.Pattern[str] | None = None
    pattern_text: str | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    check: Callable[[Any], str | None] | None = None
    min_value: float | None = None
    max_value: float | None = None

    def validate(self, name: str, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise EngineError.invalid(name, "must not be null")
        if isinstance(value, bool) and bool not in self.types:
            raise EngineError.invalid(name, f"must be {self._type_names()}, not a boolean")
        if not isinstance(value, self.types):
            raise EngineError.invalid(
                name, f"must be {self._type_names()}, not {_json_type(value)}"
            )
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            raise EngineError.invalid(name, f"must be one of {allowed}")
        if isinstance(value, (str, list, dict)):
            if self.max_len is not None and len(value) > self.max_len:
                raise EngineError.invalid(name, f"is too long (at most {self.max_len})")
            if self.min_len is not None and len(value) < self.min_len:
                what = "must not be empty" if self.min_len == 1 else f"needs at least {self.min_len}"
                raise EngineError.invalid(name, what)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.min_value is not None and value < self.min_value:
                raise EngineError.invalid(name, f"must be at least {self.min_value:g}")
            if self.max_value is not None and value > self.max_value:
                raise EngineError.invalid(name, f"must be at most {self.max_value:g}")
        if self.pattern is not None and isinstance(value, str) and not self.pattern.match(value):
            raise EngineError.invalid(name, self.pattern_text or "has an invalid format")
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise EngineError.invalid(name, problem)
        return value

    def _type_names(self) -> str:
        return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in self.types)


_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", dict: "an object",
               list: "an array", bool: "a boolean"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def String(*, required: bool = False, max_len: int = 4096, min_len: int | None = None,
           pattern: re.Pattern[str] | None = None, pattern_text: str | None = None,
           choices: tuple[str, ...] | None = None, nullable: bool = False,
           check: Callable[[Any], str | None] | None = None) -> Field:
    return Field((str,), required=required, max_len=max_len, min_len=min_len, pattern=pattern,
                 pattern_text=pattern_text, choices=choices, nullable=nullable, check=check)


def Name(*, required: bool = True, max_len: int = 128) -> Field:
    """A user-chosen name (preset, job): printable, no path separators, not `.` or `..`."""
    return String(required=required, max_len=max_len, min_len=1, pattern=NAME_RE,
                  pattern_text="must not contain '/', '\\' or control characters",
                  check=_not_dots)


def _not_dots(value: str) -> str | None:
    if value.strip() in {".", ".."} or value != value.strip():
        return "must not be '.' or '..' and must not start or end with spaces"
    return None


def Address(*, required: bool = False, nullable: bool = True) -> Field:
    return String(required=required, max_len=42, pattern=ADDRESS_RE,
                  pattern_text="must be a 0x-prefixed 40-digit hexadecimal address",
                  nullable=nullable)


def Object(*, required: bool = False, max_len: int = 10_000, nullable: bool = False) -> Field:
    return Field((dict,), required=required, max_len=max_len, nullable=nullable)


def Array(*, required: bool = False, max_len: int = 100_000) -> Field:
    return Field((list,), required=required, max_len=max_len)


def Bool(*, required: bool = False) -> Field:
    return Field((bool,), required=required)


def Integer(*, required: bool = False, min_value: float | None = None,
            max_value: float | None = None, nullable: bool = False) -> Field:
    return Field((int,), required=required, min_value=min_value, max_value=max_value,
                 nullable=nullable)


def Number(*, required: bool = False, min_value: float | None = None,
           max_value: float | None = None) -> Field:
    return Field((int, float), required=required, min_value=min_value, max_value=max_value)


@dataclass(frozen=True)
class Schema:
    """The fields of one message type. Unknown fields are allowed (GUI versions differ)."""

    fields: Mapping[str, Field] = field(default_factory=dict)

    def validate(self, payload: Mapping[str, Any], *, prefix: str = "") -> dict[str, Any]:
        """Return the declared fields, checked; missing optional ones are absent. Errors name
        a field of a nested object by its whole path (`prefix` + name, e.g. `data.value`)."""
        clean: dict[str, Any] = {}
        for name, spec in self.fields.items():
            if name not in payload:
                if spec.required:
                    raise EngineError.invalid(prefix + name, "is required")
                continue
            clean[name] = spec.validate(prefix + name, payload[name])
        return clean


EMPTY = Schema()
