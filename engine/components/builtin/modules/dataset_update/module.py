"""Dataset update: set fields on the rows of one of the owner's datasets that match simple
field conditions, all of them or none (a row that would grow past the limits refuses the whole
update). SIMULATE writes nothing and logs which rows it would change."""

import json


def _describe(changes):
    """The fields to set as `a = 1, b = x` (the engine hands over the GUI editor's rows as an
    object; a list of {name, value} rows comes from direct callers)."""
    if isinstance(changes, dict):
        text = ", ".join(f"{name} = {value}" for name, value in changes.items())
    elif isinstance(changes, list):
        text = ", ".join(f"{item.get('name')} = {item.get('value')}" for item in changes
                         if isinstance(item, dict))
    else:
        text = json.dumps(changes, ensure_ascii=False, default=str)
    return text if len(text) <= 300 else text[:300] + "..."


async def run(ctx, payload):
    config = ctx.config
    output = str(config.get("output_field") or "").strip() or "updated"
    name, changes = config.get("dataset"), config.get("set")
    ids = await ctx.datasets.update(name, config.get("where"), changes, limit=config.get("limit"),
                                    dry_run=ctx.simulate)
    payload["data"][output] = {"dataset": name, "count": len(ids), "row_ids": ids}
    if ctx.simulate:
        payload["data"][output]["simulated"] = True
        ctx.log(f"Would update {len(ids)} row(s) of the dataset '{name}' (ids "
                f"{', '.join(map(str, ids[:20]))}{', ...' if len(ids) > 20 else ''}) setting "
                f"{_describe(changes)} (simulation: nothing written).")
    else:
        ctx.log(f"Updated {len(ids)} row(s) of the dataset '{name}'.")
    return payload
