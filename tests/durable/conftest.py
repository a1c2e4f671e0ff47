"""Durable jobs (issue 13) against real engine processes: a real SIGKILL or SIGTERM, a restart
on the same data folder, real sockets and signed frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.conftest import Wallet
from tests.durable.support import SlowServer
from tests.engine_process import EngineProcess, processes  # noqa: F401 - the fixture

StartEngine = Callable[..., EngineProcess]


@pytest.fixture
def start_engine(data_dir: Path, tmp_path: Path, owner: Wallet, processes) -> StartEngine:  # noqa: F811
    """Start `python -m engine` on the test's data folder (the one make_engine uses too)."""

    def factory(*, owners: list[Wallet] | None = None, **options: Any) -> EngineProcess:
        process = EngineProcess(data_dir, tmp_path / "logs", owners or [owner], **options)
        processes.append(process)
        return process

    return factory


@pytest.fixture
def restart(processes) -> Callable[[EngineProcess], EngineProcess]:  # noqa: F811
    """The same engine started again on its data folder, cleaned up after the test."""

    def again(process: EngineProcess) -> EngineProcess:
        process = process.restart()
        processes.append(process)
        return process

    return again


@pytest.fixture
def slow_server() -> Iterator[SlowServer]:
    """A local HTTP server that holds each request until the test sets `release`."""
    server = SlowServer()
    yield server
    server.close()
