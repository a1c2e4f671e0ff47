"""Finding and describing components. A broken manifest is skipped with a logged reason.

Layout: `<base>/<type>/<component id>/manifest.json` plus the entry point the manifest names
(`entry_point`, default `module.py`). The folder name is the component id; a manifest `id`
that disagrees is a broken manifest. User components in the data folder may not replace
built-in ones (their ids are part of the contract).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

COMPONENT_TYPES = ("modules", "plugins", "tools", "triggers")
BUILTIN_DIR = Path(__file__).parent / "builtin"
COMPONENT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
MANIFEST_MAX_BYTES = 256 * 1024


@dataclass(frozen=True)
class Component:
    id: str
    type: str
    name: str
    manifest: dict[str, Any]
    folder: Path
    entry_point: Path
    builtin: bool

    def public(self) -> dict[str, Any]:
        """The GUI's shape: {id, name, manifest, is_installed}."""
        return {"id": self.id, "name": self.name, "manifest": self.manifest,
                "is_installed": True, "is_builtin": self.builtin}


class ManifestError(ValueError):
    pass


def read_manifest(folder: Path, component_type: str) -> dict[str, Any]:
    path = folder / "manifest.json"
    if path.stat().st_size > MANIFEST_MAX_BYTES:
        raise ManifestError(f"manifest.json is larger than {MANIFEST_MAX_BYTES} bytes")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ManifestError(f"manifest.json is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ManifestError("manifest.json must hold an object")
    manifest_id = manifest.get("id", folder.name)
    if manifest_id != folder.name:
        raise ManifestError(f"its id {manifest_id!r} differs from the folder name {folder.name!r}")
    if not isinstance(manifest.get("name", ""), str):
        raise ManifestError("'name' must be a string")
    properties = manifest.get("properties", [])
    if not isinstance(properties, list) or not all(
            isinstance(p, dict) and isinstance(p.get("id"), str) for p in properties):
        raise ManifestError("'properties' must be a list of objects with an 'id'")
    ports = manifest.get("output_ports", [])
    if not isinstance(ports, list):
        raise ManifestError("'output_ports' must be a list")
    entry = manifest.get("entry_point", "module.py")
    if not isinstance(entry, str) or "/" in entry or "\\" in entry or not entry.endswith(".py"):
        raise ManifestError("'entry_point' must be a .py file name inside the component folder")
    if not (folder / entry).is_file():
        raise ManifestError(f"its entry point {entry} is missing")
    manifest.setdefault("id", folder.name)
    manifest.setdefault("type", component_type)
    return manifest


class ComponentCatalog:
    """Scans the component folders. Scanning touches the disk: call `scan` off the loop."""

    def __init__(self, user_dir: Path | None, builtin_dir: Path = BUILTIN_DIR) -> None:
        self.user_dir = user_dir
        self.builtin_dir = builtin_dir
        self._by_type: dict[str, dict[str, Component]] = {t: {} for t in COMPONENT_TYPES}

    def scan(self) -> None:
        found: dict[str, dict[str, Component]] = {t: {} for t in COMPONENT_TYPES}
        for component_type in COMPONENT_TYPES:
            bases = [(self.builtin_dir, True)]
            if self.user_dir is not None:
                bases.append((self.user_dir, False))
            for base, builtin in bases:
                for component in self._scan_folder(base / component_type, component_type, builtin):
                    if component.id in found[component_type]:
                        log.warning("component %s/%s in %s is skipped: a built-in component has "
                                    "that id", component_type, component.id, component.folder)
                        continue
                    found[component_type][component.id] = component
        self._by_type = found

    def _scan_folder(self, folder: Path, component_type: str, builtin: bool) -> list[Component]:
        if not folder.is_dir():
            return []
        components = []
        for child in sorted(folder.iterdir()):
            if not child.is_dir() or child.name.startswith((".", "_")):
                continue
            if not COMPONENT_ID_RE.match(child.name):
                log.warning("component folder %s is skipped: its name is not a valid id "
                            "(lower-case letters, digits, _ and -)", child)
                continue
            try:
                manifest = read_manifest(child, component_type)
            except FileNotFoundError:
                log.warning("component folder %s is skipped: it has no manifest.json", child)
                continue
            except (ManifestError, OSError) as exc:
                log.warning("component %s is skipped: %s", child, exc)
                continue
            components.append(Component(
                id=child.name, type=component_type, name=manifest.get("name") or child.name,
                manifest=manifest, folder=child,
                entry_point=child / manifest.get("entry_point", "module.py"), builtin=builtin))
        return components

    def list(self, component_type: str) -> list[Component]:
        return sorted(self._by_type.get(component_type, {}).values(), key=lambda c: c.id)

    def get(self, component_type: str, component_id: str) -> Component | None:
        return self._by_type.get(component_type, {}).get(component_id)
