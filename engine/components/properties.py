"""A node's config values, from what the web GUI's properties panel produces to what a module
reads, per the property types of its manifest.

The panel (protocol.md §1) renders only the types in GUI_TYPES, and what it hands back is not
always the value a module wants: a number field gives text ("5"), a `code` field gives the text
typed into it, the key-value editor gives a list of `{name, value}` rows. `prepare_config` turns
each into its typed value (JSON text parsed where the manifest says `"language": "json"`), fills
in `{{...}}` placeholders (after parsing, so a value with quotes cannot break the JSON), and
refuses a value of the wrong kind with an error naming the property. Values that already have
their typed form (presets saved by older clients, the published API) are accepted as they are.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Iterable

from engine.components.api import ModuleError

# What the GUI's PropertiesPanel.vue renders; a property of any other type is invisible there.
GUI_TYPES = ("string", "integer", "float", "folderpath", "boolean", "textarea", "code", "enum",
             "list", "cron_editor", "dynamic_key_value_editor")
# Types older or hand-written manifests use, read as the GUI type they mean.
LEGACY_TYPES = {"number": "float", "select": "enum", "object": "code", "text": "textarea",
                "int": "integer", "bool": "boolean"}
# An empty field of these leaves the value out: the module's default applies.
EMPTY_MEANS_DEFAULT = ("integer", "float", "boolean", "enum")


class PropertyError(ModuleError):
    """A config value of the wrong kind; the text names the property."""


def prepare_config(properties: Iterable[dict[str, Any]], config: dict[str, Any],
                   render: Callable[[Any], Any]) -> dict[str, Any]:
    """The module's view of `config`: every value of a declared property parsed, rendered and
    checked; other keys only rendered. An empty value ("" or null) of a number, boolean or
    choice is left out, so the module uses its default."""
    declared = {p["id"]: p for p in properties if isinstance(p, dict) and isinstance(p.get("id"), str)}
    out: dict[str, Any] = {}
    for key, raw in config.items():
        spec = declared.get(key)
        if spec is None:
            out[key] = render(raw)
            continue
        kind = LEGACY_TYPES.get(str(spec.get("type")), str(spec.get("type")))
        value = render(_parse(kind, spec, raw))
        if value in (None, "") and (kind in EMPTY_MEANS_DEFAULT or _is_json(kind, spec)):
            continue
        out[key] = _check(kind, spec, value)
    return out


def _name(spec: dict[str, Any]) -> str:
    label = spec.get("label")
    return f"'{label}' ({spec['id']})" if isinstance(label, str) and label else f"'{spec['id']}'"


def _is_placeholder(value: str) -> bool:
    text = value.strip()
    return text.startswith("{{") and text.endswith("}}") and text.count("{{") == 1


def _parse(kind: str, spec: dict[str, Any], raw: Any) -> Any:
    """Structure from the GUI's text or rows, before placeholders are filled in."""
    if _is_json(kind, spec) and isinstance(raw, str):
        if not raw.strip():
            return None
        if _is_placeholder(raw):
            return raw  # the placeholder gives the value itself
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise PropertyError(f"property {_name(spec)} must be JSON text: {exc}") from None
    if kind == "dynamic_key_value_editor":
        return _rows_to_object(spec, raw)
    return raw


def _is_json(kind: str, spec: dict[str, Any]) -> bool:
    """A `code` property holding JSON (`"language": "json"`; legacy type `object`)."""
    return kind == "code" and (str(spec.get("language", "")).lower() == "json"
                               or spec.get("type") == "object")


def _rows_to_object(spec: dict[str, Any], raw: Any) -> Any:
    """The key-value editor's `[{name, value}, ...]` as `{name: value}`; an object is kept, and
    JSON text of one is read (older presets)."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise PropertyError(f"property {_name(spec)} must be a list of name/value rows") from None
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, list):
        raise PropertyError(f"property {_name(spec)} must be a list of name/value rows")
    out: dict[str, Any] = {}
    for index, row in enumerate(raw, start=1):
        if not isinstance(row, dict):
            raise PropertyError(f"property {_name(spec)}: row {index} is not a name/value pair")
        name, value = row.get("name"), row.get("value")
        name = "" if name is None else str(name).strip()
        if not name:
            if value in (None, ""):
                continue  # a row the user added and left empty
            raise PropertyError(f"property {_name(spec)}: row {index} has a value but no name")
        out[name] = "" if value is None else value
    return out


def _check(kind: str, spec: dict[str, Any], value: Any) -> Any:
    if kind == "integer":
        number = _number(spec, value)
        if number != int(number):
            raise PropertyError(f"property {_name(spec)} must be a whole number, not {value!r}")
        return _in_range(spec, int(number))
    if kind == "float":
        return _in_range(spec, _number(spec, value))
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if value in (0, 1) and not isinstance(value, float):
            return bool(value)
        raise PropertyError(f"property {_name(spec)} must be true or false, not {value!r}")
    if kind == "enum":
        return _choice(spec, value)
    if kind == "list" and not isinstance(value, list):
        raise PropertyError(f"property {_name(spec)} must be a list")
    return value


def _number(spec: dict[str, Any], value: Any) -> float:
    if isinstance(value, bool):
        raise PropertyError(f"property {_name(spec)} must be a number, not {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise PropertyError(f"property {_name(spec)} must be a number, not {value!r}") from None
    else:
        raise PropertyError(f"property {_name(spec)} must be a number, not {value!r}")
    if not math.isfinite(number):
        raise PropertyError(f"property {_name(spec)} must be a finite number, not {value!r}")
    return number


def _in_range(spec: dict[str, Any], number: int | float) -> int | float:
    low, high = spec.get("min"), spec.get("max")
    if isinstance(low, (int, float)) and number < low:
        raise PropertyError(f"property {_name(spec)} must be at least {low}, not {_shown(number)}")
    if isinstance(high, (int, float)) and number > high:
        raise PropertyError(f"property {_name(spec)} must be at most {high}, not {_shown(number)}")
    return number


def _shown(number: float) -> str:
    return str(int(number)) if number == int(number) else repr(number)


def _choice(spec: dict[str, Any], value: Any) -> Any:
    """One of the options (plain values, or the GUI's `{title, value}` items); a text that
    differs only in case is taken as the option it names."""
    options = [o.get("value") if isinstance(o, dict) else o for o in spec.get("options") or []]
    if not options or value in options:
        return value
    if isinstance(value, str):
        for option in options:
            if isinstance(option, str) and option.lower() == value.strip().lower():
                return option
    shown = ", ".join(str(o) for o in options)
    raise PropertyError(f"property {_name(spec)} must be one of {shown}, not {value!r}")
