"""Stop and error: fail here with a message (through the error port when connected)."""

from engine.components.api import ModuleError


async def run(ctx, payload):
    raise ModuleError(str(ctx.config.get("message") or "The workflow was stopped by a Stop and Error node."))
