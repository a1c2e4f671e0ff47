"""The event bus: the runtime publishes, the server (and the desktop app) listen.

Events are addressed to an owner address; the server delivers each to every authenticated
connection of that owner. Listeners are plain callables run on the loop: they must not block
(the server only enqueues into bounded outboxes).
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any, Callable, Iterable

# Imported here, not inside encoded(): an import statement run on the loop is not free (with
# PySide6 loaded, its import hook reads the importing module's source file from disk).
from engine.protocol.frames import encode

log = logging.getLogger(__name__)


class Delivery(Enum):
    """How a frame may be treated when a client's outbox is full."""

    ESSENTIAL = "essential"  # replies, terminal statuses, approvals: never dropped
    DROPPABLE = "droppable"  # metrics, connection animations, logs: dropped (and counted)
    LATEST = "latest"        # periodic status: only the newest one matters


class Event:
    """One frame for an owner's connections (owner None: every authenticated client).

    A plain class with slots, not a dataclass: the runtime makes three of these per node run."""

    __slots__ = ("owner", "frame", "delivery", "coalesce_key", "job_key", "_text")

    def __init__(self, owner: str | None, frame: dict[str, Any],
                 delivery: Delivery = Delivery.ESSENTIAL, coalesce_key: str | None = None,
                 job_key: str | None = None) -> None:
        self.owner = owner                # lower-case owner address
        self.frame = frame
        self.delivery = delivery
        # LATEST frames with the same key replace each other while queued; DROPPABLE frames
        # with a key (a node's metric, an edge's update) are coalesced to the latest instead of
        # dropped when a client falls behind (engine/server/outbox.py).
        self.coalesce_key = coalesce_key
        # The storage key of the job the frame is about, when the publisher knows it (a job's
        # reporter does): frames carry the owner's id, which takes a lookup to map back.
        self.job_key = job_key
        self._text: str | None = None

    def encoded(self) -> str:
        """The frame's JSON text, made once however many connections receive it."""
        text = self._text
        if text is None:
            text = self._text = encode(self.frame)
        return text

    def __repr__(self) -> str:
        return f"Event({self.owner!r}, {self.frame.get('type')!r}, {self.delivery.name})"


Listener = Callable[[Event], None]


class EventBus:
    """Listeners of every event, and listeners of a few frame types only: a run publishes
    about ten events, and a listener that wants two kinds of them is not called for the rest."""

    def __init__(self) -> None:
        self._listeners: list[tuple[Listener, frozenset[str] | None]] = []
        self._every: list[Listener] = []                 # the listeners of any frame type
        self._by_type: dict[str, list[Listener]] = {}    # type -> every listener it reaches

    def subscribe(self, listener: Listener, types: Iterable[str] | None = None) -> Callable[[], None]:
        """Call `listener` with each event (with `types`: each event whose frame type is one
        of them); returns the function that stops it."""
        entry = (listener, frozenset(types) if types is not None else None)
        self._listeners.append(entry)
        self._route()

        def unsubscribe() -> None:
            if entry in self._listeners:
                self._listeners.remove(entry)
                self._route()
        return unsubscribe

    def _route(self) -> None:
        # New lists, never changed in place: a publish under way keeps the ones it started with.
        self._every = [listener for listener, types in self._listeners if types is None]
        named = {kind for _, types in self._listeners if types for kind in types}
        self._by_type = {kind: [listener for listener, types in self._listeners
                                if types is None or kind in types] for kind in named}

    def publish(self, event: Event) -> None:
        listeners = self._by_type.get(event.frame.get("type"), self._every)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a faulty listener must not stop delivery to the others
                log.exception("event listener %r failed", listener)
