"""Write file: text into a file inside a shared folder, atomically (or appended). Runs in a
worker thread, through the shared folder's handle (engine/files.py). SIMULATE writes nothing and puts what it would write in payload.data.would_write."""

import base64
import json

from engine.components.api import ModuleError
from engine.protocol.errors import EngineError

MAX_BYTES = 64 * 1024 * 1024


def _content(ctx, payload):
    content = ctx.config.get("content")
    if content is None or content == "":
        return json.dumps(payload.get("data", {}), ensure_ascii=False, indent=2)
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, indent=2)


def run(ctx, payload):
    path = ctx.config.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ModuleError("'path' is required")
    try:
        real = ctx.resolve_path(path.strip(), must_exist=False)
    except EngineError as exc:  # the engine's sentence, as the node's error (not its class name)
        raise ModuleError(exc.message) from None
    text = _content(ctx, payload)
    encoding = (ctx.config.get("encoding") or "utf-8").lower()
    try:
        raw = base64.b64decode(text, validate=True) if encoding == "base64" else text.encode(encoding)
    except LookupError:
        raise ModuleError(f"unknown encoding '{encoding}'") from None
    except (ValueError, UnicodeEncodeError) as exc:
        raise ModuleError(f"the content cannot be written as {encoding}: {exc}") from None
    if len(raw) > MAX_BYTES:
        raise ModuleError(f"the content is {len(raw)} bytes; at most {MAX_BYTES} are written")
    append = bool(ctx.config.get("append"))
    if ctx.simulate:
        payload["data"]["would_write"] = {"path": str(real), "bytes": len(raw), "append": append}
        ctx.log(f"Would {'append' if append else 'write'} {len(raw)} bytes to {real} (simulation: nothing written).")
        return payload
    ctx.raise_if_cancelled()
    # Through the shared folder's handle: the check is of what is opened, not of `real`.
    try:
        real = ctx.shared_files.write_bytes(path.strip(), raw, append=append)
    except EngineError as exc:
        raise ModuleError(exc.message) from None
    payload["data"]["file_path"] = str(real)
    payload["data"]["bytes_written"] = len(raw)
    ctx.log(f"Wrote {len(raw)} bytes to {real}.")
    return payload
