"""The event bus: the runtime publishes, the server (and the desktop app) listen.

Events are addressed to an owner address; the server delivers each to every authenticated
connection of that owner. Listeners are plain callables run on the loop: they must not block
(the server only enqueues into bounded outboxes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

# Imported here, not inside encoded(): an import statement run on the loop is not free (with
# PySide6 loaded, its import hook reads the importing module's source file from disk).
from engine.protocol.frames import encode

log = logging.getLogger(__name__)


class Delivery(Enum):
    """How a frame may be treated when a client's outbox is full."""

    ESSENTIAL = "essential"  # replies, terminal statuses, approvals: never dropped
    DROPPABLE = "droppable"  # metrics, connection animations, logs: dropped (and counted)
    LATEST = "latest"        # periodic status: only the newest one matters


@dataclass(frozen=True)
class Event:
    owner: str | None          # lower-case owner address; None means every authenticated client
    frame: dict[str, Any]
    delivery: Delivery = Delivery.ESSENTIAL
    coalesce_key: str | None = None  # LATEST frames with the same key replace each other
    _encoded: list[str] = field(default_factory=list, compare=False, repr=False)

    def encoded(self) -> str:
        """The frame's JSON text, made once however many connections receive it."""
        if not self._encoded:
            self._encoded.append(encode(self.frame))
        return self._encoded[0]


Listener = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def publish(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a faulty listener must not stop delivery to the others
                log.exception("event listener %r failed", listener)
