"""Schedule trigger: the start of a scheduled run; its data is the fire (scheduled_for, fired_at)."""


async def run(ctx, payload):
    data = payload.get("data") or {}
    if data.get("trigger") == "schedule":
        ctx.log(f"Started by the schedule for {data.get('scheduled_for_iso')}.")
    else:
        ctx.log("Run by hand: the schedule starts this workflow once the preset is saved.")
    return payload
