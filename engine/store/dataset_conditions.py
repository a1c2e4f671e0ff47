"""Simple field conditions on dataset rows (`status = new`, `age >= 18`, `tags contains x`),
turned into SQL over the rows' JSON text with bound parameters only.

Conditions come from a node's property: the web GUI's key/value editor (a list of
`{name, value}`), an object `{field: value}`, or the JSON text of either. A key is a field path
(dots for nesting; `id` is the row's id), optionally followed by an operator (`=` when none);
a value is read as JSON when it is valid JSON (`5`, `true`, `null`, `"5"`) and as text
otherwise, so `5` matches both the number 5 and the text "5".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from engine.protocol.errors import EngineError

OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "contains")
_SUFFIXES = ((" contains", "contains"), (">=", ">="), ("<=", "<="), ("!=", "!="), ("==", "="),
             ("=", "="), (">", ">"), ("<", "<"))
MAX_CONDITIONS = 16
MAX_PATH_PARTS = 8
MAX_PART_LEN = 128
MAX_TYPED_TEXT = 10_000
ID_PATH = ("id",)


@dataclass(frozen=True)
class Condition:
    path: tuple[str, ...]
    op: str
    value: Any   # as typed (JSON when the text was valid JSON)
    text: str    # as written


def key_values(value: Any, field: str) -> list[tuple[str, Any]]:
    """(key, value) pairs from the GUI's key/value editor, an object, or JSON text of either."""
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise EngineError.invalid(field, "must be key/value pairs (or their JSON text)") from None
    if isinstance(value, dict):
        return [(str(k), v) for k, v in value.items()]
    if isinstance(value, list):
        pairs = []
        for item in value:
            if not isinstance(item, dict) or not isinstance(item.get("name", item.get("key")), str):
                raise EngineError.invalid(field, "must be a list of {name, value} pairs")
            key = item.get("name", item.get("key"))
            if key.strip():  # the editor adds empty rows before they are filled in
                pairs.append((key, item.get("value")))
        return pairs
    raise EngineError.invalid(field, "must be key/value pairs")


def parse_path(text: str, field: str) -> tuple[str, ...]:
    """`a.b.c` as its parts; every part plain enough to quote in a JSON path."""
    parts = tuple(part.strip() for part in text.strip().split("."))
    if not parts or len(parts) > MAX_PATH_PARTS or any(not p for p in parts):
        raise EngineError.invalid(field, f"has the field name {text!r}; use names separated by "
                                  f"dots (at most {MAX_PATH_PARTS} levels)")
    for part in parts:
        if len(part) > MAX_PART_LEN or any(c in part for c in '"\\') or not part.isprintable():
            raise EngineError.invalid(field, f"has the field name {text!r}; names may not hold "
                                      f"quotes, backslashes or control characters")
    return parts


def typed(value: Any) -> Any:
    """A text that is valid JSON as that JSON value; any other value as it is."""
    if isinstance(value, str) and value.strip() and len(value) <= MAX_TYPED_TEXT:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def parse_conditions(value: Any, field: str = "where") -> list[Condition]:
    conditions = []
    for key, raw in key_values(value, field):
        path_text, op = key.strip(), "="
        lowered = path_text.lower()
        for suffix, name in _SUFFIXES:
            if lowered.endswith(suffix) and len(path_text) > len(suffix):
                path_text, op = path_text[:-len(suffix)], name
                break
        text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
        conditions.append(Condition(parse_path(path_text, field), op, typed(raw), text))
    if len(conditions) > MAX_CONDITIONS:
        raise EngineError.invalid(field, f"has {len(conditions)} conditions; at most {MAX_CONDITIONS}")
    return conditions


def json_path(path: tuple[str, ...]) -> str:
    return "$" + "".join(f'."{part}"' for part in path)


def where_sql(conditions: list[Condition], field: str = "where") -> tuple[str, list[Any]]:
    """`AND`-ed SQL over `body` and `row_id` (empty text when there are no conditions)."""
    clauses, params = [], []
    for condition in conditions:
        sql, args = _one(condition, field)
        clauses.append(f"({sql})")
        params.extend(args)
    return " AND ".join(clauses), params


def _one(c: Condition, field: str) -> tuple[str, list[Any]]:
    if c.path == ID_PATH:
        return _on_id(c, field)
    p = json_path(c.path)
    if c.op == "=":
        return _equals(p, c.value, c.text)
    if c.op == "!=":
        sql, args = _equals(p, c.value, c.text)
        return f"NOT ifnull(({sql}), 0)", args
    if c.op == "contains":
        element = c.value if isinstance(c.value, (str, int, float)) and not isinstance(c.value, bool) else c.text
        return ("CASE json_type(body, ?) WHEN 'text' THEN instr(json_extract(body, ?), ?) > 0 "
                "WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(body, ?) AS e "
                "WHERE e.type NOT IN ('true', 'false') AND e.value IN (?, ?)) ELSE 0 END",
                [p, p, c.text, p, element, c.text])
    if isinstance(c.value, (int, float)) and not isinstance(c.value, bool):
        return (f"json_type(body, ?) IN ('integer', 'real') AND json_extract(body, ?) {c.op} ?",
                [p, p, c.value])
    if isinstance(c.value, str):
        return f"json_type(body, ?) = 'text' AND json_extract(body, ?) {c.op} ?", [p, p, c.value]
    raise EngineError.invalid(field, f"compares '{'.'.join(c.path)}' with {c.op} to {c.text!r}; "
                              f"{c.op} needs a number or a text")


def _equals(p: str, value: Any, text: str) -> tuple[str, list[Any]]:
    if value is None:
        return "ifnull(json_type(body, ?), 'null') = 'null'", [p]
    if isinstance(value, bool):
        return "json_type(body, ?) = ?", [p, "true" if value else "false"]
    if isinstance(value, (int, float)):
        return ("(json_type(body, ?) IN ('integer', 'real') AND json_extract(body, ?) = ?) OR "
                "(json_type(body, ?) = 'text' AND json_extract(body, ?) = ?)", [p, p, value, p, p, text])
    if isinstance(value, str):
        return "json_type(body, ?) = 'text' AND json_extract(body, ?) = ?", [p, p, value]
    # An object or a list: the same JSON, written the same way (SQLite's minified form).
    return ("json_type(body, ?) IN ('object', 'array') AND json_extract(body, ?) = json(?)",
            [p, p, json.dumps(value, ensure_ascii=False)])


def _on_id(c: Condition, field: str) -> tuple[str, list[Any]]:
    if c.op == "contains" or isinstance(c.value, bool) or not isinstance(c.value, int):
        raise EngineError.invalid(field, f"compares the row id with {c.op} to {c.text!r}; the id "
                                  f"is a whole number compared with =, !=, <, <=, > or >=")
    return f"row_id {c.op} ?", [c.value]
