"""File watch trigger: the start of a run for one change in a watched folder (path, kind)."""


async def run(ctx, payload):
    # A triggered run says nothing more: its data holds the event, and a log line per run
    # would cost every webhook call a write to the log file.
    if (payload.get("data") or {}).get("trigger") != "file_watch":
        ctx.log("Run by hand: the folder watch starts this workflow by itself once the preset is saved.")
    return payload
