"""If condition: compare a field of payload.data; continue through `true` or `false`."""

from engine.components.api import ModuleError
from engine.components.api import MISSING, lookup

OPERATORS = ("equals", "not_equals", "contains", "greater_than", "less_than", "exists")


def _number(value):
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _equal(left, right):
    if left == right:
        return True
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return a == b
    if isinstance(left, bool) or isinstance(right, bool):
        return str(left).lower() == str(right).lower()
    return str(left) == str(right) if left is not None and right is not None else False


def evaluate(data, field, operator, value):
    found = lookup(data, field) if field else data
    missing = found is MISSING
    if operator == "exists":
        return not missing and found is not None
    if missing:
        return operator == "not_equals"
    if operator == "equals":
        return _equal(found, value)
    if operator == "not_equals":
        return not _equal(found, value)
    if operator == "contains":
        if isinstance(found, str):
            return str(value) in found
        if isinstance(found, list):
            return any(_equal(item, value) for item in found)
        if isinstance(found, dict):
            return str(value) in found
        return False
    a, b = _number(found), _number(value)
    if a is None or b is None:
        raise ModuleError(f"'{operator}' needs numbers; the field '{field}' is {found!r} and the value is {value!r}")
    return a > b if operator == "greater_than" else a < b


async def run(ctx, payload):
    operator = ctx.config.get("operator") or "equals"
    if operator not in OPERATORS:
        raise ModuleError(f"unknown operator '{operator}'; use one of {', '.join(OPERATORS)}")
    field = ctx.config.get("field") or ""
    result = evaluate(payload.get("data", {}), str(field), operator, ctx.config.get("value"))
    return {"payload": payload, "output_name": "true" if result else "false"}
