"""Read file: a file inside a shared folder into payload.data.content. Runs in a worker thread.
Reading has no side effect, so SIMULATE reads too. The file is opened through the shared
folder's handle (engine/files.py), never by a path checked beforehand."""

import base64

from engine.components.api import ModuleError
from engine.protocol.errors import EngineError

MAX_BYTES = 16 * 1024 * 1024


def run(ctx, payload):
    path = ctx.config.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ModuleError("'path' is required")
    try:
        raw, real = ctx.shared_files.read_bytes(path.strip(), MAX_BYTES)
    except EngineError as exc:  # the engine's sentence, as the node's error (not its class name)
        raise ModuleError(exc.message) from None
    size = len(raw)
    encoding = (ctx.config.get("encoding") or "utf-8").lower()
    if encoding == "base64":
        content = base64.b64encode(raw).decode("ascii")
    else:
        try:
            content = raw.decode(encoding)
        except LookupError:
            raise ModuleError(f"unknown encoding '{encoding}'") from None
        except UnicodeDecodeError as exc:
            raise ModuleError(f"{path} is not {encoding} text ({exc.reason} at byte {exc.start}); "
                              f"try the base64 encoding") from None
    payload["data"]["content"] = content
    payload["data"]["file_path"] = str(real)
    payload["data"]["file_size"] = size
    ctx.log(f"Read {size} bytes from {real}.")
    return payload
