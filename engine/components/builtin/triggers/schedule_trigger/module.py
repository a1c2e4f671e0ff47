"""Schedule trigger: the start of a scheduled run; its data is the fire (scheduled_for, fired_at)."""


async def run(ctx, payload):
    # A triggered run says nothing more: its data holds the event, and a log line per run
    # would cost every webhook call a write to the log file.
    if (payload.get("data") or {}).get("trigger") != "schedule":
        ctx.log("Run by hand: the schedule starts this workflow by itself once the preset is saved.")
    return payload
