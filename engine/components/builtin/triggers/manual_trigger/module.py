"""Manual trigger: the start of a workflow run from the GUI; passes the initial payload on."""


async def run(ctx, payload):
    ctx.log("Workflow triggered manually." if not ctx.simulate else "Workflow triggered manually (simulation).")
    return payload
