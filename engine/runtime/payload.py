"""The payload that flows along a workflow's connections, and what the hot path does with it.

`{"data": {...}, "history": [...]}`. Per node the runtime needs the output's size (for the
node's metric), a snapshot for the connection history of each edge it crosses, and a private
copy for each extra branch. None of it is a JSON round trip of the whole payload:

- `data` is encoded once per node with orjson (C, a few hundred ns for small data). The bytes
  are the snapshot that every crossing of that output records, and the source of the copies
  that extra branches get (`orjson.loads`, measured faster than `copy.deepcopy` and a
  hand-written copy: bench/RESULTS.md). A single edge passes the object on as it is.
- `history` is a `History` list of `HistoryEntry` dicts: each entry is encoded once, when the
  engine makes it, and the list keeps the sum of its entries' sizes, so a node never re-encodes
  the last 100 entries. The full JSON text of a crossing is joined from those pieces on the
  database thread, in the recorder's batch (engine/runtime/reporter.py).

Values JSON cannot hold are written as their `str()` (and every branch then gets the JSON form,
as before); a value that cannot be encoded at all (a circular structure) is the module's
failure (`PayloadNotJSON`).
"""

from __future__ import annotations

import itertools
import json
import marshal
from typing import Any, Iterable

import orjson

from engine.protocol.long_numbers import may_hold_long_number

HISTORY_KEEP = 100          # payload["history"] keeps the latest entries only
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


class PayloadNotJSON(ValueError):
    """A module's output that JSON cannot represent (circular, or nested past any limit)."""


_entry_ids = itertools.count(1)
_entry_floor = 0


def reserve_entry_ids(above: int) -> None:
    """Number new history entries above `above`: a job restored from its checkpoint keeps the
    entries it recorded before the restart under their numbers (history_entries is keyed by
    job and number), so this process must not hand those numbers out again for it."""
    global _entry_ids, _entry_floor
    if above > _entry_floor:
        _entry_floor = above
        current = next(_entry_ids)
        _entry_ids = itertools.count(max(current, above + 1))


class HistoryEntry(dict):
    """One engine-made history entry, with its JSON encoding kept beside it, a number (unique
    in this process) and the job whose history records it was last written for: the recorder
    writes an entry once per job and crossings refer to it by number."""

    __slots__ = ("encoded", "entry_id", "recorded_in")

    def __init__(self, node_id: str, node_name: str, module_id: str, status: str,
                 output_name: str | None, timestamp: float) -> None:
        super().__init__(node_id=node_id, node_name=node_name, module_id=module_id,
                         status=status, output_name=output_name, timestamp=timestamp)
        self.encoded = compact(orjson.dumps(self))
        self.entry_id = next(_entry_ids)
        self.recorded_in: str | None = None


class History(list):
    """`payload["history"]`: a plain list to modules, plus the byte size of its JSON text,
    kept up to date by the engine's own appends (`add`). A module that changes the list
    itself is noticed (`size()` then encodes what it does not know)."""

    __slots__ = ("_bytes", "_length", "_last")

    def __init__(self, items: Iterable[Any] = ()) -> None:
        super().__init__(items)
        self._bytes = -1
        self._length = -1
        self._last: Any = None

    def copy_for_branch(self) -> "History":
        other = History(self)
        other._bytes, other._length, other._last = self._bytes, self._length, self._last
        return other

    def add(self, entry: HistoryEntry) -> None:
        """Append an engine-made entry and keep the latest HISTORY_KEEP."""
        total = self.size()
        self.append(entry)
        total += len(entry.encoded) + (1 if len(self) > 1 else 0)
        if len(self) > HISTORY_KEEP:
            dropped = self[:len(self) - HISTORY_KEEP]
            del self[:len(self) - HISTORY_KEEP]
            total -= sum(_entry_bytes(e) + 1 for e in dropped)
        self._remember(total)

    def size(self) -> int:
        """Bytes of `json(self)` (compact, UTF-8)."""
        if self._length == len(self) and (not self or self[-1] is self._last) and self._bytes >= 0:
            return self._bytes
        total = 2 + max(0, len(self) - 1) + sum(_entry_bytes(e) for e in self)
        self._remember(total)
        return total

    def _remember(self, total: int) -> None:
        self._bytes, self._length, self._last = total, len(self), (self[-1] if self else None)

    def encoded_items(self) -> list[bytes]:
        return [e.encoded if type(e) is HistoryEntry else encode(e)[0] for e in self]


