"""Reading a trigger node's config_values into checked options, one function per trigger kind.

The GUI sends numbers typed into text fields as strings and leaves untouched properties out, so
every reader accepts both and falls back to the manifest's default. A problem is a RuleError
naming the field, phrased for the person who filled it in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from engine.runtime.job import KEEP_UNSUCCESSFUL

OVERLAP = ("skip", "queue", "parallel")
MISFIRE = ("skip", "run_once")
KEEP_HISTORY = ("all", KEEP_UNSUCCESSFUL)
METHODS = ("ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
RESPONSE_MODES = ("immediately", "when_finished")
AUTH_MODES = ("none", "header", "hmac_sha256")
FILE_EVENTS = ("created", "modified", "deleted")
MAX_PARALLEL = 64
HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")


class RuleError(ValueError):
    """A trigger node's settings cannot make a working rule."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"'{field}' {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Policy:
    overlap: str = "skip"        # what a fire does while a run of the rule is still going
    max_parallel: int = 4        # with overlap "parallel"
    misfire: str = "skip"        # schedules: a fire missed while the engine was down
    keep_history: str = "all"    # or KEEP_UNSUCCESSFUL: a run that succeeds leaves no record


@dataclass(frozen=True)
class WebhookOptions:
    method: str = "ANY"
    respond: str = "immediately"
    response_timeout_s: float = 30.0
    auth: str = "none"
    header_name: str = "X-Webhook-Secret"
    secret: str = ""             # literal, or {{vars.NAME}} resolved at each request


@dataclass(frozen=True)
class WatchOptions:
    folder: str
    events: tuple[str, ...] = FILE_EVENTS
    pattern: str = "*"
    recursive: bool = True
    debounce_ms: int = 500


def text(config: dict[str, Any], key: str, default: str = "", *, max_len: int = 1024) -> str:
    value = config.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RuleError(key, "must be text")
    value = str(value).strip()
    if len(value) > max_len:
        raise RuleError(key, f"is longer than {max_len} characters")
    return value


def number(config: dict[str, Any], key: str, default: float, *, minimum: float,
           maximum: float, integer: bool = False) -> float:
    value = config.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise RuleError(key, "must be a number")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise RuleError(key, f"must be a number, not {value!r}") from None
    if math.isnan(result) or not minimum <= result <= maximum:
        raise RuleError(key, f"must be between {minimum:g} and {maximum:g}")
    if integer and result != int(result):
        raise RuleError(key, "must be a whole number")
    return int(result) if integer else result


def choice(config: dict[str, Any], key: str, options: tuple[str, ...], default: str) -> str:
    value = text(config, key, default)
    for option in options:
        if value.lower() == option.lower():
            return option
    raise RuleError(key, f"must be one of {', '.join(options)}, not {value!r}")


def flag(config: dict[str, Any], key: str, default: bool) -> bool:
    value = config.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise RuleError(key, "must be true or false")


def policy(config: dict[str, Any]) -> Policy:
    return Policy(overlap=choice(config, "overlap", OVERLAP, "skip"),
                  max_parallel=int(number(config, "max_parallel", 4, minimum=1,
                                          maximum=MAX_PARALLEL, integer=True)),
                  misfire=choice(config, "misfire", MISFIRE, "skip"),
                  keep_history=choice(config, "keep_history", KEEP_HISTORY, "all"))


def webhook(config: dict[str, Any]) -> WebhookOptions:
    auth = choice(config, "auth", AUTH_MODES, "none")
    header_name = text(config, "header_name", "X-Webhook-Secret", max_len=128)
    if not HEADER_NAME_RE.match(header_name):
        raise RuleError("header_name", "must be an HTTP header name (letters, digits and -)")
    secret = text(config, "secret", "", max_len=1024)
    if auth != "none" and not secret:
        raise RuleError("secret", f"is required when 'auth' is {auth}")
    return WebhookOptions(
        method=choice(config, "method", METHODS, "ANY"),
        respond=choice(config, "respond", RESPONSE_MODES, "immediately"),
        response_timeout_s=number(config, "response_timeout_s", 30.0, minimum=1, maximum=600),
        auth=auth, header_name=header_name, secret=secret)


def watch(config: dict[str, Any]) -> WatchOptions:
    folder = text(config, "folder", "", max_len=4096)
    if not folder:
        raise RuleError("folder", "is required: choose a folder inside your shared folders")
    raw_events = config.get("events")
    if raw_events in (None, "", []):
        events = FILE_EVENTS
    else:
        items = raw_events if isinstance(raw_events, list) else str(raw_events).split(",")
        picked = []
        for item in items:
            name = str(item).strip().lower()
            if name not in FILE_EVENTS:
                raise RuleError("events", f"may hold only {', '.join(FILE_EVENTS)}, not {item!r}")
            picked.append(name)
        events = tuple(dict.fromkeys(picked))
    return WatchOptions(folder=folder, events=events,
                        pattern=text(config, "pattern", "*", max_len=256) or "*",
                        recursive=flag(config, "recursive", True),
                        debounce_ms=int(number(config, "debounce_ms", 500, minimum=10,
                                               maximum=600_000, integer=True)))
