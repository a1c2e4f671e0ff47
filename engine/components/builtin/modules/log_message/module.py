"""Log message: one line in the workflow log (the same in SIMULATE: logging has no side effect)."""


async def run(ctx, payload):
    message = ctx.config.get("message")
    if message is None or message == "":
        message = "(empty message)"
    ctx.log(message if isinstance(message, str) else str(message), ctx.config.get("level") or "INFO")
    return payload
