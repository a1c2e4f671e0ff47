"""Loading a component's entry point once and telling async modules from sync ones.

Importing executes a file: do it off the loop (`Runtime` calls `load_many` in a thread).
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from engine.components.catalog import Component, ComponentCatalog
from engine.components.properties import prepare_config
from engine.protocol.errors import EngineError, ErrorCode
from engine.runtime.payload import decode, encode

if TYPE_CHECKING:
    from engine.runtime.graph import Node

log = logging.getLogger(__name__)

# Node module ids are looked up among these component types, in this order.
RUNNABLE_TYPES = ("modules", "triggers", "plugins", "tools")


@dataclass(frozen=True)
class LoadedModule:
    component: Component
    run: Callable[..., Any]
    is_async: bool

    def plain_config(self, node: "Node") -> dict[str, Any]:
        """A fresh copy of the module's view of `node`'s config when it holds no `{{`
        placeholder: prepare_config with nothing to fill in comes out the same for every run,
        so it is prepared once and kept on the node (the graph is shared by the workflow's
        runs). PropertyError, as prepare_config, each time for a config that does not fit: a
        refused one is not kept."""
        kept = node.prepared
        if kept and kept[0] is self:
            return decode(kept[1])
        config = prepare_config(self.component.manifest.get("properties") or (),
                                decode(node.config_json), _unchanged)
        prepared, lossy = encode(config)
        if not lossy:
            kept[:] = [self, prepared]
        return config

    @property
    def waits_for_all_inputs(self) -> bool:
        return bool(self.component.manifest.get("wait_for_all_inputs"))

    @property
    def idempotent(self) -> bool:
        """The manifest's `"idempotent": true`: running it twice with the same input does no
        harm, so a run cut short by a crash is simply run again after the restart. A module
        without it is not re-run: its start is committed before it runs, and a crash during
        it ends the job FAILED (resumable on request)."""
        return self.component.manifest.get("idempotent") is True


def _unchanged(value: Any) -> Any:
    return value


class ModuleLoader:
    def __init__(self, catalog: ComponentCatalog) -> None:
        self._catalog = catalog
        self._cache: dict[tuple[str, float], LoadedModule] = {}
        self._lock = threading.Lock()
        self._builtins: dict[str, LoadedModule] = {}

    def find(self, module_id: str) -> Component | None:
        for component_type in RUNNABLE_TYPES:
            component = self._catalog.get(component_type, module_id)
            if component is not None:
                return component
        return None

    def cached(self, module_ids: set[str]) -> dict[str, LoadedModule] | None:
        """The loaded built-ins, without touching the disk (they never change while the engine
        runs); None if any id needs `load_many` (in a thread)."""
        found = {}
        for module_id in module_ids:
            loaded = self._builtins.get(module_id)
            if loaded is None:
                return None
            found[module_id] = loaded
        return found

    def load(self, module_id: str) -> LoadedModule:
        component = self.find(module_id)
        if component is None:
            raise EngineError(ErrorCode.NOT_FOUND,
                              f"The module '{module_id}' is not installed in this engine.",
                              module_id=module_id)
        try:
            stamp = component.entry_point.stat().st_mtime
        except OSError as exc:
            raise EngineError(ErrorCode.NOT_FOUND, f"The module '{module_id}' cannot be read: "
                              f"{exc.strerror}.", module_id=module_id) from None
        key = (str(component.entry_point), stamp)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                return cached
            loaded = self._import(component)
            self._cache[key] = loaded
            if component.builtin:
                self._builtins[module_id] = loaded
            return loaded

    def load_many(self, module_ids: set[str]) -> dict[str, LoadedModule]:
        return {module_id: self.load(module_id) for module_id in sorted(module_ids)}

    @staticmethod
    def _import(component: Component) -> LoadedModule:
        name = f"flowork_components.{component.type}.{component.id}"
        try:
            spec = importlib.util.spec_from_file_location(name, component.entry_point)
            if spec is None or spec.loader is None:
                raise ImportError("no loader for the entry point")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except Exception as exc:  # a broken component must not take the engine down
            log.exception("component %s failed to load", component.id)
            raise EngineError(ErrorCode.INTERNAL, f"The module '{component.id}' failed to load: "
                              f"{exc}. The engine log has the details.") from None
        run = getattr(module, "run", None)
        if not callable(run):
            raise EngineError(ErrorCode.INTERNAL, f"The module '{component.id}' has no "
                              f"run(ctx, payload) function in {component.entry_point.name}.")
        return LoadedModule(component, run, inspect.iscoroutinefunction(run))
