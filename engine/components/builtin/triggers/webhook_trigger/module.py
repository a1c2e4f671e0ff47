"""Webhook trigger: the start of a run for one HTTP request (method, path, query, headers, body)."""


async def run(ctx, payload):
    data = payload.get("data") or {}
    if data.get("trigger") == "webhook":
        ctx.log(f"Started by a webhook call: {data.get('method')} {data.get('path')}.")
    else:
        ctx.log("Run by hand: the webhook starts this workflow once the preset is saved.")
    return payload
