"""EIP-191 personal_sign recovery on libsecp256k1 (coincurve), with a bounded cache.

This is what ethers' `Wallet.signMessage` produces and what eth-account's `recover_message`
checks; we call coincurve directly because the generic path costs twice as much per frame and
the engine verifies every frame. Tests cross-check the result against eth-account.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from functools import lru_cache
from threading import Lock

import coincurve
from eth_hash.auto import keccak

SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")
# secp256k1 group order; signatures with s above half of it are the malleable twin.
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class BadSignature(ValueError):
    """The signature is malformed or recovers no public key."""


def personal_message_hash(text: str) -> bytes:
    """keccak256 of the EIP-191 version-0x45 envelope of `text`."""
    data = text.encode("utf-8")
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode("ascii") + data)


def to_checksum_address(raw20: bytes | str) -> str:
    """EIP-55 checksum form of an address given as 20 bytes or hex text."""
    hex_addr = raw20.hex() if isinstance(raw20, (bytes, bytearray)) else raw20.lower().removeprefix("0x")
    digest = keccak(hex_addr.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(hex_addr))


def recover_personal_signer(text: str, signature: str) -> str:
    """Checksummed address that signed `text` with personal_sign, or BadSignature."""
    if not isinstance(signature, str) or not SIGNATURE_RE.match(signature):
        raise BadSignature("the signature must be 0x followed by 130 hexadecimal digits")
    raw = bytes.fromhex(signature[2:])
    v = raw[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1):
        raise BadSignature("the signature's recovery id is invalid")
    s = int.from_bytes(raw[32:64], "big")
    if s == 0 or s > _N // 2:
        raise BadSignature("the signature is not in canonical (low-s) form")
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(
            raw[:64] + bytes([v]), personal_message_hash(text), hasher=None
        )
    except Exception as exc:  # coincurve raises ValueError/Exception subclasses
        raise BadSignature("the signature does not match any public key") from exc
    return _signer_checksum(keccak(public_key.format(compressed=False)[1:])[-20:])


# The same few addresses sign every frame, and their checksum form costs a third keccak (about
# 15 % of a fresh verification): remember it per address (bounded, thread-safe).
_signer_checksum = lru_cache(maxsize=4096)(to_checksum_address)


class SignerCache:
    """LRU of (message, signature) -> signer. The GUI repeats identical auth blocks within a
    millisecond, and a recovery costs ~50 µs of CPU; failures are cached too."""

    def __init__(self, max_entries: int = 8192) -> None:
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], str | BadSignature] = OrderedDict()
        self._lock = Lock()  # the desktop app may verify from a worker thread

    def __len__(self) -> int:
        return len(self._entries)

    def recover(self, text: str, signature: str) -> str:
        key = (text, signature)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
        if hit is None:
            try:
                hit = recover_personal_signer(text, signature)
            except BadSignature as exc:
                hit = exc
            with self._lock:
                self._entries[key] = hit
                if len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        if isinstance(hit, BadSignature):
            raise hit
        return hit
