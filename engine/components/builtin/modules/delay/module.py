"""Delay: wait some seconds (cancellable; SIMULATE does not wait)."""

import math

from engine.components.api import ModuleError


async def run(ctx, payload):
    raw = ctx.config.get("seconds", 1)
    try:
        seconds = float(raw if raw not in (None, "") else 0)
    except (TypeError, ValueError):
        raise ModuleError(f"'seconds' must be a number, not {raw!r}") from None
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ModuleError("'seconds' must be zero or more")
    if ctx.simulate:
        ctx.log(f"Would wait {seconds:g} s.")
    await ctx.sleep(seconds)
    return payload
