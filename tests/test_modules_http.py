"""http_request against a real HTTP server on 127.0.0.1 started by the test; SIMULATE sends
nothing."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engine.client import EngineClient
from tests.runtime_support import edge, final, metrics, node, run, workflow


class LocalHttpServer:
    """A tiny real HTTP server that records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"method": self.command, "path": self.path,
                                       "headers": dict(self.headers.items()), "body": body})
                if self.path.startswith("/missing"):
                    status, reply = 404, {"error": "no such thing"}
                else:
                    status, reply = 200, {"ok": True, "echo": body.decode("utf-8", "replace")}
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def __enter__(self) -> "LocalHttpServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


async def test_http_request_sends_and_returns_the_response(client: EngineClient) -> None:
    with LocalHttpServer() as server:
        wf = workflow([node("s", "set_data", data={"name": "ann"}),
                       node("h", "http_request", method="POST", url=server.url("/api?x=1"),
                            headers={"X-Test": "yes"}, body={"who": "{{data.name}}"}, timeout_s=5)],
                      [edge("s", "h")])
        _, events = await run(client, wf)
        assert final(events)["status"] == "SUCCEEDED"
        response = final(events)["result"]["data"]["response"]
        assert response["status"] == 200 and response["body"]["ok"] is True
        assert json.loads(response["body"]["echo"]) == {"who": "ann"}
        sent = server.requests[0]
        assert (sent["method"], sent["path"]) == ("POST", "/api?x=1")
        assert sent["headers"]["X-Test"] == "yes" and sent["headers"]["Content-Type"] == "application/json"


async def test_http_errors_leave_through_the_error_port_or_fail(client: EngineClient) -> None:
    with LocalHttpServer() as server:
        wf = workflow([node("h", "http_request", url=server.url("/missing")),
                       node("e", "log_message", message="{{data.error.message}}")],
                      [edge("h", "e", "error")])
        _, events = await run(client, wf)
        assert final(events)["status"] == "SUCCEEDED"
        assert any(e["type"] == "log" and "answered 404" in e["message"] for e in events)
        _, events = await run(client, workflow([node("h", "http_request", url=server.url("/missing"),
                                                     fail_on_http_error=False)], []))
        assert final(events)["result"]["data"]["response"]["status"] == 404
    # Nothing listens there any more: a clear failure, no traceback.
    _, events = await run(client, workflow([node("h", "http_request", url=server.url("/gone"), timeout_s=2)], []))
    assert final(events)["status"] == "FAILED" and "failed" in final(events)["error"]
    _, events = await run(client, workflow([node("h", "http_request", url="file:///etc/passwd")], []))
    assert "must be an http:// or https:// address" in final(events)["error"]


async def test_simulate_sends_no_request(client: EngineClient) -> None:
    with LocalHttpServer() as server:
        wf = workflow([node("h", "http_request", method="DELETE", url=server.url("/things/1"))], [])
        _, events = await run(client, wf, mode="SIMULATE")
        assert server.requests == []
    done = final(events)
    assert done["status"] == "SUCCEEDED"
    assert done["result"]["data"]["response"] == {"simulated": True, "method": "DELETE",
                                                  "url": server.url("/things/1"), "body_bytes": 0}
    assert all(m["mode"] == "SIMULATE" for m in metrics(events))
