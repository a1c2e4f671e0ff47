"""The WebSocket server: handshake checks, the per-connection read loop, routing of events.

Handshake (protocol.md §2): the `engineId` query parameter and the `Origin` header are checked
before the upgrade; a refusal is an HTTP 403 with a short text. Frames are then read one at a
time per connection (so a client's requests are answered in order), each verified and dispatched
through the handler registry; one client's slow request never holds up another client.
"""

from __future__ import annotations

import asyncio
import functools
import contextlib
import hmac
import logging
import re
import weakref
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest, Response as HttpResponse

from engine.auth.access import AccessRequest
from engine.auth.frame_auth import FrameAuthenticator, NotAuthorized, normalize_address
from engine.events import Event
from engine.handlers.registry import HandlerRegistry, HandlerSpec, ReplyWhenReady, Request
from engine.protocol.errors import EngineError, ErrorCode
from engine.protocol.frames import IncomingFrame, error_frame, parse_frame, peek_request
from engine.server.admission import Admission, AdmittedConnection
from engine.server.connection import ClientConnection, send_texts
from engine.server.outbox import Outbox, OutboxOverflow

if TYPE_CHECKING:
    from engine.app import Engine

log = logging.getLogger(__name__)

PairingHandler = Callable[[AccessRequest], Awaitable[bool]]
_LOOPBACK_ORIGIN = re.compile(r"\Ahttps?://(localhost|127(\.[0-9]{1,3}){3}|\[::1\])(:[0-9]{1,5})?\Z",
                              re.I | re.ASCII)


def origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    """No Origin (a non-browser client), a loopback origin, or one on the allow-list.
    Entries may use one leading wildcard label: `https://*.flowork.cloud`."""
    if origin is None:
        return True
    origin = origin.strip().rstrip("/")
    if _LOOPBACK_ORIGIN.match(origin):
        return True
    lowered = origin.lower()
    for pattern in allowed:
        pattern = pattern.strip().rstrip("/").lower()
        if pattern == "*" or pattern == lowered:
            return True
        if "://*." in pattern:
            scheme, _, host_pattern = pattern.partition("://*.")
            o_scheme, _, o_host = lowered.partition("://")
            if o_scheme == scheme and o_host.endswith("." + host_pattern) and "/" not in o_host:
                return True
    return False


