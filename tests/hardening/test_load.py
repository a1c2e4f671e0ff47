"""Load on loopback (issue 7, "Load"): 200 concurrent connections, each of its own owner, each
sending 50 signed requests to a real engine process. Every request is answered, every reply
carries its own request_id and its own connection's data (no mix-ups), nothing is logged as an
error, and the latency percentiles are printed (measured, never asserted: see the bar on
timing asserts)."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import coincurve
import pytest
from eth_account import Account
from websockets.asyncio.client import connect

from engine.auth.frame_auth import AUTH_MESSAGE_PREFIX
from engine.auth.signatures import personal_message_hash
from tests.hardening.helpers import EngineProcess, sign_text

pytestmark = pytest.mark.slow

CONNECTIONS = 200
REQUESTS = 50


class FastSigner:
    """personal_sign straight on libsecp256k1 (what ethers produces, byte for byte), so that
    10,000 freshly signed frames do not make the test's own CPU the bottleneck."""

    def __init__(self) -> None:
        account = Account.create()
        self.key = account.key.hex()
        self.address = account.address
        self._private = coincurve.PrivateKey(bytes(account.key))

    def sign(self, text: str) -> str:
        raw = self._private.sign_recoverable(personal_message_hash(text), hasher=None)
        return "0x" + (raw[:64] + bytes([raw[64] + 27])).hex()

    def frame(self, payload: dict[str, Any]) -> str:
        message = f"{AUTH_MESSAGE_PREFIX}{int(time.time() * 1000)}"
        return json.dumps({"auth": {"address": self.address, "message": message,
                                    "signature": self.sign(message)}, "payload": payload})


def test_fast_signer_matches_eth_account() -> None:
    signer = FastSigner()
    text = f"{AUTH_MESSAGE_PREFIX}1700000000000"
    assert signer.sign(text) == sign_text(signer.key, text)


def _request(index: int, seq: int, shared: Path) -> tuple[dict[str, Any], Any]:
    """The seq-th request of connection `index`, and a check of its reply."""
    rid = f"c{index}-r{seq}"
    kind = seq % 5
    if kind == 0:
        payload = {"type": "save_settings", "settings": {"conn": index, "seq": seq}}

        def check(r: dict[str, Any]) -> bool:
            return r["type"] == "settings_response" and r["settings"]["conn"] == index and r["settings"]["seq"] == seq
    elif kind == 1:
        payload = {"type": "request_settings"}

        def check(r: dict[str, Any]) -> bool:
            return r["type"] == "settings_response" and r["settings"].get("conn") == index
    elif kind == 2:
        payload = {"type": "request_directory_list", "path": str(shared / f"d{index}")}

        def check(r: dict[str, Any]) -> bool:
            return (r["type"] == "directory_list_response" and r["path"].endswith(f"d{index}")
                    and [i["name"] for i in r["items"]] == [f"only-{index}.txt"])
    elif kind == 3:
        payload = {"type": "update_variable", "name": f"V{seq}", "data": {"value": f"{index}-{seq}"}}

        def check(r: dict[str, Any]) -> bool:
            return r["type"] == "status_response" and r["name"] == f"V{seq}"
    else:
        payload = {"type": "request_variables"}

        def check(r: dict[str, Any]) -> bool:
            values = [v["value"] for v in r["variables"]]
            return r["type"] == "variables_response" and values and all(v.startswith(f"{index}-") for v in values)
    payload["request_id"] = rid
    return payload, check


async def _one_connection(url: str, signer: FastSigner, index: int, shared: Path,
                          latencies: list[float], start: asyncio.Event) -> int:
    async with connect(url, max_size=None, open_timeout=60) as ws:
        await start.wait()
        answered = 0
        for seq in range(REQUESTS):
            payload, check = _request(index, seq, shared)
            began = time.perf_counter()
            await ws.send(signer.frame(payload))
            while True:  # status updates and pushed lists may arrive before the reply
                frame = json.loads(await asyncio.wait_for(ws.recv(), 120))
                if frame.get("request_id") is not None:
                    break
                assert frame["type"] in ("engine_status_update", "variables_response"), frame
            latencies.append(time.perf_counter() - began)
            assert frame["request_id"] == payload["request_id"], (frame, payload)
            assert "error" not in frame, frame
            assert check(frame), (index, seq, frame)
            answered += 1
        return answered


async def test_200_connections_50_signed_requests_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signers = [FastSigner() for _ in range(CONNECTIONS)]
    shared = tmp_path / "shared"
    for i in range(CONNECTIONS):
        (shared / f"d{i}").mkdir(parents=True)
        (shared / f"d{i}" / f"only-{i}.txt").write_text(str(i))
    engine = EngineProcess(tmp_path / "data", tmp_path / "logs", [s.address for s in signers],
                           extra_args=("--root", str(shared), "--status-interval", "1"))
    await engine.start()
    latencies: list[float] = []
    try:
        start = asyncio.Event()
        tasks = [asyncio.create_task(_one_connection(engine.url, s, i, shared, latencies, start))
                 for i, s in enumerate(signers)]
        await asyncio.sleep(0)
        began = time.perf_counter()
        start.set()
        answered = await asyncio.wait_for(asyncio.gather(*tasks), 300)
        took = time.perf_counter() - began
    finally:
        assert await engine.stop() == 0
    assert answered == [REQUESTS] * CONNECTIONS
    log = engine.log_text()
    assert " ERROR " not in log and "Traceback" not in log, log[-3000:]
    ms = sorted(x * 1000 for x in latencies)
    p50, p99 = statistics.median(ms), ms[int(len(ms) * 0.99) - 1]
    with capsys.disabled():
        print(f"\nload: {len(ms)} signed requests on {CONNECTIONS} connections in {took:.1f} s "
              f"({len(ms) / took:.0f}/s); latency p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms")
