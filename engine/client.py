"""An asyncio client for the engine, signing every frame exactly as the web GUI does.

For people (`python -m engine.client --url ws://... request_settings`) and for the tests, which
drive the engine through it over real sockets. The private key comes from an argument or the
FLOWORK_PRIVATE_KEY environment variable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
import time
from typing import Any, AsyncIterator, Callable

from eth_account import Account
from eth_account.messages import encode_defunct
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from engine.auth.frame_auth import AUTH_MESSAGE_PREFIX
from engine.protocol.canonical import canonical_json

KEY_ENV = "FLOWORK_PRIVATE_KEY"
SIGN_IN_FIRST_ABOVE = 48 * 1024  # bytes of frame text; the engine's limit before sign-in is 64 KiB


class EngineReplyError(Exception):
    """The engine answered a request with an error envelope."""

    def __init__(self, frame: dict[str, Any]) -> None:
        super().__init__(f"{frame.get('code')}: {frame.get('error')}")
        self.frame = frame
        self.code = frame.get("code")


class Signer:
    """personal_sign of the GUI's auth message, like ethers' Wallet.signMessage."""

    def __init__(self, private_key: str | bytes | None = None) -> None:
        key = private_key or os.environ.get(KEY_ENV)
        if not key:
            raise ValueError(f"no private key: pass one or set {KEY_ENV}")
        self._account = Account.from_key(key)
        self.address: str = self._account.address

    def sign_text(self, text: str) -> str:
        return "0x" + self._account.sign_message(encode_defunct(text=text)).signature.hex().removeprefix("0x")

    def auth_block(self, timestamp_ms: int | None = None) -> dict[str, str]:
        stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        message = f"{AUTH_MESSAGE_PREFIX}{stamp}"
        return {"address": self.address, "message": message, "signature": self.sign_text(message)}

    def sign_workflow(self, workflow_data: dict[str, Any]) -> str:
        """The `save_preset` signature: over the canonical JSON of {"workflow_data": ...}."""
        return self.sign_text(canonical_json({"workflow_data": workflow_data}))


class EngineClient:
    """One connection. Replies are matched to requests by `request_id`; everything else is an
    event, read with `next_event` or `events`."""

    def __init__(self, ws: ClientConnection, signer: Signer, *, keep_texts: bool = False) -> None:
        self.ws = ws
        self.signer = signer
        # With keep_texts, the raw text of every frame received (tests scan it for leaks).
        self.texts: list[str] | None = [] if keep_texts else None
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())
        self.closed = asyncio.Event()
        self.signed_in = False  # a reply came to a frame of ours that passed the auth check

    @classmethod
    async def connect(cls, url: str, private_key: str | bytes | None = None, *,
                      origin: str | None = None, keep_texts: bool = False,
                      **kwargs: Any) -> "EngineClient":
        headers = {"Origin": origin} if origin else None
        ws = await connect(url, additional_headers=headers, max_size=None, **kwargs)
        return cls(ws, Signer(private_key), keep_texts=keep_texts)

    @property
    def address(self) -> str:
        return self.signer.address

    async def __aenter__(self) -> "EngineClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader

    def frame(self, payload: dict[str, Any], *, auth: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"auth": auth if auth is not None else self.signer.auth_block(), "payload": payload}

    async def send(self, payload: dict[str, Any], *, auth: dict[str, Any] | None = None) -> None:
        await self.ws.send(json.dumps(self.frame(payload, auth=auth)))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def request(self, msg_type: str, *, timeout: float = 15.0, check: bool = True,
                      auth: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Send a signed request and return its reply. With check, an error reply raises."""
        request_id = f"r{next(self._ids)}"
        payload = {"type": msg_type, "request_id": request_id, **fields}
        text = json.dumps(self.frame(payload, auth=auth))
        if not self.signed_in and len(text) > SIGN_IN_FIRST_ABOVE:
            # The engine takes small frames only until a connection has signed in (64 KiB):
            # sign in with a small request first, as the GUI's opening burst does.
            await self.request("request_settings", timeout=timeout, check=False)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            await self.ws.send(text)
            reply = await asyncio.wait_for(future, timeout)
        finally:
            self._waiting.pop(request_id, None)
        if not str(reply.get("code", "")).startswith(("auth_", "not_authorized")):
            self.signed_in = True
        if check and reply.get("error"):
            raise EngineReplyError(reply)
        return reply

    async def next_event(self, msg_type: str | None = None, *, timeout: float = 15.0,
                         where: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """The next event of that type (events of other types before it are discarded)."""
        async def wait() -> dict[str, Any]:
            while True:
                event = await self._events.get()
                if (msg_type is None or event.get("type") == msg_type) and (where is None or where(event)):
                    return event
        return await asyncio.wait_for(wait(), timeout)

    def pending_events(self) -> list[dict[str, Any]]:
        """Every event received so far and not yet consumed, without waiting."""
        items = []
        while not self._events.empty():
            items.append(self._events.get_nowait())
        return items

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self._events.get()

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if self.texts is not None:
                    self.texts.append(message if isinstance(message, str)
                                      else message.decode("utf-8", "replace"))
                frame = json.loads(message)
                rid = frame.get("request_id") if isinstance(frame, dict) else None
                future = self._waiting.get(str(rid)) if rid is not None else None
                if future is not None and not future.done():
                    future.set_result(frame)
                else:
                    self._events.put_nowait(frame)
        except ConnectionClosed:
            pass  # an aborted connection ends the reader quietly; waiters are failed below
        finally:
            self.closed.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("the engine closed the connection"))


async def _cli(args: argparse.Namespace) -> int:
    fields = json.loads(args.fields) if args.fields else {}
    async with await EngineClient.connect(args.url, args.key) as client:
        if args.type == "save_preset" and "signature" not in fields and isinstance(fields.get("workflow_data"), dict):
            # The second signature a preset needs, made as the GUI makes it: from a terminal
            # nobody can compute it by hand.
            fields["signature"] = client.signer.sign_workflow(fields["workflow_data"])
        reply = await client.request(args.type, check=False, timeout=args.timeout, **fields)
        print(json.dumps(reply, indent=2, ensure_ascii=False))
        if args.follow:
            async for event in client.events():
                print(json.dumps(event, ensure_ascii=False), flush=True)
        return 1 if reply.get("error") else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.client",
                                description="Send one signed request to a Flowork engine and print the reply.")
    p.add_argument("--url", required=True, help="ws://HOST:PORT/?engineId=ID")
    p.add_argument("--key", help=f"hex private key (default: ${KEY_ENV})")
    p.add_argument("--timeout", type=float, default=15.0)
    p.add_argument("--follow", action="store_true", help="keep printing events after the reply")
    p.add_argument("type", help="message type, e.g. request_settings")
    p.add_argument("fields", nargs="?", help="payload fields as a JSON object")
    try:
        return asyncio.run(_cli(p.parse_args(argv)))
    except (ValueError, OSError) as exc:
        print(f"engine.client: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
