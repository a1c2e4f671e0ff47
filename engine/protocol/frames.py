"""Parsing incoming frames and building outgoing ones: the envelope rules of protocol.md §2."""

from __future__ import annotations

import json
import math
import re

import orjson
from array import array
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from engine.protocol.errors import EngineError, ErrorCode
from engine.protocol.long_numbers import may_hold_long_number

MAX_DEPTH = 64
TYPE_MAX_LEN = 64
REQUEST_ID_MAX_LEN = 128
PEEK_MAX_DEPTH = 500  # deep enough to echo the request_id of a refused deep frame, safe to decode


@dataclass(frozen=True)
class IncomingFrame:
    """A syntactically valid frame: the raw auth block and the payload, not yet verified."""

    auth: dict[str, Any] | None
    payload: dict[str, Any]
    type: str
    request_id: str | int | None


def _depth_ok(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Iteratively check nesting depth so hostile frames cannot exhaust the stack later."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


_NOT_MARK = bytes(b for b in range(256) if b not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')
_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes


def nesting_bound(text: str, limit: int = MAX_DEPTH) -> int:
    """How many containers deep decoding `text` nests, decided before decoding and without
    recursion: exact when it is `limit` or more (`limit + 1` standing for anything deeper),
    otherwise an upper bound (the number of brackets). The C JSON decoder recurses once per
    level and only the interpreter's recursion limit stops it; a library that raises that
    limit (py_ecc, loaded with web3 or eth-account, sets 100000) lets one deep frame overflow
    the C stack and kill the engine, before any signature is checked. Linear, and the work is
    done by C string methods (about 3 ms for a 1,000-node workflow's 300 KB)."""
    count = text.count("[") + text.count("{")
    if count < limit:
        return count
    # Brackets outside JSON strings: drop escaped backslashes, then escaped quotes (a backslash
    # left over escapes neither), keep only brackets and quotes, then drop what quotes enclose.
    unescaped = text.replace("\\\\", "").replace('\\"', "") if "\\" in text else text
    marks = unescaped.encode("utf-8", "surrogatepass").translate(None, _NOT_MARK)
    steps = _STRING.sub(b"", marks).translate(_STEP)
    if b"\x01" * (limit + 1) in steps:
        return limit + 1
    return max(accumulate(array("b", steps)), default=0)


def nesting_within(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether decoding `text` nests at most `limit` containers deep (see nesting_bound)."""
    return nesting_bound(text, limit) <= limit


def _echoable(request_id: Any) -> bool:
    """A request_id we echo: a short text, or an integer JavaScript holds exactly."""
    if isinstance(request_id, bool):
        return False
    if isinstance(request_id, str):
        return len(request_id) <= REQUEST_ID_MAX_LEN
    return isinstance(request_id, int) and abs(request_id) <= 2**53


def parse_frame(text: str | bytes) -> IncomingFrame:
    """Decode one text frame. Raises EngineError with a code the client can act on."""
    if isinstance(text, (bytes, bytearray)):
        raise EngineError(ErrorCode.BAD_FRAME, "Binary frames are not supported; send JSON text.")
    nesting = nesting_bound(text)
    if nesting > MAX_DEPTH:
        raise EngineError(ErrorCode.BAD_FRAME, f"The frame is nested deeper than {MAX_DEPTH} levels.")
    try:
        data = _decode(text)
    except (ValueError, RecursionError) as exc:
        raise EngineError(ErrorCode.BAD_JSON, f"The frame is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise EngineError(ErrorCode.BAD_FRAME, "A frame must be a JSON object with 'auth' and 'payload'.")
    # The walk counts a value inside the deepest container one level deeper than the brackets
    # do; below MAX_DEPTH brackets it cannot fail, so it runs only for frames that deep.
    if nesting >= MAX_DEPTH and not _depth_ok(data):
        raise EngineError(ErrorCode.BAD_FRAME, f"The frame is nested deeper than {MAX_DEPTH} levels.")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise EngineError(ErrorCode.BAD_FRAME, "The frame has no 'payload' object.")
    request_id = payload.get("request_id")
    if not _echoable(request_id):
        request_id = None  # never echo something we would not accept; the type check follows
    msg_type = payload.get("type")
    if not isinstance(msg_type, str) or not msg_type:
        raise EngineError(ErrorCode.BAD_FRAME, "The payload has no 'type' string.")
    if len(msg_type) > TYPE_MAX_LEN:
        raise EngineError(ErrorCode.BAD_FRAME, f"The payload 'type' is longer than {TYPE_MAX_LEN} characters.")
    auth = data.get("auth")
    return IncomingFrame(auth=auth if isinstance(auth, dict) else None, payload=payload,
                         type=msg_type, request_id=request_id)


def peek_request(text: str | bytes) -> tuple[str | None, str | int | None]:
    """Best-effort (type, request_id) of a frame that failed to parse, for the error reply."""
    try:
        if not nesting_within(text, PEEK_MAX_DEPTH):
            return None, None
        data = json.loads(text)
        payload = data.get("payload") if isinstance(data, dict) else None
        if isinstance(payload, dict):
            msg_type = payload.get("type")
            rid = payload.get("request_id")
            ok_type = msg_type if isinstance(msg_type, str) and len(msg_type) <= TYPE_MAX_LEN else None
            ok_rid = rid if _echoable(rid) else None
            return ok_type, ok_rid
    except Exception:  # noqa: BLE001 - this is a best-effort peek
        pass
    return None, None


def error_frame(error: EngineError, *, reply_type: str | None, request_type: str | None,
                request_id: str | int | None) -> dict[str, Any]:
    """The error envelope: a type, a readable `error`, a stable `code`, and the echoes."""
    frame: dict[str, Any] = {"type": reply_type or "error", "error": error.message,
                             "code": error.code}
    if request_type is not None:
        frame["request_type"] = request_type
    if request_id is not None:
        frame["request_id"] = request_id
    for key, value in error.extra.items():
        frame.setdefault(key, value)
    return frame


class RawJSON(str):
    """JSON text that is already encoded (a stored workflow), placed into a frame as is.
    Decoding a large stored document only to encode it again would cost the event loop tens
    of milliseconds per megabyte; splicing the text costs a copy."""


def _decode(text: str) -> Any:
    """orjson where it reads the text as the standard library does (in a quarter of the
    standard library's time); the standard library for the rest. orjson refuses NaN, Infinity
    and 1e999 itself, but reads an integer past 64 bits (20 digits or more) as a float,
    silently, and refuses a lone surrogate that the standard library reads: those texts, and
    every text orjson refuses (so that the error names what the standard library names), go
    to the standard library."""
    raw = text.encode("utf-8", "surrogatepass")
    if not may_hold_long_number(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text, parse_constant=_not_json, parse_float=_finite_float)


def _not_json(constant: str) -> Any:
    # Python's decoder accepts NaN and Infinity; JSON (and the GUI's JSON.parse) does not, and
    # a value stored from one frame would later break every frame that carries it.
    raise ValueError(f"{constant} is not a JSON number")


def _finite_float(text: str) -> float:
    # `1e999` is valid JSON syntax that no double holds: Python reads it as inf (stored later as
    # null or "inf"); the browser reads Infinity. Refused like NaN and Infinity.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large for a JSON number")
    return value


def _finite(value: Any) -> Any:
    """A copy with NaN and ±Infinity as null, which is what the browser's JSON.stringify does."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _dumps(value: Any) -> str:
    """Strict JSON text: a module may hand over NaN or Infinity, which JSON.parse in the GUI
    would refuse, losing the whole frame."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"), default=str,
                          allow_nan=False)


_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _fast(frame: dict[str, Any]) -> str | None:
    """orjson's text of the frame (NaN and ±Infinity become null, as in _dumps), or None when
    something needs the standard library's handling (str() of odd values, big integers)."""
    try:
        return orjson.dumps(frame, option=_ORJSON_OPTIONS).decode("utf-8")
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return None


def encode(frame: dict[str, Any]) -> str:
    """Serialize an outgoing frame once; the same text goes to every recipient. Top-level
    RawJSON values are spliced in verbatim."""
    raw = [key for key, value in frame.items() if isinstance(value, RawJSON)]
    if not raw:
        return _fast(frame) or _dumps(frame)
    rest = {key: value for key, value in frame.items() if key not in raw}
    head = _dumps(rest)[:-1]
    spliced = ",".join(f"{json.dumps(key, ensure_ascii=False)}:{frame[key]}" for key in raw)
    return f"{head}{',' if rest else ''}{spliced}}}"
