"""Dataset append: payload.data (or one field of it) as a new row of one of the owner's
datasets. The row is committed before the node succeeds (appends of many runs share one
commit). SIMULATE writes nothing and logs what it would append. Idempotent: the append is
keyed by the node run (ctx.run_key), so a run repeated after a crash appends nothing more."""

import json

from engine.components.api import ModuleError
from engine.components.api import MISSING, lookup

PREVIEW_CHARS = 300


def _row(ctx, payload):
    field = ctx.config.get("field")
    field = field.strip() if isinstance(field, str) else ""
    if not field:
        return payload["data"]
    value = lookup(payload["data"], field)
    if value is MISSING:
        raise ModuleError(f"payload.data has no field '{field}' to append")
    return value if isinstance(value, dict) else {"value": value}


async def run(ctx, payload):
    name = ctx.config.get("dataset")
    create = ctx.config.get("create_if_missing") in (True, "true", "True", 1)
    row = _row(ctx, payload)
    if ctx.simulate:
        size = await ctx.datasets.check_append(name, row, create=create)
        preview = json.dumps(row, ensure_ascii=False, default=str)
        if len(preview) > PREVIEW_CHARS:
            preview = preview[:PREVIEW_CHARS] + "..."
        ctx.log(f"Would append a row of {size} bytes to the dataset '{name}' (simulation: nothing "
                f"written): {preview}")
        payload["data"]["would_append"] = {"dataset": name, "bytes": size}
        return payload
    # Keyed by the node run: repeated after a crash (durable jobs), it finds its row again.
    payload["data"]["dataset_row_id"] = await ctx.datasets.append(name, row, create=create,
                                                                  run_key=ctx.run_key)
    return payload
