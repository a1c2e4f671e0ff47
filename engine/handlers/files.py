"""request_drives and request_directory_list, confined to the shared folders."""

from __future__ import annotations

from typing import Any

from engine.files import DEFAULT_PAGE, MAX_PAGE, MAX_PATH_LEN
from engine.handlers.registry import Request, handler
from engine.protocol.schema import Integer, Schema, String


@handler("request_drives", reply="drives_list_response")
async def request_drives(req: Request) -> dict[str, Any]:
    drives = req.engine.shared_folders.drives()
    if not drives and req.engine.on_drives_requested_empty is not None:
        req.engine.on_drives_requested_empty()
    reply: dict[str, Any] = {"drives": drives}
    if not drives:
        reply["message"] = ("No folder is shared with this engine yet. Share one from the desktop "
                            "app (Shared folders...) or start the engine with --root.")
    return reply


# The GUI takes a listing (or its refusal) only when `path` is exactly what it asked for, a
# trailing slash included; so every reply, refusals too (echo), repeats the requested path.
@handler("request_directory_list", reply="directory_list_response", echo=("path",),
         schema=Schema({"path": String(required=True, max_len=MAX_PATH_LEN, min_len=1),
                        "offset": Integer(min_value=0, max_value=10**9),
                        "limit": Integer(min_value=1, max_value=MAX_PAGE)}))
async def request_directory_list(req: Request) -> dict[str, Any]:
    path = req.fields["path"]
    listing = await req.engine.workers.run(req.engine.shared_folders.list_directory, path,
                                           req.fields.get("offset", 0),
                                           req.fields.get("limit", DEFAULT_PAGE))
    return {"path": path, "items": listing.items, "offset": listing.offset,
            "limit": listing.limit, "total": listing.total,
            "has_more": listing.offset + len(listing.items) < listing.total}
