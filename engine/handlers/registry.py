"""One registry of message handlers: each message type declared once, with its schema and its
reply type. Validation and error envelopes happen here, so a handler holds only its own logic.

Handlers are marked with `@handler(...)` in their area's module and collected with
`HandlerRegistry.from_modules`; nothing is registered by import side effect.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable

from engine.protocol.errors import EngineError
from engine.protocol.schema import EMPTY, Schema

if TYPE_CHECKING:
    from engine.app import Engine
    from engine.protocol.errors import EngineError
    from engine.server.connection import ClientConnection


@dataclass
class Request:
    """What a handler gets: who asked, on which connection, the checked fields, the engine."""

    engine: "Engine"
    address: str               # checksummed signer, already on the allow-list
    owner: str                 # the same, lower-case: the key for per-user data
    type: str
    fields: dict[str, Any]     # the schema's fields, validated
    payload: dict[str, Any]    # the raw payload, for handlers that read extras
    connection: "ClientConnection"
    request_id: str | int | None = None


@dataclass(frozen=True)
class ReplyWhenReady:
    """A reply to send once `ready` is done, without holding up the connection's next frames
    (e.g. a job start acknowledged only once its record is committed: many starts then share
    one commit). Replies on one connection still leave in the order the requests came."""

    fields: dict[str, Any]
    ready: Awaitable[Any]
    after_sent: Callable[[], None] | None = None  # called once the reply is queued (always)


HandlerFn = Callable[[Request], Awaitable[dict[str, Any] | ReplyWhenReady | None]]
# Makes the frame sent after a refusal (or None): see `handler(on_refused=...)`.
RefusedFn = Callable[[Request, "EngineError"], Awaitable[dict[str, Any] | None]]


# A refusal of a request is answered with the envelope of its type; `on_error` may give the
# reply a shape of the type's own instead (its fields, without `type`).
ErrorShape = Callable[[EngineError, dict[str, Any]], dict[str, Any]]
ECHO_MAX_LEN = 4096


@dataclass(frozen=True)
class HandlerSpec:
    type: str
    schema: Schema
    reply_type: str | None  # the reply's `type`; None: the handler replies itself (or not at all)
    func: HandlerFn
    echo: tuple[str, ...] = ()        # request fields every refusal repeats (texts only)
    on_error: ErrorShape | None = None
    on_refused: RefusedFn | None = None

    def error_reply(self, envelope: dict[str, Any], error: EngineError,
                    payload: dict[str, Any] | None) -> dict[str, Any]:
        """The reply to a refused request of this type, whatever refused it (signature, schema
        or handler). The GUI matches some refusals by a request field (a listing by its
        `path`, a component list by its `component_type`), so those are repeated as sent."""
        payload = payload or {}
        if self.on_error is not None:
            shaped = {"type": envelope["type"], **self.on_error(error, payload)}
            if "request_type" in envelope:
                shaped["request_type"] = envelope["request_type"]
            return shaped
        for key in self.echo:
            value = payload.get(key)
            if isinstance(value, str) and len(value) <= ECHO_MAX_LEN:
                envelope[key] = value
        return envelope


def handler(msg_type: str, *, schema: Schema = EMPTY, reply: str | None = None,
            echo: tuple[str, ...] = (), on_error: ErrorShape | None = None,
            on_refused: RefusedFn | None = None) -> Callable[[HandlerFn], HandlerFn]:
    """Declare `func` as the handler of `msg_type`.

    The function returns the reply's fields (without `type`), or None to send no reply. Raising
    EngineError sends the error envelope with the same reply type (see HandlerSpec.error_reply).
    When the GUI empties a view on an error of that type (the datasets pages do),
    `on_refused(request, error)` makes the frame that puts the view back; it is sent right
    after the error reply, also when the payload failed its schema.
    """

    def mark(func: HandlerFn) -> HandlerFn:
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"handler for {msg_type!r} must be async")
        specs: list[HandlerSpec] = list(getattr(func, "__flowork_handlers__", ()))
        specs.append(HandlerSpec(msg_type, schema, reply, func, echo, on_error, on_refused))
        func.__flowork_handlers__ = specs  # type: ignore[attr-defined]
        return func

    return mark


class HandlerRegistry:
    def __init__(self, specs: Iterable[HandlerSpec] = ()) -> None:
        self._specs: dict[str, HandlerSpec] = {}
        for spec in specs:
            self.add(spec)

    @classmethod
    def from_modules(cls, modules: Iterable[ModuleType]) -> "HandlerRegistry":
        specs = []
        for module in modules:
            for _, obj in inspect.getmembers(module, inspect.iscoroutinefunction):
                if getattr(obj, "__module__", None) == module.__name__:
                    specs.extend(getattr(obj, "__flowork_handlers__", ()))
        return cls(specs)

    def add(self, spec: HandlerSpec) -> None:
        if spec.type in self._specs:
            raise ValueError(f"two handlers for message type {spec.type!r}")
        self._specs[spec.type] = spec

    def get(self, msg_type: str) -> HandlerSpec | None:
        return self._specs.get(msg_type)

    def types(self) -> list[str]:
        return sorted(self._specs)
