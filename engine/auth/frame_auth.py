"""Checking the GUI's per-frame auth block (protocol.md §2, "Authentication and authorization")."""

from __future__ import annotations

import re
import time
from threading import Lock
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from engine.auth.signatures import BadSignature, SignerCache
from engine.protocol.errors import EngineError, ErrorCode

AUTH_MESSAGE_PREFIX = "Flowork GUI-to-Engine Authentication: "
# Exactly the prefix and 1-16 ASCII digits: `\d` would also take Arabic-Indic, fullwidth or
# Devanagari digits, and `$` a trailing newline; fullmatch with [0-9] takes neither.
AUTH_MESSAGE_RE = re.compile(r"Flowork GUI-to-Engine Authentication: ([0-9]{1,16})")
ADDRESS_RE = re.compile(r"\A0x[0-9a-fA-F]{40}\Z")


def normalize_address(address: str) -> str:
    """The one form addresses are compared and stored in: lower-case hex with 0x."""
    return address.lower()


class NotAuthorized(EngineError):
    """A valid signature of an address that is not an owner. `signer` is who signed: the
    server may still offer them pairing (with an empty allow-list) before refusing."""

    def __init__(self, message: str, signer: str) -> None:
        super().__init__(ErrorCode.NOT_AUTHORIZED, message)
        self.signer = signer


@dataclass
class OwnerList:
    """The addresses allowed to control this engine. Kept lower-case; changed by the desktop
    app when the user pairs or removes an owner."""

    _owners: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, addresses: Iterable[str]) -> "OwnerList":
        return cls({normalize_address(a) for a in addresses})

    def allows(self, address: str) -> bool:
        return normalize_address(address) in self._owners

    def add(self, address: str) -> None:
        self._owners.add(normalize_address(address))

    def remove(self, address: str) -> None:
        self._owners.discard(normalize_address(address))

    def replace(self, addresses: Iterable[str]) -> None:
        self._owners = {normalize_address(a) for a in addresses}

    def __iter__(self):
        return iter(sorted(self._owners))

    def __len__(self) -> int:
        return len(self._owners)


class FrameAuthenticator:
    """Turns an auth block into the verified, checksummed signer address or an EngineError."""

    def __init__(self, engine_id: str, owners: OwnerList, *, freshness_s: float = 300.0,
                 cache: SignerCache | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine_id = engine_id
        self.owners = owners
        self.freshness_s = freshness_s
        self.cache = cache or SignerCache()
        self._clock = clock
        # (address, message, signature) -> (signer, signed at): blocks that passed every check.
        # A repeat then costs one dict lookup plus the freshness check, not two regexes and an
        # LRU under a lock (the GUI repeats identical blocks within a millisecond).
        self._verified: dict[tuple[Any, Any, Any], tuple[str, float]] = {}
        self._verified_max = 8192
        self._verified_lock = Lock()

    def not_authorized(self, address: str) -> NotAuthorized:
        # The GUI looks for exactly this phrase to show an authorization failure.
        return NotAuthorized(f"Address {address} is not authorized for engine {self.engine_id}.",
                             address)

    def verify_signature(self, auth: Any) -> str:
        """Check format, freshness and signature; return the signer (not yet the allow-list)."""
        if type(auth) is dict:
            try:
                hit = self._verified.get((auth.get("address"), auth.get("message"), auth.get("signature")))
            except TypeError:  # an unhashable field (a list, an object): the checks below refuse it
                hit = None
            if hit is not None and abs(self._clock() - hit[1]) <= self.freshness_s:
                return hit[0]
        if not isinstance(auth, dict):
            raise EngineError(ErrorCode.AUTH_MISSING,
                              "The frame has no 'auth' block; every frame must be signed.")
        address, message, signature = auth.get("address"), auth.get("message"), auth.get("signature")
        if not isinstance(address, str) or not ADDRESS_RE.fullmatch(address):
            raise EngineError(ErrorCode.AUTH_FORMAT, "auth.address must be a 0x-prefixed 40-digit hex address.")
        if not isinstance(message, str):
            raise EngineError(ErrorCode.AUTH_FORMAT, "auth.message must be a string.")
        if not isinstance(signature, str):
            raise EngineError(ErrorCode.AUTH_FORMAT, "auth.signature must be a string.")
        match = AUTH_MESSAGE_RE.fullmatch(message)
        if not match:
            raise EngineError(ErrorCode.AUTH_FORMAT,
                              f"auth.message must read '{AUTH_MESSAGE_PREFIX}<milliseconds>'.")
        skew = abs(self._clock() - int(match.group(1)) / 1000.0)
        if skew > self.freshness_s:
            raise EngineError(ErrorCode.AUTH_STALE,
                              f"The signed message is {skew:.0f} s away from the engine's clock "
                              f"(at most {self.freshness_s:.0f} s allowed); check the computer's clock.")
        try:
            signer = self.cache.recover(message, signature)
        except BadSignature as exc:
            raise EngineError(ErrorCode.AUTH_SIGNATURE, f"Invalid signature: {exc}.") from None
        if normalize_address(signer) != normalize_address(address):
            raise EngineError(ErrorCode.AUTH_SIGNATURE,
                              "Invalid signature: it was not made by auth.address.")
        with self._verified_lock:  # the desktop app may verify from a worker thread
            if len(self._verified) >= self._verified_max:
                del self._verified[next(iter(self._verified))]  # the oldest
            self._verified[(address, message, signature)] = (signer, int(match.group(1)) / 1000.0)
        return signer

    def authenticate(self, auth: Any) -> str:
        """The one check of a frame's auth block (the server's): the verified signer if it is
        on the allow-list; else EngineError, NotAuthorized for a valid signature of someone
        else."""
        signer = self.verify_signature(auth)
        if not self.owners.allows(signer):
            raise self.not_authorized(signer)
        return signer
