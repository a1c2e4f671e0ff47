"""Merge: the runtime waits for every connected input (manifest: wait_for_all_inputs); this
combines them. merge_data: one object, later inputs win on equal keys; list: data.items."""


async def run(ctx, payload):
    inputs = ctx.inputs or [payload]
    history = []
    for item in inputs:
        history.extend(item.get("history", []))
    if (ctx.config.get("mode") or "merge_data") == "list":
        data = {"items": [item.get("data", {}) for item in inputs]}
    else:
        data = {}
        for item in inputs:
            data.update(item.get("data", {}))
    ctx.log(f"Merged {len(inputs)} input(s).")
    return {"data": data, "history": history}