class EngineServer:
    """Accepts connections and runs them; owned and started by the Engine."""

    def __init__(self, engine: "Engine", registry: HandlerRegistry,
                 authenticator: FrameAuthenticator) -> None:
        self.engine = engine
        self.registry = registry
        self.auth = authenticator
        self._server: Server | None = None
        self.admission: Admission | None = None  # made with the server (it needs the config)
        # Insertion-ordered (a dict as an ordered set): the first unauthenticated one is the
        # oldest, the one to close when a newcomer needs its slot.
        self._connections: dict[ClientConnection, None] = {}
        # Accepted at the HTTP stage, not yet in _connections; weak, so that a handshake that
        # fails afterwards drops out by itself.
        self._handshaking: weakref.WeakSet[ServerConnection] = weakref.WeakSet()
        self._by_owner: dict[str, set[ClientConnection]] = {}
        # The one pairing question being asked (address, answer), if any: one dialog at a time.
        self._pairing: tuple[str, asyncio.Future[bool]] | None = None
        self._pairing_denied: dict[str, float] = {}  # address -> loop time its cool-down ends
        self._refusals_logged: dict[str, float] = {}  # address -> when its refusal was last logged
        self.pairing_handler: PairingHandler | None = None
        self.on_authenticated: Callable[[ClientConnection, str, bool], None] | None = None
        # Runs while the server listens; it ends only when the server closes (the Engine
        # watches it: a server that closes without stop() means a broken engine).
        self.serve_task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        config = self.engine.config
        admission = self.admission = Admission(config.handshakes_per_s, config.handshake_burst,
                                               max_waiting=config.max_connections)
        self._server = await serve(
            self._run_connection, host, port,
            create_connection=functools.partial(AdmittedConnection, admission=admission),  # type: ignore[arg-type]
            process_request=self._check_handshake,
            # The limits of a connection that has not signed in yet (see _lift_limits): the
            # inflated size of a compressed frame is bounded by max_size too.
            max_size=min(PREAUTH_MAX_FRAME_BYTES, config.max_frame_bytes),
            max_queue=PREAUTH_MAX_QUEUE,
            ping_interval=20, ping_timeout=20,
            close_timeout=5,
            server_header=f"Flowork-Engine/{self.engine.version}",
        )
        self.serve_task = asyncio.create_task(self._server.serve_forever(), name="engine-server")

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1] if self._server.sockets else 0

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close(close_connections=True)
        await self._server.wait_closed()
        self._server = None
        if self.admission is not None:
            self.admission.close()
        if self.serve_task is not None:
            await asyncio.gather(self.serve_task, return_exceptions=True)
            self.serve_task = None

    # -- handshake ---------------------------------------------------------------------------

    def _check_handshake(self, connection: ServerConnection, request: HttpRequest) -> HttpResponse | None:
        config = self.engine.config
        query = parse_qs(urlsplit(request.path).query)
        given = (query.get("engineId") or [""])[0]
        if not hmac.compare_digest(given.encode("utf-8"), self.auth.engine_id.encode("utf-8")):
            log.info("refused a connection from %s: wrong or missing engineId", _remote(connection))
            return connection.respond(HTTPStatus.FORBIDDEN, "Wrong or missing engineId.\n")
        origins = request.headers.get_all("Origin")
        if len(origins) > 1:  # a browser sends one; two make "the" origin ambiguous
            log.info("refused a connection from %s: %d Origin headers", _remote(connection), len(origins))
            return connection.respond(HTTPStatus.BAD_REQUEST, "More than one Origin header.\n")
        origin = origins[0] if origins else None
        if not origin_allowed(origin, config.origins):
            log.info("refused a connection from origin %r", origin)
            return connection.respond(HTTPStatus.FORBIDDEN, "Origin not allowed.\n")
        # Handshakes accepted but not yet running count too, or a burst of simultaneous
        # connections would all pass the check before any of them is registered.
        count = len(self._connections) + len(self._handshaking)
        if count >= config.max_connections and not self._evict_oldest_stranger():
            log.warning("refused a connection: %d clients already connected, all signed in", count)
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Too many connections.\n")
        self._handshaking.add(connection)
        return None

    def _evict_oldest_stranger(self) -> bool:
        """Make room for a newcomer by closing the oldest connection that has not signed in
        (nor waits for the pairing question). Signed-in owners are never closed for anyone:
        strangers who fill every slot only push each other out."""
        for conn in self._connections:
            if not conn.owners and not conn.pairing:
                log.info("closing %s to make room: the engine is full and it has not signed in",
                         conn.label)
                self._forget(conn)
                conn.ws.transport.abort()  # at once: a closing handshake would hold the slot
                return True
        return False

    # -- connections -------------------------------------------------------------------------

    @property
    def client_count(self) -> int:
        return len(self._connections)

    async def _run_connection(self, ws: ServerConnection) -> None:
        conn = ClientConnection(ws=ws, outbox=None, remote=_remote(ws))  # type: ignore[arg-type]
        conn.outbox = Outbox(ws.send, label=conn.label, limit=self.engine.config.outbox_limit,
                             send_many=functools.partial(send_texts, ws))
        self._handshaking.discard(ws)
        self._connections[conn] = None
        writer = asyncio.create_task(self._write(conn), name=f"writer-{conn.id}")
        conn.watchdog = asyncio.get_running_loop().call_later(
            self.engine.config.auth_timeout_s, self._drop_if_anonymous, conn)
        log.info("%s connected", conn.label)
        try:
            async for message in ws:
                await self._handle_frame(conn, message)
                if conn.refused >= PREAUTH_MAX_REFUSED:
                    # Read nothing more of it (what it queued meanwhile is dropped); the
                    # refusals already answered go out first, then the close.
                    conn.outbox.close()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(writer), 2)
                    await ws.close(1008, "too many refused frames before signing in")
                    break
        except ConnectionClosed:
            pass
        finally:
            if conn.watchdog is not None:
                conn.watchdog.cancel()
            self._forget(conn)
            conn.outbox.close()
            writer.cancel()
            try:
                await writer
            except (asyncio.CancelledError, ConnectionClosed):
                pass
            log.info("%s disconnected (code %s)", conn.label, ws.close_code)

    def _drop_if_anonymous(self, conn: ClientConnection) -> None:
        """Whoever knows the engineId can connect. A connection that has not signed a valid frame
        of an allowed owner within auth_timeout_s holds one of the max_connections slots for
        nothing: close it (1008), so idle strangers cannot lock the owner out."""
        conn.watchdog = None
        if conn.owners:
            return
        timeout = self.engine.config.auth_timeout_s
        loop = asyncio.get_running_loop()
        if conn.pairing and conn.pairing_until > loop.time():
            # The user is being asked: wait for the answer, which is bounded (pairing_timeout_s).
            conn.watchdog = loop.call_at(conn.pairing_until + 0.1, self._drop_if_anonymous, conn)
            return
        log.info("closing %s: no valid signed frame of an allowed owner within %g s", conn.label, timeout)
        asyncio.ensure_future(conn.ws.close(1008, "no valid signed frame in time"))

    async def _write(self, conn: ClientConnection) -> None:
        try:
            await conn.outbox.run()
        except ConnectionClosed:
            pass

    def _forget(self, conn: ClientConnection) -> None:
        self._connections.pop(conn, None)
        for owner in conn.owners:
            peers = self._by_owner.get(owner)
            if peers is not None:
                peers.discard(conn)
                if not peers:
                    del self._by_owner[owner]

    # -- frames ------------------------------------------------------------------------------

    async def _handle_frame(self, conn: ClientConnection, message: str | bytes) -> None:
        request_type: str | None = None
        request_id: str | int | None = None
        spec: HandlerSpec | None = None
        payload: dict[str, Any] | None = None
        request: Request | None = None
        try:
            try:
                frame = await self._parse(message)
            except EngineError:
                if not isinstance(message, (bytes, bytearray)):
                    request_type, request_id = peek_request(message)
                raise
            request_type, request_id, payload = frame.type, frame.request_id, frame.payload
            spec = self.registry.get(frame.type)
            address = await self._authenticate(conn, frame.auth)
            if spec is None:
                self._reply(conn, {"type": "status_response",
                                   "status": f"Command '{frame.type}' received but not handled.",
                                   "request_type": frame.type}, request_id)
                return
            request = Request(engine=self.engine, address=address,
                              owner=normalize_address(address), type=frame.type, fields={},
                              payload=frame.payload, connection=conn, request_id=request_id)
            request.fields = spec.schema.validate(frame.payload)
            result = await spec.func(request)
            if isinstance(result, ReplyWhenReady):
                self._reply(conn, {"type": spec.reply_type or "status_response", **result.fields},
                            request_id, ready=result.ready, after_sent=result.after_sent)
            elif result is not None and spec.reply_type is not None:
                self._reply(conn, {"type": spec.reply_type, **result}, request_id)
        except EngineError as exc:
            self._reply(conn, self._refusal(exc, spec, payload, request_type), request_id)
            if request is not None and spec is not None and spec.on_refused is not None:
                self._after_refusal(conn, spec.on_refused(request, exc))
            if not conn.owners:
                self._count_refusal(conn)
        except OutboxOverflow as exc:
            log.warning("closing %s: %s", conn.label, exc)
            await conn.ws.close(1013, "client too slow")
        except Exception:  # the connection must stay usable; the log gets the traceback
            log.exception("handler for %r failed", request_type)
            err = EngineError(ErrorCode.INTERNAL, "The engine failed to handle this request; "
                              "the details are in the engine log.")
            self._reply(conn, self._refusal(err, spec, payload, request_type), request_id)

    @staticmethod
    def _refusal(error: EngineError, spec: HandlerSpec | None, payload: dict[str, Any] | None,
                 request_type: str | None) -> dict[str, Any]:
        envelope = error_frame(error, reply_type=spec.reply_type if spec else None,
                               request_type=request_type, request_id=None)
        return spec.error_reply(envelope, error, payload) if spec is not None else envelope

    async def _parse(self, message: str | bytes) -> IncomingFrame:
        if isinstance(message, str) and len(message) > OFFLOAD_FRAME_CHARS:
            return await self.engine.workers.run(parse_frame, message)
        return parse_frame(message)

    def _reply(self, conn: ClientConnection, frame: dict[str, Any],
               request_id: str | int | None, *, ready: Awaitable[Any] | None = None,
               after_sent: Callable[[], None] | None = None) -> None:
        """Send a reply now, or (behind a reply still waiting, or with `ready`) as soon as the
        replies before it are out and `ready` is done: replies keep the requests' order."""
        if request_id is not None:
            frame["request_id"] = request_id
        tail = conn.reply_tail
        if ready is not None or (tail is not None and not tail.done()):
            conn.reply_tail = asyncio.ensure_future(
                self._reply_after(conn, tail, ready, frame, after_sent))
            return
        try:
            self._send_reply(conn, frame)
        finally:
            if after_sent is not None:
                after_sent()

    async def _reply_after(self, conn: ClientConnection, previous: asyncio.Future[None] | None,
                           ready: Awaitable[Any] | None, frame: dict[str, Any],
                           after_sent: Callable[[], None] | None) -> None:
        try:
            if ready is not None:
                try:
                    await ready
                except EngineError as exc:  # what was to be confirmed did not happen: say why
                    frame = error_frame(exc, reply_type=frame.get("type"),
                                        request_type=frame.get("request_type"),
                                        request_id=frame.get("request_id"))
                except Exception:  # noqa: BLE001 - the reply still goes out; the log has the cause
                    log.exception("waiting to reply to %r failed", frame.get("request_type"))
            if previous is not None:
                await previous  # never raises: it is another _reply_after
            self._send_reply(conn, frame)
        finally:
            if after_sent is not None:
                after_sent()

    def _after_refusal(self, conn: ClientConnection, make: Awaitable[dict[str, Any] | None]) -> None:
        """Send the frame `make` produces right after the error reply queued before it."""
        previous = conn.reply_tail

        async def send() -> None:
            try:
                frame = await make
            except Exception:  # noqa: BLE001 - the error reply went out; the log has this one
                log.exception("making the frame after a refused request failed")
                return
            if previous is not None:
                await previous  # never raises: it is a _reply_after
            if frame is not None:
                self._send_reply(conn, frame)
        conn.reply_tail = asyncio.ensure_future(send())

    def _send_reply(self, conn: ClientConnection, frame: dict[str, Any]) -> None:
        try:
            conn.send(frame)
        except OutboxOverflow as exc:
            log.warning("closing %s: %s", conn.label, exc)
            asyncio.ensure_future(conn.ws.close(1013, "client too slow"))

    def _count_refusal(self, conn: ClientConnection) -> None:
        """A connection that has not signed in gets a few refused frames (a GUI whose address
        is not allowed sees the refusal), then it is closed: a stranger gets almost nothing of
        the engine's time."""
        conn.refused += 1
        if conn.refused == PREAUTH_MAX_REFUSED:
            log.info("closing %s: %d refused frames and no valid signed frame of an allowed owner",
                     conn.label, conn.refused)

    def _lift_limits(self, conn: ClientConnection) -> None:
        """The first frame signed by an allowed owner: from now on the connection gets the
        full frame size and queue (before, PREAUTH_MAX_FRAME_BYTES and PREAUTH_MAX_QUEUE)."""
        ws = conn.ws
        ws.protocol.max_message_size = self.engine.config.max_frame_bytes
        messages = ws.recv_messages
        messages.high, messages.low = AUTHENTICATED_MAX_QUEUE, AUTHENTICATED_MAX_QUEUE // 4
        messages.maybe_resume()

    async def _authenticate(self, conn: ClientConnection, auth: Any) -> str:
        """FrameAuthenticator.authenticate decides; a valid signer it refuses may still be
        offered pairing (with an empty allow-list)."""
        try:
            signer = self.auth.authenticate(auth)
        except NotAuthorized as refused:
            signer = refused.signer
            if not await self._pair(conn, signer):
                self._refused(conn, signer)
                raise
        owner = normalize_address(signer)
        first = owner not in conn.owners
        if first:
            if not conn.owners:
                self._lift_limits(conn)
            conn.owners.add(owner)
            self._by_owner.setdefault(owner, set()).add(conn)
            if self.on_authenticated is not None:
                self.on_authenticated(conn, owner, len(conn.owners) == 1)
        return signer

    async def _pair(self, conn: ClientConnection, signer: str) -> bool:
        """With an empty allow-list, ask the desktop app whether `signer` may pair.

        One question at a time: while one address is being asked about, every other address is
        refused at once (its frames are not held). A denied (or unanswered) address is refused
        without asking for `pairing_cooldown_s`. The wait is bounded by `pairing_timeout_s`, and
        the connection is spared the sign-in timeout for that long only."""
        config = self.engine.config
        if self.pairing_handler is None or len(self.auth.owners) > 0:
            return False
        key = normalize_address(signer)
        loop = asyncio.get_running_loop()
        if self._pairing_denied.get(key, 0.0) > loop.time():
            return False
        if self._pairing is not None and self._pairing[0] != key:
            return False  # someone else is being asked about right now
        if self._pairing is None:
            request = AccessRequest(signer, _origin(conn.ws), conn.remote)
            answer = asyncio.ensure_future(self._ask_pairing(request))
            self._pairing = (key, answer)
            answer.add_done_callback(lambda _f: self._pairing_done(key, answer))
        answer = self._pairing[1]
        conn.pairing = True
        conn.pairing_until = loop.time() + config.pairing_timeout_s
        try:
            return await asyncio.shield(answer)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if answer.cancelled() and not (task is not None and task.cancelling()):
                return False  # the question became moot (owners_changed), not our cancellation
            raise
        finally:
            conn.pairing = False

    def _pairing_done(self, key: str, answer: asyncio.Future[bool]) -> None:
        if self._pairing is not None and self._pairing[1] is answer:
            self._pairing = None
        allowed = not answer.cancelled() and answer.exception() is None and answer.result()
        if not allowed:
            loop = asyncio.get_running_loop()
            self._pairing_denied[key] = loop.time() + self.engine.config.pairing_cooldown_s
            now = loop.time()
            for address, until in list(self._pairing_denied.items()):
                if until <= now:
                    del self._pairing_denied[address]

    async def _ask_pairing(self, request: AccessRequest) -> bool:
        assert self.pairing_handler is not None
        timeout = self.engine.config.pairing_timeout_s
        try:
            allowed = await asyncio.wait_for(self.pairing_handler(request), timeout=timeout)
        except asyncio.TimeoutError:
            log.info("pairing request for %s was not answered within %g s", request.address, timeout)
            return False
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a failed dialog means "not paired"
            log.exception("pairing request for %s failed", request.address)
            return False
        if not allowed:
            return False
        # Looked at again on Allow: the question was asked while nobody owned the engine; if
        # someone does by now, this answer is stale and adds no second owner.
        if len(self.auth.owners) > 0 and not self.auth.owners.allows(request.address):
            log.warning("pairing of %s was allowed after the engine got an owner; not added",
                        request.address)
            return False
        await self.engine.add_owner(request.address)
        return True

    def owners_changed(self) -> None:
        """The allow-list changed outside pairing: a question still open is moot once someone
        owns the engine (its dialog closes; the waiting frames are refused)."""
        if self._pairing is not None and len(self.auth.owners) > 0:
            key, answer = self._pairing
            if not self.auth.owners.allows(key):
                answer.cancel()

    def _refused(self, conn: ClientConnection, signer: str) -> None:
        """A valid signature of an address that is not an owner: log it (each address once in
        REFUSAL_LOG_S) and, while owners exist, tell the desktop app (Engine.on_address_refused),
        which may offer to allow it."""
        key, now = normalize_address(signer), asyncio.get_running_loop().time()
        if now - self._refusals_logged.get(key, -REFUSAL_LOG_S) >= REFUSAL_LOG_S:
            self._refusals_logged[key] = now
            while len(self._refusals_logged) > 256:
                del self._refusals_logged[next(iter(self._refusals_logged))]
            log.warning("refused %s from %s: not an owner of this engine", signer, conn.label)
        hook = self.engine.on_address_refused
        if hook is not None and len(self.auth.owners) > 0:
            try:
                hook(AccessRequest(signer, _origin(conn.ws), conn.remote))
            except Exception:  # noqa: BLE001 - the refusal stands whatever the listener does
                log.exception("the refused-address listener failed")

    # -- events ------------------------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """Route an event from the bus to the owner's connections (or to all authenticated)."""
        if event.owner is None:
            targets = [c for c in self._connections if c.owners]
        else:
            targets = list(self._by_owner.get(event.owner, ()))
        if not targets:
            return
        text = event.encoded()
        for conn in targets:
            if conn.too_slow:
                continue  # said and closed once; the events it would have had are not queued
            try:
                conn.send_text(text, event.delivery, event.coalesce_key)
            except OutboxOverflow as exc:
                conn.too_slow = True
                log.warning("closing %s: %s", conn.label, exc)
                asyncio.ensure_future(conn.ws.close(1013, "client too slow"))

    def connections_of(self, owner: str) -> list[ClientConnection]:
        return list(self._by_owner.get(normalize_address(owner), ()))


