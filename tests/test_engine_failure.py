"""An engine whose essential task really ends says so (Engine.wait_failed) with the reason,
instead of looking alive; one stopped as asked does not. The headless engine then exits 1."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

import pytest

from engine.app import Engine
from engine.client import EngineClient
from tests.conftest import EngineFactory, Wallet


class BrokenSampler:
    """psutil failing, as on a system where /proc cannot be read."""

    def sample(self) -> tuple[float, float, int, float, float]:
        raise PermissionError("/proc/stat cannot be read")


def break_status_publisher(engine: Engine) -> None:
    engine._sampler = BrokenSampler()  # type: ignore[assignment]  # the next publish fails for real


def cancel(task: Callable[[Engine], Any]) -> Callable[[Engine], None]:
    return lambda engine: task(engine).cancel()


BREAKS: dict[str, tuple[Callable[[Engine], None], str]] = {
    "status publisher raises": (break_status_publisher,
                                "the status publisher failed (PermissionError: /proc/stat cannot be read)"),
    "history recorder cancelled": (cancel(lambda e: e.runtime.recorder.task), "the history recorder was cancelled"),
    "retention cancelled": (cancel(lambda e: e.runtime.retention.task), "history retention was cancelled"),
    "server cancelled": (cancel(lambda e: e.server.serve_task), "the WebSocket server was cancelled"),
    "automations' state writer cancelled": (cancel(lambda e: e.automations._writer),
                                            "the automations' state writer was cancelled"),
}


@pytest.mark.parametrize("how", list(BREAKS))
async def test_an_essential_task_that_ends_is_reported_with_its_reason(
        make_engine: EngineFactory, owner: Wallet, how: str) -> None:
    engine = await make_engine(status_interval=0.05)
    async with await EngineClient.connect(engine.url, owner.key) as client:
        await client.request("request_settings")
    waiter = asyncio.ensure_future(engine.wait_failed())
    await asyncio.sleep(0.1)
    assert not waiter.done() and engine.failure is None  # a healthy engine is quiet
    breaker, reason = BREAKS[how]
    breaker(engine)
    assert await asyncio.wait_for(waiter, 10) == reason
    assert engine.failure == reason and await engine.wait_failed() == reason
    await engine.stop()  # what is left of it goes; a new engine takes over the same data
    again = await make_engine()
    async with await EngineClient.connect(again.url, owner.key) as client:
        assert (await client.request("request_settings"))["type"] == "settings_response"


async def test_an_engine_stopped_as_asked_has_not_failed(make_engine: EngineFactory, caplog: Any) -> None:
    engine = await make_engine(status_interval=0.05)
    waiter = asyncio.ensure_future(engine.wait_failed())
    await asyncio.sleep(0.1)
    await engine.stop()
    assert await asyncio.wait_for(waiter, 5) is None and engine.failure is None
    assert "no longer works" not in caplog.text
    await engine.start()  # the same Engine started again is watched afresh
    waiter = asyncio.ensure_future(engine.wait_failed())
    engine.runtime.recorder.task.cancel()
    assert await asyncio.wait_for(waiter, 5) == "the history recorder was cancelled"


async def test_the_headless_engine_exits_1_when_it_breaks(
        monkeypatch: pytest.MonkeyPatch, data_dir: Path, owner: Wallet, capsys: Any) -> None:
    import engine.app
    from engine.cli import run_headless
    from engine.config import EngineConfig

    started: list[Engine] = []

    class Recorded(Engine):
        async def start(self) -> None:
            await super().start()
            started.append(self)

    monkeypatch.setattr(engine.app, "Engine", Recorded)
    config = EngineConfig(host="127.0.0.1", port=0, engine_id="test-engine", data_dir=data_dir,
                          owners=(owner.address,))
    run = asyncio.ensure_future(run_headless(config))
    for _ in range(200):
        if started or run.done():
            break
        await asyncio.sleep(0.05)
    assert started, "the engine did not start"
    started[0].runtime.recorder.task.cancel()
    assert await asyncio.wait_for(run, 20) == 1
    assert not started[0].running  # stopped on the way out
    assert "stopped because the history recorder was cancelled" in capsys.readouterr().err
