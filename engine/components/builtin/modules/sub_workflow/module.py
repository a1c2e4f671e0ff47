"""Sub-workflow: run one of the owner's presets as a child job and pass its final payload on.
In SIMULATE the child is simulated too."""

from engine.components.api import ModuleError


async def run(ctx, payload):
    name = ctx.config.get("preset_name")
    if not isinstance(name, str) or not name.strip():
        raise ModuleError("'preset_name' is required")
    return await ctx.run_sub_workflow(name.strip(), payload)
