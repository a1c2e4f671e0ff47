"""The webhook HTTP server (aiohttp) on its own port: `ANY /webhook/<token>[/more/path]`.

Strangers get almost nothing: an unknown token, or any other path, is a plain 404 found with
one dictionary lookup of the token's hash (so the comparison leaks nothing about stored
tokens), before any body is read. Bodies are bounded (`client_max_size`): a larger one is a
413 and starts nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from aiohttp import web

from engine.runtime.payload import PayloadNotJSON, decode, encode

log = logging.getLogger(__name__)

# Request headers never passed on to the run: credentials and the signature itself.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-hub-signature",
                            "x-hub-signature-256", "x-api-key"})
SIGNATURE_HEADER = "X-Hub-Signature-256"

Handler = Callable[[str, str, web.Request], Awaitable[web.StreamResponse]]


def token_key(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class BadRequest(ValueError):
    pass


async def read_event(request: web.Request, sub_path: str, hidden_header: str | None) -> tuple[dict[str, Any], bytes]:
    """The run's initial data from the request: method, path (after the token), query,
    headers without secrets, body (JSON, form fields or text). Raises BadRequest."""
    body = await request.read()  # bounded by the application's client_max_size (413 past it)
    kind = request.content_type
    parsed: Any
    if not body:
        parsed = None
    elif kind == "application/json" or kind.endswith("+json"):
        try:
            parsed = decode(body)
        except ValueError as exc:
            raise BadRequest(f"The body is not valid JSON: {exc}.") from None
    elif kind == "application/x-www-form-urlencoded":
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        parsed = {k: v[0] if len(v) == 1 else v for k, v in fields.items()}
    else:
        parsed = body.decode("utf-8", "replace")
    hidden = SECRET_HEADERS | ({hidden_header.lower()} if hidden_header else set())
    headers = {k: v for k, v in request.headers.items() if k.lower() not in hidden}
    query: dict[str, Any] = {}
    for key in request.query.keys():
        values = request.query.getall(key)
        query[key] = values[0] if len(values) == 1 else values
    return {"trigger": "webhook", "method": request.method, "path": "/" + sub_path,
            "query": query, "headers": headers, "content_type": kind, "body": parsed}, body


def signature_ok(secret: str, body: bytes, presented: str | None) -> bool:
    """GitHub's X-Hub-Signature-256: "sha256=" + hex HMAC-SHA256 of the raw body."""
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), (presented or "").strip().encode("utf-8", "replace"))


def secret_ok(secret: str, presented: str | None) -> bool:
    return hmac.compare_digest(secret.encode("utf-8"), (presented or "").encode("utf-8", "replace"))


def json_response(status: int, data: Any) -> web.Response:
    try:
        body = encode(data)[0]  # what JSON cannot hold is written as its text, as in the history
    except PayloadNotJSON:
        body = b'{"error":"The run\'s result cannot be shown as JSON."}'
        status = 500
    return web.Response(status=status, body=body, content_type="application/json", charset="utf-8")


def plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", content_type="text/plain")


class WebhookServer:
    def __init__(self, host: str, port: int, max_body: int, handle: Handler) -> None:
        self.host = host
        self.port = port
        self.max_body = max_body
        self._handle = handle
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=self.max_body)
        app.router.add_route("*", "/webhook/{token}", self._route)
        app.router.add_route("*", "/webhook/{token}/{rest:.*}", self._route)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if self.port == 0:
            server = site._server  # noqa: SLF001 - the only way aiohttp tells the bound port
            sockets = getattr(server, "sockets", None) or []
            if sockets:
                self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}/webhook/"

    async def _route(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request.match_info["token"], request.match_info.get("rest", ""), request)
