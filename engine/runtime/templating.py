"""`{{vars.NAME}}`, `{{data.path}}` and `{{data}}` in node config, and the masking of secret values.

A config string that is exactly one placeholder takes the value itself (an object stays an
object); placeholders inside longer text are replaced by their text form. Other `{{...}}` text is
left alone, so content that merely looks like a template survives.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

MASK = "********"
# `{{vars.NAME}}`, `{{data.path}}`, or `{{data}}` alone (the whole data object; the path is "").
_PATH = r"[A-Za-z0-9_\-\.\[\]]"
_PLACEHOLDER = re.compile(r"\{\{\s*(?:vars\.(" + _PATH + r"+)|data(?:\.(" + _PATH + r"*))?)\s*\}\}")
MISSING = object()


class TemplateError(ValueError):
    """A placeholder that cannot be resolved; the text says which one and why."""


def lookup(data: Any, path: str) -> Any:
    """A dotted path (`a.b.0.c`, `a.b[0]`) inside nested objects and lists; MISSING if absent."""
    current = data
    for part in path.replace("[", ".").replace("]", "").split("."):
        if part == "":
            continue
        if isinstance(current, dict):
            if part not in current:
                return MISSING
            current = current[part]
        elif isinstance(current, list):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                return MISSING
        else:
            return MISSING
    return current


def get_path(data: Any, path: str, default: Any = None) -> Any:
    found = lookup(data, path)
    return default if found is MISSING else found


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _scope_path(match: re.Match[str]) -> tuple[str, str]:
    if match.group(1) is not None:
        return "vars", match.group(1)
    return "data", match.group(2) or ""


class Renderer:
    """Resolves placeholders for one job: the owner's variables are fixed at the job's start."""

    def __init__(self, variables: dict[str, str]) -> None:
        self._vars = variables

    def _resolve(self, scope: str, path: str, data: Any) -> Any:
        if scope == "vars":
            if path not in self._vars:
                raise TemplateError(f"the variable '{path}' is not defined or not enabled")
            return self._vars[path]
        found = lookup(data, path)
        if found is MISSING:
            return None
        # A copy: the value may be put back into the same data (`{"copy": "{{data}}"}`), and a
        # shared object would make it contain itself.
        return copy.deepcopy(found) if isinstance(found, (dict, list)) else found

    def render(self, value: Any, data: Any) -> Any:
        """A copy of `value` with every placeholder resolved (recursively in objects/lists)."""
        if isinstance(value, str):
            if "{{" not in value:
                return value
            whole = _PLACEHOLDER.fullmatch(value.strip())
            if whole:
                return self._resolve(*_scope_path(whole), data)
            return _PLACEHOLDER.sub(lambda m: _as_text(self._resolve(*_scope_path(m), data)), value)
        if isinstance(value, dict):
            return {k: self.render(v, data) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, data) for v in value]
        return value


class Masker:
    """Replaces secret values with the mask in anything that leaves the engine (events, logs,
    recorded history). Secrets shorter than 4 characters are masked too: a short secret is
    still a secret."""

    def __init__(self, secrets: list[str]) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            variants.add(secret)
            escaped = json.dumps(secret, ensure_ascii=False)[1:-1]  # how it looks inside JSON text
            variants.add(escaped)
            variants.add(json.dumps(secret)[1:-1])
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted(variants, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in self._secrets)) if self._secrets else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        if self._pattern is None or not value:
            return value
        return self._pattern.sub(MASK, value)

    def deep(self, value: Any) -> Any:
        """A masked copy of a JSON-like value (the original is left untouched)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        return value
