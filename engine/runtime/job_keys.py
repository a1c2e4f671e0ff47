"""Job ids are per owner: the id a client names (the wire id) and the key the engine stores.

Two owners may each run a job called "nightly" (SECURITY.md: another owner's job id reads
exactly like an unknown one, so it cannot be refused as "taken"). The engine keeps one key per
job in its tables and maps: the first job to use a wire id is stored under that id (every
record written before this rule keeps its meaning); a job of another owner whose wire id is
already used is stored as `<wire id>#<owner>`. A wire id never contains "#" (the JOB_ID
pattern of engine/handlers/workflows.py), so a key names one job, and its wire id is the key
without its owner tag; a sub-workflow's key is its parent's key plus "/node/seq", and keeps
the tag in the middle.

Frames always carry the wire id; everything inside the engine (the runtime's tables, the
history store, checkpoints) uses the key. This module is the one place that knows the form.
"""

from __future__ import annotations

import random
import time
from typing import Iterator, Mapping

OWNER_TAG = "#"  # never in a wire id
CHILD_SEPARATOR = "/"


def new_wire_id(kind: str) -> str:
    """A fresh id for a job the engine starts itself (an automation's run, the desktop's
    run-again): `<kind>-` and 32 hex digits, the first 12 the time in milliseconds, the rest
    80 random bits (the layout of a UUIDv7). Time first, because the id is the job's key in
    every history table: ids that grow with time append at the end of those indexes, where
    random ones (uuid4) touch a different page of each for every run, which made the history
    writer three times as costly and slower the bigger the history grew.

    The random bits come from `random` (seeded from the OS at start), not `os.urandom`: an
    id is unique, not secret (it gives nobody access: every job request is signed by its
    owner), and a system call per automation run cost a webhook run about 4 µs."""
    return f"{kind}-{time.time_ns() // 1_000_000:012x}{random.getrandbits(80):020x}"


def wire_id(key: str) -> str:
    """The id the job's owner knows it by: the key without its owner tag."""
    start = key.find(OWNER_TAG)
    if start < 0:
        return key
    end = key.find(CHILD_SEPARATOR, start)
    return key[:start] + (key[end:] if end >= 0 else "")


def top_key(key: str) -> str:
    """The key of the top-level job a key belongs to (itself, or a sub-workflow's parent)."""
    return key.partition(CHILD_SEPARATOR)[0]


def candidates(owner: str, wire: str) -> Iterator[str]:
    """The keys an owner's job with this wire id can be stored under, in the order to try."""
    yield wire
    yield owned_key(owner, wire)


def owned_key(owner: str, wire: str) -> str:
    return f"{wire}{OWNER_TAG}{owner}"


def key_of(used: Mapping[str, str], owner: str, wire: str) -> str | None:
    """The key of `owner`'s job called `wire` among `used` (key -> owner), None if they have
    none: whether another owner used the id does not show."""
    # The two candidates spelled out: this runs for most of a job's events (RunQueries).
    if used.get(wire) == owner:
        return wire
    key = owned_key(owner, wire)
    return key if used.get(key) == owner else None


def new_key(used: Mapping[str, str], owner: str, wire: str,
            also_used: Mapping[str, str] | None = None) -> str | None:
    """The key for a new job of `owner` called `wire`, or None if `owner` already used it;
    `also_used` is a second map of keys taken (jobs being started). Two plain maps, not a
    ChainMap: this runs for every job start, and a ChainMap's lookups are Python code."""
    maps = (used,) if also_used is None else (used, also_used)
    for taken in maps:
        if key_of(taken, owner, wire) is not None:
            return None
    return owned_key(owner, wire) if any(wire in taken for taken in maps) else wire
