"""Who is asking for access: what the engine knows of a signer it does not (yet) serve.

Handed to the desktop app's pairing dialog and to its "refused address" notice, so that a
person deciding whether to let an address in sees where the request came from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccessRequest:
    address: str          # the recovered signer, EIP-55 checksummed as the client sent it
    origin: str | None    # the connection's Origin header (None for non-browser clients)
    remote: str           # the peer's "host:port"