def _entry_bytes(entry: Any) -> int:
    if type(entry) is HistoryEntry:
        return len(entry.encoded)
    return len(encode(entry)[0])


def compact(raw: bytes) -> bytes:
    """orjson's result with its size: orjson writes into a buffer of at least 4 KiB and the
    bytes object keeps it (measured: 4 KiB per small result). What we keep gets a copy."""
    return raw[:-1] + raw[-1:] if 1 < len(raw) < 4096 else raw


def encode(value: Any) -> tuple[bytes, bool]:
    """(compact UTF-8 JSON, lossy): lossy when some value had to be written as its str()."""
    lossy = False

    def fallback(item: Any) -> str:
        nonlocal lossy
        lossy = True
        return str(item)

    try:
        return compact(orjson.dumps(value, default=fallback, option=_OPTIONS)), lossy
    except orjson.JSONEncodeError:
        pass
    # orjson refuses what the standard library still writes (integers past 64 bits, lone
    # surrogates, nesting past 255 levels): try that before calling it the module's fault.
    lossy = False
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=fallback)
        return text.encode("utf-8", "surrogatepass"), lossy
    except (ValueError, RecursionError, TypeError) as exc:
        raise PayloadNotJSON(str(exc) or type(exc).__name__) from None


def decode(raw: bytes) -> Any:
    """The value `encode` wrote. orjson reads an integer past 64 bits (20 digits or more) as a
    float, silently: such texts (only the standard library writes them) go to the standard
    library, which reads them back exactly. The check costs about 60 µs per 100 KB."""
    if not may_hold_long_number(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:  # what only the standard library reads
            pass
    return json.loads(raw.decode("utf-8", "surrogatepass"))


def as_payload(value: Any) -> dict[str, Any]:
    """`{"data": {...}, "history": History}` from whatever a client or module handed over."""
    if isinstance(value, dict) and ("data" in value or "history" in value):
        data = value.get("data")
        history = value.get("history")
        out = dict(value)
        out["data"] = data if isinstance(data, dict) else ({} if data is None else {"value": data})
        out["history"] = history if isinstance(history, History) else History(
            history if isinstance(history, list) else [])
        return out
    if isinstance(value, dict):
        return {"data": value, "history": History()}
    return {"data": {} if value is None else {"value": value}, "history": History()}


def normalize(result: Any, payload: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A module's return value as (output payload, output port or None)."""
    port: str | None = None
    if result is None:
        out: Any = payload
    elif isinstance(result, dict) and "payload" in result and set(result) <= {"payload", "output_name"}:
        out = result["payload"]
        name = result.get("output_name")
        port = str(name) if name not in (None, "") else None
    else:
        out = result
    if isinstance(out, dict) and ("data" in out or "history" in out):
        out = as_payload(out)
    else:
        history = payload.get("history")
        out = {"data": out if isinstance(out, dict) else ({} if out is None else {"value": out}),
               "history": history if isinstance(history, History) else History(history or [])}
    return out, port


class Snapshot:
    """A payload as it was at one moment, as bytes: what a crossing records and what extra
    branches are copied from. Encoding `data` is the only per-node JSON work."""

    __slots__ = ("data", "history", "extra", "lossy", "size")

    def __init__(self, payload: dict[str, Any]) -> None:
        self.data, lossy = encode(payload["data"])
        history = payload["history"]
        self.history: tuple[Any, ...] = tuple(history)
        extra = {k: v for k, v in payload.items() if k != "data" and k != "history"}
        if extra:
            self.extra, extra_lossy = encode(extra)
            lossy = lossy or extra_lossy
        else:
            self.extra = b""
        self.lossy = lossy
        size = 8 + len(self.data) + 11 + history.size() + 1  # {"data":…,"history":…}
        if self.extra:
            size += len(self.extra) - 1  # ,"k":v… without the braces, plus one comma
        self.size = size

    def text(self) -> str:
        """The full JSON text (joined here, typically on the database thread)."""
        try:
            items = b",".join([e.encoded for e in self.history])
        except AttributeError:  # entries a module made: encoded now
            items = b",".join([e.encoded if type(e) is HistoryEntry else encode(e)[0] for e in self.history])
        parts = [b'{"data":', self.data, b',"history":[', items, b"]"]
        if self.extra:
            parts += [b",", self.extra[1:-1]]
        parts.append(b"}")
        return b"".join(parts).decode("utf-8", "surrogatepass")

    def split(self) -> tuple[str, str]:
        """(the payload's JSON with an empty history, the history as a JSON list of entry
        numbers, with entries a module made written inline): what a crossing stores when its
        entries are in history_entries."""
        try:
            refs: list[Any] = [e.entry_id for e in self.history]
        except AttributeError:  # entries a module made are written inline
            refs = [e.entry_id if type(e) is HistoryEntry else e for e in self.history]
        parts = [b'{"data":', self.data, b',"history":[]']
        if self.extra:
            parts += [b",", self.extra[1:-1]]
        parts.append(b"}")
        return (b"".join(parts).decode("utf-8", "surrogatepass"),
                encode(refs)[0].decode("utf-8", "surrogatepass"))

    def new_entries(self, job_id: str) -> list[HistoryEntry]:
        """Entries not yet written for `job_id`, marked as written now (called on the loop,
        when the crossing is queued). Scans from the newest: entries before one already
        written for this job were written too."""
        found = []
        for entry in reversed(self.history):
            if type(entry) is not HistoryEntry:
                continue
            if entry.recorded_in == job_id:
                break
            entry.recorded_in = job_id
            found.append(entry)
        return found

    def copy(self) -> dict[str, Any]:
        """A private payload for one branch: data decoded from the snapshot, the history's
        (read-only) entries shared."""
        out = {"data": decode(self.data), "history": History(self.history)}
        if self.extra:
            out.update(decode(self.extra))
        return out


def fork(payload: dict[str, Any], snapshot: Snapshot, count: int) -> list[dict[str, Any]]:
    """`count` private copies of a node's output for its extra branches, made right after the
    node ran (nothing has changed it since its snapshot). From a `marshal` image of `data` when
    it holds only plain JSON types (one dump, then a C load per copy: measured 1.8x faster than
    orjson.loads and 5x faster than copy.deepcopy for a 100 KB object graph, bench/RESULTS.md),
    else from the snapshot's JSON."""
    if count <= 0:
        return []
    if not snapshot.lossy and not snapshot.extra:
        try:
            image = marshal.dumps(payload["data"])
        except (ValueError, TypeError):  # a type marshal does not know (a subclass, say)
            image = None
        if image is not None:
            history = payload["history"]
            return [{"data": marshal.loads(image), "history": history.copy_for_branch()}
                    for _ in range(count)]
    return [snapshot.copy() for _ in range(count)]


def public_result(masked_text: str, limit: int) -> Any:
    """The final payload as shown in `status_data.result`: whole, or a preview when large."""
    raw = masked_text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return decode(raw)  # orjson, or the standard library for what only it reads
    return {"truncated": True, "size": len(raw),
            "preview": raw[:limit].decode("utf-8", errors="ignore")}
