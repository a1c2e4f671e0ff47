"""File watch trigger: the start of a run for one change in a watched folder (path, kind)."""


async def run(ctx, payload):
    data = payload.get("data") or {}
    if data.get("trigger") == "file_watch":
        ctx.log(f"Started by a file change: {data.get('kind')} {data.get('path')}.")
    else:
        ctx.log("Run by hand: the folder watch starts this workflow once the preset is saved.")
    return payload
