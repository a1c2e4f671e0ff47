"""Message handlers, one module per area. `ALL_MODULES` is the list the engine registers."""

from __future__ import annotations

import importlib
from types import ModuleType

from engine.handlers.registry import HandlerRegistry

# Each area's module; the registry collects the @handler functions they define.
AREA_MODULES = (
    "engine.handlers.settings",
    "engine.handlers.variables",
    "engine.handlers.presets",
    "engine.handlers.components",
    "engine.handlers.files",
    "engine.handlers.history",
    "engine.handlers.catalogs",
    "engine.handlers.workflows",
    "engine.handlers.jobs",
    "engine.handlers.approvals",
    "engine.handlers.triggers",
    "engine.handlers.datasets",
)


def load_area_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in AREA_MODULES]


def build_registry() -> HandlerRegistry:
    return HandlerRegistry.from_modules(load_area_modules())
