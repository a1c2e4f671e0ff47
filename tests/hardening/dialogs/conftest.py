"""The dialogs' hardening tests run like the desktop tests: real widgets offscreen, on a qasync
loop, against real engines on real sockets."""

from tests.desktop.conftest import *  # noqa: F401,F403 - the fixtures and the loop hook
from tests.desktop.conftest import pytest_asyncio_loop_factories  # noqa: F401
