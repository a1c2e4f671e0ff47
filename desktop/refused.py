"""Addresses the engine turned away while owners exist: a rate-limited notice ("0x… (from
<origin>) asked to use this engine — Allow / Ignore"), and the recent ones for Settings.

The engine reports every refused frame (Engine.on_address_refused); a web GUI retries, so a
notice is shown at most once per address in NOTICE_INTERVAL_S, and never again in this session
for an address the person chose to ignore.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import QObject, Signal

from engine.auth.access import AccessRequest
from engine.auth.frame_auth import normalize_address
from desktop.notifications import Notifier

log = logging.getLogger(__name__)

NOTICE_INTERVAL_S = 600.0     # per address
ANY_NOTICE_INTERVAL_S = 30.0  # overall: many new addresses (keys cost nothing) are one notice
KEEP = 10                      # recent refused addresses shown in Settings
_SHOWN_ORIGIN = re.compile(r"[^A-Za-z0-9:/._\-\[\]]")


def shown_origin(origin: str | None) -> str:
    """The origin as plain text for a notice (notification servers may read markup)."""
    if not origin:
        return "a program on this computer"
    return _SHOWN_ORIGIN.sub("?", origin)[:100]


@dataclass(frozen=True)
class Refusal:
    address: str
    origin: str | None
    remote: str
    at: float

    def describe(self) -> str:
        return f"{self.address} (from {shown_origin(self.origin)})"


class RefusedAddresses(QObject):
    changed = Signal()

    def __init__(self, notifier: Notifier, allow: Callable[[str], None],
                 show_settings: Callable[[], None], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.notifier = notifier
        self._allow = allow
        self._show_settings = show_settings
        self._clock = clock
        self._recent: OrderedDict[str, Refusal] = OrderedDict()  # newest last
        self._noticed: dict[str, float] = {}
        self._last_notice = -ANY_NOTICE_INTERVAL_S
        self.ignored: set[str] = set()

    @property
    def recent(self) -> list[Refusal]:
        """Newest first."""
        return list(reversed(self._recent.values()))

    def on_refused(self, request: AccessRequest) -> None:
        key = normalize_address(request.address)
        now = self._clock()
        self._recent[key] = Refusal(request.address, request.origin, request.remote, time.time())
        self._recent.move_to_end(key)
        while len(self._recent) > KEEP:
            self._recent.popitem(last=False)
        self.changed.emit()
        if key in self.ignored or now - self._noticed.get(key, -NOTICE_INTERVAL_S) < NOTICE_INTERVAL_S \
                or now - self._last_notice < ANY_NOTICE_INTERVAL_S:
            return
        self._noticed[key] = self._last_notice = now
        while len(self._noticed) > 256:
            del self._noticed[next(iter(self._noticed))]
        refusal = self._recent[key]
        self.notifier.notify(
            "An address asked to use Flowork",
            f"{refusal.describe()} asked to use this engine. It is not one of its owners. "
            "Allow it only if it is your own address.",
            buttons=[("Allow", lambda a=request.address: self.allow(a)),
                     ("Ignore", lambda k=key: self.ignore(k))],
            on_clicked=self._show_settings)

    def allow(self, address: str) -> None:
        log.info("allowing %s, which was refused before", address)
        self._recent.pop(normalize_address(address), None)
        self._allow(address)
        self.changed.emit()

    def ignore(self, key: str) -> None:
        log.info("ignoring %s for this session", key)
        self.ignored.add(normalize_address(key))
