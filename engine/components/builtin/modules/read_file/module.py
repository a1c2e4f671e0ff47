"""Read file: a file inside a shared folder into payload.data.content. Runs in a worker thread.
Reading has no side effect, so SIMULATE reads too."""

import base64

from engine.components.api import ModuleError

MAX_BYTES = 16 * 1024 * 1024


def run(ctx, payload):
    path = ctx.config.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ModuleError("'path' is required")
    real = ctx.resolve_path(path.strip(), must_exist=True)
    if not real.is_file():
        raise ModuleError(f"{path} is not a file")
    size = real.stat().st_size
    if size > MAX_BYTES:
        raise ModuleError(f"{path} is {size} bytes; at most {MAX_BYTES} can be read into a payload")
    raw = real.read_bytes()
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
