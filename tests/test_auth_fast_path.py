"""The fast path for repeated auth blocks keeps every check a fresh block gets."""

from __future__ import annotations

import pytest

from engine.auth.frame_auth import FrameAuthenticator, OwnerList
from engine.client import Signer
from engine.protocol.errors import EngineError, ErrorCode
from tests.conftest import Wallet


def test_a_repeated_block_is_still_checked_for_freshness_and_owner(owner: Wallet, stranger: Wallet) -> None:
    now = [1_700_000_000.0]
    auth = FrameAuthenticator("e", OwnerList.of([owner.address]), freshness_s=60, clock=lambda: now[0])
    block = Signer(owner.key).auth_block(int(now[0] * 1000))
    assert auth.authenticate(block) == owner.address
    assert auth.authenticate(dict(block)) == owner.address  # served from the fast path
    auth.owners.remove(owner.address)
    with pytest.raises(EngineError) as refused:
        auth.authenticate(block)
    assert refused.value.code == ErrorCode.NOT_AUTHORIZED
    auth.owners.add(owner.address)
    now[0] += 61
    with pytest.raises(EngineError) as stale:
        auth.authenticate(block)
    assert stale.value.code == ErrorCode.AUTH_STALE


def test_a_cached_signature_with_another_address_or_unhashable_fields_is_refused(
        owner: Wallet, stranger: Wallet) -> None:
    auth = FrameAuthenticator("e", OwnerList.of([owner.address, stranger.address]))
    block = Signer(owner.key).auth_block()
    auth.authenticate(block)
    with pytest.raises(EngineError) as wrong:
        auth.authenticate({**block, "address": stranger.address})
    assert wrong.value.code == ErrorCode.AUTH_SIGNATURE
    with pytest.raises(EngineError) as odd:
        auth.authenticate({"address": [block["address"]], "message": {}, "signature": block["signature"]})
    assert odd.value.code == ErrorCode.AUTH_FORMAT


def test_the_fast_path_is_bounded(owner: Wallet) -> None:
    auth = FrameAuthenticator("e", OwnerList.of([owner.address]))
    auth._verified_max = 4
    signer = Signer(owner.key)
    blocks = [signer.auth_block(1_700_000_000_000 + i) for i in range(10)]
    auth.freshness_s = 10**12
    for block in blocks:
        auth.authenticate(block)
    assert len(auth._verified) == 4
