"""Debug popup: show payload.data in a popup in the GUI. Large data is cut to a preview (this
runs in a worker thread, so measuring it never stalls the engine)."""

import json

MAX_POPUP_BYTES = 256 * 1024


def run(ctx, payload):
    title = ctx.config.get("popup_title") or ctx.node_name or "Debug"
    content = payload.get("data", {})
    text = json.dumps(content, ensure_ascii=False, default=str)
    if len(text.encode("utf-8")) > MAX_POPUP_BYTES:
        content = {"truncated": True, "size": len(text.encode("utf-8")),
                   "preview": text.encode("utf-8")[:MAX_POPUP_BYTES].decode("utf-8", errors="ignore")}
    ctx.popup(str(title), content)
    return payload
