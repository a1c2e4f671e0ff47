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


# Frame fields that name things (the frame's type, ids, statuses): never masked, or a secret
# that happens to be a common word would make a frame unreadable to the GUI ("workflow_st****
# **us_upd****e"). Only at the top of a frame and of its status_data; below that, every string
# value is data and masked.
IDENTITY_KEYS = frozenset({
    "type", "job_id", "workflow_context_id", "node_id", "connection_id", "approval_id",
    "request_id", "request_type", "status", "level", "module_id", "code", "timestamp", "seq",
    "run_seq", "decision", "decided_by", "source_port_name", "target_port_name", "mode",
    "parent_job_id", "engineId", "start_time", "end_time"})
# Secrets shorter than this are masked only where they stand alone (a whole value, or a word
# between non-alphanumeric characters), never inside other words: "at" is not masked in "data".
SHORT_SECRET = 4
_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:)?')


def _forms(secret: str) -> set[str]:
    """How a secret shows up in text a module or a library writes: as is, in repr() (of text and
    of bytes), JSON-escaped (both ways), URL-encoded (quote, quote_plus); each of these also
    JSON-escaped once more (a JSON string inside a JSON document). Matching ignores case, so
    .upper(), .lower() and %-escapes in either case are covered."""
    from urllib.parse import quote, quote_plus
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret, safe=""), quote(secret),
             quote_plus(secret)}
    try:
        forms.add(repr(secret.encode("utf-8"))[2:-1])
    except UnicodeEncodeError:
        pass
    forms |= {json.dumps(f)[1:-1] for f in list(forms)}
    return {f for f in forms if f}


class Masker:
    """Replaces secret values with the mask in anything that leaves the engine (events, logs,
    recorded history): in values only, never in keys, frame types or ids. A secret is
    recognised in the forms `_forms` lists, in any letter case. Secrets shorter than
    SHORT_SECRET characters are masked too (a short secret is still a secret), but only where
    they stand alone, so that they cannot eat into words, keys and types."""

    def __init__(self, secrets: list[str]) -> None:
        long_forms: set[str] = set()
        short_forms: set[str] = set()
        self._short_values: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            if len(secret) < SHORT_SECRET:
                short_forms |= _forms(secret)
                self._short_values.add(secret.casefold())
            else:
                long_forms |= _forms(secret)
        alternatives = [re.escape(f) for f in sorted(long_forms, key=len, reverse=True)]
        # A short form counts only between characters that are not letters or digits.
        alternatives += [rf"(?<![^\W_]){re.escape(f)}(?![^\W_])"
                         for f in sorted(short_forms - long_forms, key=len, reverse=True)]
        self._secrets = sorted(long_forms | short_forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        """Free text (a log line, an error, one string value)."""
        if self._pattern is None or not value:
            return value
        if value.casefold() in self._short_values:
            return MASK
        return self._pattern.sub(MASK, value)

    def json_text(self, raw: str) -> str:
        """JSON text with the secrets masked in its string values, never in its keys (the
        structure stays valid JSON and its keys stay what they were)."""
        if self._pattern is None or not raw:
            return raw

        def token(match: re.Match[str]) -> str:
            if match.group(2) is not None:  # a key
                return match.group(0)
            inner = match.group(1)
            masked = self.text(inner)
            return match.group(0) if masked is inner else f'"{masked}"'
        return _JSON_STRING.sub(token, raw)

    def deep(self, value: Any, _top: bool = True) -> Any:
        """A masked copy of a JSON-like value (the original is left untouched): string values
        are masked, keys never; at the top of a frame (and of its status_data) the fields that
        name things (IDENTITY_KEYS) are kept as they are."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            if _top:
                return {k: (v if k in IDENTITY_KEYS and not isinstance(v, (dict, list))
                            else self.deep(v, k == "status_data"))
                        for k, v in value.items()}
            return {k: self.deep(v, False) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v, False) for v in value]
        return value
