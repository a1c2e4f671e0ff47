"""Canonical JSON exactly as the web GUI writes it before signing a preset.

The GUI sorts object keys recursively (JavaScript's default sort, i.e. by UTF-16 code units),
writes no whitespace, leaves non-ASCII text unescaped, and formats numbers the way JavaScript's
`Number.prototype.toString` does (`1.0` is `1`, `1e21` is `1e+21`, `1e16` is
`10000000000000000`). `JSON.stringify` turns NaN and Infinity into `null`.

One ambiguity remains: a GUI that rebuilds each object with sorted keys and then calls
`JSON.stringify` gets JavaScript's own property order, which puts integer-like keys ("0", "17")
first in numeric order. `canonical_json(..., index_keys_first=True)` writes that variant, so a
signature made either way can be checked.
"""

from __future__ import annotations

import json
import math
from typing import Any

_encode_string = json.JSONEncoder(ensure_ascii=False).encode


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def js_number(value: float | int) -> str:
    """Format a number the way JavaScript's `String(number)` does."""
    if isinstance(value, bool):  # pragma: no cover - guarded by the caller
        raise TypeError("bool is not a number here")
    if isinstance(value, int):
        if -(2**53) <= value <= 2**53:
            return str(value)
        # JavaScript holds every number as a double: a bigger integer becomes the nearest one.
        try:
            value = float(value)
        except OverflowError:  # beyond the double range: Infinity, which JSON writes as null
            return "null"
    if math.isnan(value) or math.isinf(value):
        return "null"
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) <= 2**53:
        # Exact below 2**53; above it JavaScript prints the shortest digits padded with zeros
        # (1.2345678901234568e20 is "123456789012345680000"), which the general path does.
        return str(int(value))
    # repr() gives the shortest round-trip digits, as JavaScript does; only the layout differs.
    mantissa, _, exp_text = repr(value).partition("e")
    sign = "-" if mantissa.startswith("-") else ""
    mantissa = mantissa.lstrip("-")
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    # decimal exponent n such that value = 0.d1d2... * 10**n
    if int_part.strip("0"):
        point = len(int_part.lstrip("0"))
    else:
        point = -(len(frac_part) - len(frac_part.lstrip("0")))
    if exp_text:
        point += int(exp_text)
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * (-point) + digits
    exponent = point - 1
    exp_sign = "+" if exponent >= 0 else "-"
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{head}e{exp_sign}{abs(exponent)}"


_MAX_ARRAY_INDEX = 2**32 - 2


def is_index_key(key: str) -> bool:
    """True for the keys JavaScript orders first: canonical array indices ("0", "17")."""
    return key.isdigit() and key.isascii() and (key == "0" or key[0] != "0") and int(key) <= _MAX_ARRAY_INDEX


def _sorted_keys(value: dict[Any, Any], index_keys_first: bool) -> list[Any]:
    keys = sorted(value, key=lambda k: _utf16_key(str(k)))
    if not index_keys_first:
        return keys
    indices = sorted((k for k in keys if is_index_key(str(k))), key=lambda k: int(str(k)))
    return indices + [k for k in keys if not is_index_key(str(k))]


def has_index_keys(value: Any) -> bool:
    """Whether any object in `value` has a key whose place differs between the two orders."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if any(is_index_key(str(k)) for k in item):
                return True
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def canonical_json(value: Any, *, index_keys_first: bool = False) -> str:
    """Serialize `value` as the GUI's canonical JSON text."""
    parts: list[str] = []
    _write(value, parts, index_keys_first)
    return "".join(parts)


def _write(value: Any, out: list[str], index_keys_first: bool = False) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, (int, float)):
        out.append(js_number(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key in _sorted_keys(value, index_keys_first):
            if not first:
                out.append(",")
            first = False
            out.append(_encode_string(str(key)))
            out.append(":")
            _write(value[key], out, index_keys_first)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out, index_keys_first)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} cannot be written as canonical JSON")
