"""Dataset query: the rows of one of the owner's datasets that match simple field conditions,
newest first (or oldest first), into payload.data. It only reads, in SIMULATE too."""


async def run(ctx, payload):
    config = ctx.config
    output = str(config.get("output_field") or "").strip() or "rows"
    rows = await ctx.datasets.query(config.get("dataset"), config.get("where"),
                                    limit=config.get("limit"),
                                    newest_first=config.get("order") != "oldest first")
    payload["data"][output] = rows
    ctx.log(f"{len(rows)} row(s) of the dataset '{config.get('dataset')}' matched.", "DEBUG")
    return payload
