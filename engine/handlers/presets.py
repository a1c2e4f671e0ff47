"""Presets: list, load (own or shared), save (signature-checked, versioned), delete, share."""

from __future__ import annotations

from typing import Any

from engine.auth.frame_auth import normalize_address
from engine.auth.signatures import BadSignature, SIGNATURE_RE, recover_personal_signer
from engine.handlers.registry import Request, handler
from engine.protocol.canonical import canonical_json, has_index_keys
from engine.protocol.errors import EngineError, ErrorCode
from engine.protocol.frames import RawJSON
from engine.protocol.schema import ADDRESS_RE, Address, Field, Integer, Name, Object, Schema, String
from engine.protocol.workflow import workflow_parts
from engine.store.presets import EVERYONE



async def _presets_frame(req: Request) -> dict[str, Any]:
    presets = await req.engine.presets.list(req.owner)
    return {"type": "presets_list_response", "presets": [p.public() for p in presets]}


@handler("request_presets_list", reply="presets_list_response")
async def request_presets_list(req: Request) -> dict[str, Any]:
    frame = await _presets_frame(req)
    del frame["type"]
    return frame


@handler("load_preset", reply="load_preset_response",
         schema=Schema({"name": Name(), "owner_id": Address(), "version": Integer(min_value=1, nullable=True)}))
async def load_preset(req: Request) -> dict[str, Any]:
    name = req.fields["name"]
    owner_id = req.fields.get("owner_id")
    owner = normalize_address(owner_id) if owner_id else req.owner
    if owner != req.owner and not await req.engine.presets.is_shared_with(owner, name, req.owner):
        # Same text as a missing preset: do not reveal what another user keeps.
        raise EngineError.not_found(f"The preset '{name}'")
    found = await req.engine.presets.load_text(owner, name, req.fields.get("version"))
    if found is None:
        raise EngineError.not_found(f"The preset '{name}'")
    version, workflow_text = found
    reply: dict[str, Any] = {"name": name, "workflow_data": RawJSON(workflow_text), "version": version}
    if owner_id:
        reply["owner_id"] = owner_id
    return reply


_SIGNED_PREFIX = '{"workflow_data":'


def _preset_signer(workflow: dict[str, Any], signature: str, owner: str) -> tuple[str, str]:
    """(signer, the workflow's canonical JSON text). The text is also what gets stored: it is
    valid JSON for the same document, and reusing it spares a second encoding.

    When the sorted-keys text does not recover `owner` and the workflow has integer-like keys,
    the JavaScript-property-order variant is tried too (see engine.protocol.canonical)."""
    signed = canonical_json({"workflow_data": workflow})
    signer = recover_personal_signer(signed, signature)
    if normalize_address(signer) != owner and has_index_keys(workflow):
        variant = canonical_json({"workflow_data": workflow}, index_keys_first=True)
        if normalize_address(recover_personal_signer(variant, signature)) == owner:
            return owner, signed[len(_SIGNED_PREFIX):-1]
    return signer, signed[len(_SIGNED_PREFIX):-1]


@handler("save_preset", reply="status_response",
         schema=Schema({"name": Name(), "workflow_data": Object(required=True, max_len=64),
                        "signature": String(required=True, max_len=132, pattern=SIGNATURE_RE,
                                            pattern_text="must be 0x followed by 130 hexadecimal digits")}))
async def save_preset(req: Request) -> dict[str, Any]:
    name, workflow, signature = req.fields["name"], req.fields["workflow_data"], req.fields["signature"]
    workflow_parts(workflow)
    try:
        # Serializing a large workflow is CPU work: keep it off the event loop.
        signer, workflow_text = await req.engine.workers.run(_preset_signer, workflow, signature, req.owner)
    except (BadSignature, TypeError, UnicodeEncodeError, ValueError) as exc:
        raise EngineError(ErrorCode.AUTH_SIGNATURE,
                          f"The preset signature is invalid ({exc}); nothing was saved.") from None
    if normalize_address(signer) != req.owner:
        raise EngineError(ErrorCode.AUTH_SIGNATURE, "The preset signature does not match the "
                          "signed-in address (the workflow may have changed after signing); "
                          "nothing was saved.")
    automations = req.engine.automations
    # A trigger node that cannot work is refused before anything is saved.
    specs = await automations.check_workflow(workflow) if automations is not None else []
    version = await req.engine.presets.save(req.owner, name, RawJSON(workflow_text), signature)
    if automations is not None:
        await automations.preset_saved(req.owner, name, version, workflow, specs)
    req.engine.publish_to_owner(req.owner, await _presets_frame(req))
    return {"status": f"Preset '{name}' saved.", "request_type": req.type, "name": name,
            "version": version}


@handler("delete_preset", reply="status_response", schema=Schema({"name": Name()}))
async def delete_preset(req: Request) -> dict[str, Any]:
    name = req.fields["name"]
    if not await req.engine.presets.delete(req.owner, name):
        raise EngineError.not_found(f"The preset '{name}'")
    if req.engine.automations is not None:
        await req.engine.automations.preset_deleted(req.owner, name)
    req.engine.publish_to_owner(req.owner, await _presets_frame(req))
    return {"status": f"Preset '{name}' deleted.", "request_type": req.type, "name": name}


def _check_grantees(value: Any) -> str | None:
    if value == EVERYONE:
        return None
    if isinstance(value, list) and len(value) <= 256 and all(
            isinstance(a, str) and ADDRESS_RE.match(a) for a in value):
        return None
    return "must be \"*\" or a list of at most 256 0x-prefixed addresses"


@handler("share_preset", reply="share_preset_response",
         schema=Schema({"name": Name(), "with": Field((str, list), required=True, check=_check_grantees)}))
async def share_preset(req: Request) -> dict[str, Any]:
    name, grantees = req.fields["name"], req.fields["with"]
    targets = [EVERYONE] if grantees == EVERYONE else [normalize_address(a) for a in grantees]
    if not await req.engine.presets.share(req.owner, name, targets):
        raise EngineError.not_found(f"The preset '{name}'")
    req.engine.publish_to_owner(req.owner, await _presets_frame(req))
    return {"name": name, "shared_with": targets, "status": "shared" if targets else "unshared"}
