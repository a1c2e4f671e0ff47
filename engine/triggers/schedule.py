"""When a schedule fires: a cron expression (cronsim: Debian cron's rules, DST included) or a
fixed interval, in an IANA time zone, optionally between a start and an end.

Cron times are wall-clock times in the rule's zone, as cron users expect: a time skipped by the
spring change fires right after it, a time that happens twice in autumn fires once; schedules
finer than an hour simply follow real time. Intervals are anchored (start + k * interval), so
they never drift however late a fire was.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from engine.triggers.options import RuleError, choice, number, text

UNITS = {"seconds": 1, "minutes": 60, "hours": 3600}
MAX_INTERVAL_S = 366 * 24 * 3600


@functools.cache
def local_zone() -> tzinfo:
    """The machine's zone, as an IANA zone where it can be found (reads a file once)."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        link = os.readlink("/etc/localtime")
        if "zoneinfo/" in link:
            candidates.append(link.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    try:
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    except OSError:
        pass
    for name in candidates:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue
    # Windows without tzdata names, or an unusual setup: the current fixed offset.
    return datetime.now().astimezone().tzinfo or ZoneInfo("UTC")


def zone(name: str) -> tzinfo:
    if not name:
        return local_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise RuleError("timezone", f"is not an IANA time zone name such as Europe/Berlin or "
                                    f"America/New_York: {name!r}") from None


def _moment(config: dict[str, Any], key: str, tz: tzinfo) -> float | None:
    value = text(config, key, "", max_len=64)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RuleError(key, f"must be a date and time like 2026-12-24T18:00, not {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


@dataclass(frozen=True)
class Schedule:
    kind: str                    # "cron" or "interval"
    tz: tzinfo
    cron: str = ""
    interval_s: float = 0.0
    start: float | None = None
    end: float | None = None
    anchor: float = 0.0          # intervals count from here (the start, else the rule's creation)

    def next_after(self, t: float) -> float | None:
        """The first fire strictly after `t` (epoch seconds), None once past the end."""
        if self.start is not None and t < self.start:
            t = self.start - 1e-3
        if self.kind == "interval":
            if t < self.anchor:
                due = self.anchor
            else:
                due = self.anchor + (math.floor((t - self.anchor) / self.interval_s) + 1) * self.interval_s
        else:
            # cronsim works in whole seconds and returns the first match after its start.
            base = datetime.fromtimestamp(math.floor(t), self.tz)
            due = next(CronSim(self.cron, base)).timestamp()
        if self.end is not None and due > self.end:
            return None
        return due

    def summary(self) -> str:
        if self.kind == "interval":
            for unit, size in (("hours", 3600), ("minutes", 60)):
                if self.interval_s % size == 0:
                    count = int(self.interval_s // size)
                    return f"every {count} {unit if count != 1 else unit[:-1]}"
            count = self.interval_s
            return f"every {count:g} second{'s' if count != 1 else ''}"
        name = getattr(self.tz, "key", None) or str(self.tz)
        return f"cron {self.cron} ({name})"


def parse_schedule(config: dict[str, Any], anchor: float) -> Schedule:
    kind = choice(config, "schedule_type", ("interval", "cron"), "interval")
    tz = zone(text(config, "timezone", "", max_len=64))
    start = _moment(config, "start_at", tz)
    end = _moment(config, "end_at", tz)
    if start is not None and end is not None and end <= start:
        raise RuleError("end_at", "must be later than 'start_at'")
    if kind == "cron":
        expression = " ".join(text(config, "cron", "", max_len=256).split())
        if not expression:
            raise RuleError("cron", "is required for a cron schedule, e.g. '0 8 * * MON-FRI'")
        if len(expression.split()) not in (5, 6) and not expression.startswith("@"):
            raise RuleError("cron", "must have 5 fields (minute hour day month weekday) or 6 "
                                    "(with seconds first)")
        try:
            next(CronSim(expression, datetime.now(tz)))
        except (CronSimError, StopIteration) as exc:
            raise RuleError("cron", f"is not a valid cron expression ({exc or 'it never fires'}): "
                                    f"{expression!r}") from None
        return Schedule("cron", tz, cron=expression, start=start, end=end)
    every = number(config, "interval_value", 5, minimum=1, maximum=10**7, integer=True)
    unit = choice(config, "interval_unit", tuple(UNITS), "minutes")
    seconds = float(every * UNITS[unit])
    if seconds > MAX_INTERVAL_S:
        raise RuleError("interval_value", "must be at most a year")
    return Schedule("interval", tz, interval_s=seconds, start=start, end=end,
                    anchor=start if start is not None else anchor)


def describe_time(t: float | None) -> str | None:
    """ISO 8601 in UTC for replies (the GUI and the tray format it for people)."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, ZoneInfo("UTC")).isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["Schedule", "parse_schedule", "describe_time", "local_zone", "timedelta"]
