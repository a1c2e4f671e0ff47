"""Issue 11, "Smaller findings": each one tried for real, over real sockets and real files."""

from __future__ import annotations

import time

import pytest

from engine.app import Engine
from engine.auth.frame_auth import AUTH_MESSAGE_PREFIX
from engine.client import EngineClient
from tests.conftest import Wallet
from tests.hardening.helpers import auth_block


# -- the auth message --------------------------------------------------------------------------

def _digits(stamp: int, zero: str) -> str:
    """`stamp` written with another script's digits (zero is that script's 0)."""
    return "".join(chr(ord(zero) + int(d)) for d in str(stamp))


@pytest.mark.parametrize("variant", [
    "trailing newline", "arabic-indic digits", "fullwidth digits", "devanagari digits",
    "trailing CRLF"])
async def test_the_auth_message_is_exactly_the_prefix_and_ascii_digits(
        engine: Engine, client: EngineClient, owner: Wallet, variant: str) -> None:
    stamp = int(time.time() * 1000)
    message = {
        "trailing newline": f"{AUTH_MESSAGE_PREFIX}{stamp}\n",
        "trailing CRLF": f"{AUTH_MESSAGE_PREFIX}{stamp}\r\n",
        "arabic-indic digits": AUTH_MESSAGE_PREFIX + _digits(stamp, "\u0660"),
        "fullwidth digits": AUTH_MESSAGE_PREFIX + _digits(stamp, "\uff10"),
        "devanagari digits": AUTH_MESSAGE_PREFIX + _digits(stamp, "\u0966"),
    }[variant]
    # Correctly signed by the owner: only the text's form is wrong.
    reply = await client.request("request_settings", check=False,
                                 auth=auth_block(owner.key, message=message))
    assert reply.get("code") == "auth_format", reply
    assert AUTH_MESSAGE_PREFIX in reply["error"]
    # The same owner with the exact form is served on the same connection.
    assert (await client.request("request_settings"))["type"] == "settings_response"
