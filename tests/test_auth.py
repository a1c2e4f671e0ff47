"""Signer recovery (cross-checked against eth-account), the signer cache, and the frame auth
rules: message format, freshness, signer = auth.address, allow-list, the GUI's error text."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given, settings, strategies as st

from engine.auth import signatures
from engine.auth.frame_auth import AUTH_MESSAGE_PREFIX, FrameAuthenticator, OwnerList
from engine.auth.signatures import BadSignature, SignerCache, recover_personal_signer
from engine.protocol.errors import EngineError, ErrorCode

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ACCOUNT = Account.from_key("0x" + "4c" * 32)


def sign(text: str, account=ACCOUNT) -> str:
    return "0x" + account.sign_message(encode_defunct(text=text)).signature.hex().removeprefix("0x")


def with_v(signature: str, v: int) -> str:
    return signature[:-2] + f"{v:02x}"


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=200), st.binary(min_size=32, max_size=32).filter(lambda b: 0 < int.from_bytes(b, "big") < N))
def test_recovery_agrees_with_eth_account(text: str, key: bytes) -> None:
    account = Account.from_key(key)
    signature = sign(text, account)
    expected = Account.recover_message(encode_defunct(text=text), signature=signature)
    assert recover_personal_signer(text, signature) == expected == account.address


@pytest.mark.parametrize("v_offset", [0, 27])
def test_both_recovery_id_conventions_are_accepted(v_offset: int) -> None:
    text = "Flowork GUI-to-Engine Authentication: 1764400000000"
    signature = sign(text)
    v = int(signature[-2:], 16) - 27  # eth-account writes 27/28
    converted = with_v(signature, v + v_offset)
    assert recover_personal_signer(text, converted) == ACCOUNT.address
    assert Account.recover_message(encode_defunct(text=text), signature=converted) == ACCOUNT.address


def test_high_s_twin_is_refused() -> None:
    text = "hello"
    raw = bytes.fromhex(sign(text)[2:])
    r, s, v = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
    twin = "0x" + (r + (N - s).to_bytes(32, "big") + bytes([55 - v])).hex()  # 27 <-> 28
    with pytest.raises(BadSignature, match="low-s"):
        recover_personal_signer(text, twin)


@pytest.mark.parametrize("bad", [
    "", "0x", "0x1234", "1" * 132, "0x" + "zz" * 65, "0x" + "00" * 64, "0x" + "ab" * 66,
    "0x" + "11" * 64 + "1d",  # recovery id 29
    "0x" + "00" * 64 + "1b",  # r = s = 0
    "0x" + "ff" * 32 + "11" * 32 + "1b",  # r >= N
])
def test_malformed_signatures_are_refused(bad: str) -> None:
    with pytest.raises(BadSignature):
        recover_personal_signer("hello", bad)


def test_a_signature_over_other_text_recovers_someone_else() -> None:
    assert recover_personal_signer("hellO", sign("hello")) != ACCOUNT.address


def test_cache_hit_skips_recovery_and_failures_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = signatures.recover_personal_signer

    def counting(text: str, signature: str) -> str:
        calls.append(text)
        return real(text, signature)

    monkeypatch.setattr(signatures, "recover_personal_signer", counting)
    cache = SignerCache()
    signature = sign("a")
    assert cache.recover("a", signature) == ACCOUNT.address
    assert cache.recover("a", signature) == ACCOUNT.address
    assert calls == ["a"]
    for _ in range(2):
        with pytest.raises(BadSignature):
            cache.recover("b", "0x00")
    assert calls == ["a", "b"]


def test_cache_is_bounded_and_keeps_recent_entries() -> None:
    cache = SignerCache(max_entries=3)
    texts = [f"m{i}" for i in range(5)]
    sigs = {t: sign(t) for t in texts}
    for t in texts:
        cache.recover(t, sigs[t])
    assert len(cache) == 3
    cache.recover("m2", sigs["m2"])  # the oldest survivor becomes the newest
    cache.recover("x", sign("x"))
    assert len(cache) == 3
    assert ("m2", sigs["m2"]) in cache._entries and ("m3", sigs["m3"]) not in cache._entries


# --- frame auth -------------------------------------------------------------------------------

NOW_MS = 1_764_400_000_000


def authenticator(*owners: str, freshness_s: float = 300.0) -> FrameAuthenticator:
    return FrameAuthenticator("engine-1", OwnerList.of(owners), freshness_s=freshness_s,
                              clock=lambda: NOW_MS / 1000)


def block(stamp_ms: int = NOW_MS, account=ACCOUNT, **overrides: str) -> dict[str, str]:
    message = f"{AUTH_MESSAGE_PREFIX}{stamp_ms}"
    auth = {"address": account.address, "message": message, "signature": sign(message, account)}
    auth.update(overrides)
    return auth


def code_of(auth: object, checker: FrameAuthenticator) -> str:
    with pytest.raises(EngineError) as info:
        checker.authenticate(auth)
    return info.value.code


def test_a_fresh_frame_of_an_owner_passes_whatever_the_address_case() -> None:
    checker = authenticator(ACCOUNT.address.lower())
    assert checker.authenticate(block()) == ACCOUNT.address
    assert checker.authenticate(block(address=ACCOUNT.address.lower())) == ACCOUNT.address


@pytest.mark.parametrize("skew_ms", [-300_000, 300_000])
def test_the_freshness_window_is_inclusive(skew_ms: int) -> None:
    assert authenticator(ACCOUNT.address).authenticate(block(NOW_MS + skew_ms)) == ACCOUNT.address


@pytest.mark.parametrize("skew_ms", [-300_001, 300_001, -NOW_MS])
def test_stale_or_future_messages_are_refused(skew_ms: int) -> None:
    assert code_of(block(NOW_MS + skew_ms), authenticator(ACCOUNT.address)) == ErrorCode.AUTH_STALE


@pytest.mark.parametrize("message", [
    f"Flowork GUI-to-Engine Authentication:{NOW_MS}", f"flowork gui-to-engine authentication: {NOW_MS}",
    f"Flowork GUI-to-Engine Authentication: {NOW_MS} ", f"Flowork GUI-to-Engine Authentication: {NOW_MS}.5",
    f"Flowork GUI-to-Engine Authentication: -{NOW_MS}", f"Please sign: {NOW_MS}", "",
    "Flowork GUI-to-Engine Authentication: 1" + "0" * 20,
])
def test_messages_in_another_format_are_refused(message: str) -> None:
    auth = {"address": ACCOUNT.address, "message": message, "signature": sign(message)}
    assert code_of(auth, authenticator(ACCOUNT.address)) == ErrorCode.AUTH_FORMAT


@pytest.mark.parametrize(("auth", "code"), [
    (None, ErrorCode.AUTH_MISSING), ("x", ErrorCode.AUTH_MISSING),
    ({"message": "m", "signature": "s"}, ErrorCode.AUTH_FORMAT),
    ({"address": "0x12", "message": "m", "signature": "s"}, ErrorCode.AUTH_FORMAT),
    ({"address": ACCOUNT.address, "message": 5, "signature": "s"}, ErrorCode.AUTH_FORMAT),
    ({"address": ACCOUNT.address, "message": f"{AUTH_MESSAGE_PREFIX}{NOW_MS}", "signature": None},
     ErrorCode.AUTH_FORMAT),
])
def test_missing_or_malformed_auth_blocks_are_refused(auth: object, code: str) -> None:
    assert code_of(auth, authenticator(ACCOUNT.address)) == code


def test_a_signature_by_someone_else_than_the_address_is_refused() -> None:
    other = Account.create()
    forged = block(account=other, address=ACCOUNT.address)
    assert code_of(forged, authenticator(ACCOUNT.address)) == ErrorCode.AUTH_SIGNATURE
    assert code_of(block(signature="0x" + "ab" * 65), authenticator(ACCOUNT.address)) == ErrorCode.AUTH_SIGNATURE


def test_signers_off_the_allow_list_get_the_text_the_gui_looks_for() -> None:
    checker = authenticator(Account.create().address)
    with pytest.raises(EngineError) as info:
        checker.authenticate(block())
    assert info.value.code == ErrorCode.NOT_AUTHORIZED
    assert "not authorized for engine engine-1" in info.value.message
    assert code_of(block(), authenticator()) == ErrorCode.NOT_AUTHORIZED  # empty list: nobody