# Until a connection has sent one frame signed by an allowed owner: frames of at most 64 KiB
# (inflated size included: permessage-deflate stops at max_size, so a small frame that inflates
# to megabytes costs 64 KiB of inflating, then the connection is closed with 1009), at most two
# frames read ahead, and PREAUTH_MAX_REFUSED refused frames before it is closed. The GUI's
# opening frames are a few hundred bytes each; its burst waits in the socket meanwhile.
PREAUTH_MAX_FRAME_BYTES = 64 * 1024
PREAUTH_MAX_QUEUE = 2
PREAUTH_MAX_REFUSED = 4
AUTHENTICATED_MAX_QUEUE = 16

# Above this size a frame is decoded on a worker thread. Decoding is CPU work proportional to
# the frame (the nesting check and the decoder's C parts hold the GIL wherever they run, but the
# Python-level checks then yield to the loop every few milliseconds); below it, the thread hop
# would cost more than the parse.
OFFLOAD_FRAME_CHARS = 64 * 1024
REFUSAL_LOG_S = 600.0


def _origin(ws: ServerConnection) -> str | None:
    try:
        return ws.request.headers.get("Origin") if ws.request is not None else None
    except Exception:  # noqa: BLE001 - two Origin headers were refused at the handshake
        return None


def _remote(ws: ServerConnection) -> str:
    try:
        host, port = ws.remote_address[:2]
        return f"{host}:{port}"
    except Exception:  # noqa: BLE001
        return "?"
