"""One authentication path: every frame the server reads is judged by
FrameAuthenticator.authenticate (the check tests/test_auth.py covers rule by rule), and its
verdict is what the client hears; pairing is only offered to a valid signer it refused."""

from __future__ import annotations

import time
from typing import Any

from engine.client import EngineClient, Signer
from engine.protocol.errors import EngineError
from tests.conftest import EngineFactory, Wallet


async def test_every_frame_is_judged_by_the_authenticator(make_engine: EngineFactory, owner: Wallet,
                                                          stranger: Wallet) -> None:
    engine = await make_engine()
    verdicts: list[tuple[str, str]] = []
    decide = engine.authenticator.authenticate

    def recorded(auth: Any) -> str:
        try:
            signer = decide(auth)
        except EngineError as exc:
            verdicts.append(("refused", exc.code))
            raise
        verdicts.append(("passed", signer))
        return signer

    engine.authenticator.authenticate = recorded  # type: ignore[method-assign]
    async with await EngineClient.connect(engine.url, owner.key) as client, \
            await EngineClient.connect(engine.url, stranger.key) as outsider:
        assert (await client.request("request_settings"))["type"] == "settings_response"
        assert (await outsider.request("request_settings", check=False))["code"] == "not_authorized"
        stale = Signer(owner.key).auth_block(int((time.time() - 3600) * 1000))
        assert (await client.request("request_presets_list", auth=stale, check=False))["code"] == "auth_stale"
        assert (await client.request("no_such_type", auth={}, check=False))["code"] == "auth_format"
    assert verdicts == [("passed", owner.address), ("refused", "not_authorized"),
                        ("refused", "auth_stale"), ("refused", "auth_format")]

    # Pairing (an empty allow-list and a desktop app that says yes) starts from its refusal.
    verdicts.clear()
    engine.set_owners([])
    asked: list[Any] = []

    async def allow(who: Any) -> bool:
        asked.append(who)
        return True

    engine.set_pairing_handler(allow)
    async with await EngineClient.connect(engine.url, stranger.key) as newcomer:
        assert (await newcomer.request("request_settings"))["type"] == "settings_response"
        assert (await newcomer.request("request_variables"))["type"] == "variables_response"
    assert len(asked) == 1 and engine.owners.allows(stranger.address)
    assert verdicts == [("refused", "not_authorized"), ("passed", stranger.address)]
