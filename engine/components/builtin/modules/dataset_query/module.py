"""Dataset query: the rows of one of the owner's datasets that match simple field conditions,
newest first (or oldest first), into payload.data. It only reads, in SIMULATE too."""


async def run(ctx, payload):
    name = ctx.config.get("dataset")
    name = name.strip() if isinstance(name, str) else name
    output = ctx.config.get("output_field")
    output = output.strip() if isinstance(output, str) and output.strip() else "rows"
    limit = ctx.config.get("limit")
    rows = await ctx.datasets.query(name, ctx.config.get("where"),
                                    limit=100 if limit in (None, "") else limit,
                                    newest_first=ctx.config.get("order") != "oldest first")
    payload["data"][output] = rows
    ctx.log(f"{len(rows)} row(s) of the dataset '{name}' matched.", "DEBUG")
    return payload
