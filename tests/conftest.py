"""Shared fixtures: isolated user folders, an in-memory keyring, real engines on real sockets,
and signing clients with keys generated per test."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

# Before anything reads them: the user's folders and keyring are never the real ones.
_SANDBOX = Path(tempfile.mkdtemp(prefix="flowork-tests-"))
for _var, _sub in (("HOME", "home"), ("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"),
                   ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache"),
                   ("XDG_RUNTIME_DIR", "runtime")):
    (_SANDBOX / _sub).mkdir(mode=0o700)
    os.environ[_var] = str(_SANDBOX / _sub)
REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ["PYTHON_KEYRING_BACKEND"] = "tests.memory_keyring.MemoryKeyring"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
for _var in ("FLOWORK_ENGINE_ID", "FLOWORK_OWNERS", "FLOWORK_DATA_DIR", "FLOWORK_ROOTS",
             "FLOWORK_PORT", "FLOWORK_HOST", "FLOWORK_PRIVATE_KEY", "FLOWORK_WEBHOOKS",
             "FLOWORK_WEBHOOK_HOST"):
    os.environ.pop(_var, None)
# Engines started as programs by the tests serve webhooks on an ephemeral port, never 12346.
os.environ["FLOWORK_WEBHOOK_PORT"] = "0"

from typing import AsyncIterator, Awaitable, Callable  # noqa: E402

import keyring  # noqa: E402
import pytest  # noqa: E402
from eth_account import Account  # noqa: E402

from engine.app import Engine  # noqa: E402
from engine.client import EngineClient  # noqa: E402
from engine.config import EngineConfig  # noqa: E402
from tests.memory_keyring import MemoryKeyring  # noqa: E402


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SANDBOX, ignore_errors=True)


def require_tool(name: str) -> str:
    """Path of a system tool, or skip (fail in CI, where FLOWORK_REQUIRE_SYSTEM_TESTS=1)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/install-system-deps.sh installs it)"
        if os.environ.get("FLOWORK_REQUIRE_SYSTEM_TESTS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def memory_keyring() -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


class Wallet:
    """A generated key pair; `key` is the hex private key the client signs with."""

    def __init__(self) -> None:
        account = Account.create()
        self.address: str = account.address
        self.key: str = account.key.hex()


@pytest.fixture
def owner() -> Wallet:
    return Wallet()


@pytest.fixture
def stranger() -> Wallet:
    return Wallet()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    return folder


EngineFactory = Callable[..., Awaitable[Engine]]


@pytest.fixture
async def make_engine(data_dir: Path, owner: Wallet, shared_dir: Path) -> AsyncIterator[EngineFactory]:
    """Start real engines on ephemeral ports; every one is stopped after the test."""
    started: list[Engine] = []

    async def factory(**overrides: object) -> Engine:
        options: dict[str, object] = dict(host="127.0.0.1", port=0, engine_id="test-engine",
                                          data_dir=data_dir, owners=(owner.address,),
                                          roots=(shared_dir,), status_interval=30.0,
                                          webhook_port=0)
        options.update(overrides)
        engine = Engine(EngineConfig(**options))  # type: ignore[arg-type]
        await engine.start()
        started.append(engine)
        return engine

    yield factory
    for engine in reversed(started):
        await engine.stop()


@pytest.fixture
async def engine(make_engine: EngineFactory) -> Engine:
    return await make_engine()


ClientFactory = Callable[..., Awaitable[EngineClient]]


@pytest.fixture
async def make_client(engine: Engine, owner: Wallet) -> AsyncIterator[ClientFactory]:
    clients: list[EngineClient] = []

    async def factory(wallet: Wallet | None = None, *, url: str | None = None, **kwargs: object) -> EngineClient:
        client = await EngineClient.connect(url or engine.url, (wallet or owner).key, **kwargs)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: ClientFactory) -> EngineClient:
    return await make_client()
