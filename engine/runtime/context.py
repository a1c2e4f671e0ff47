"""Moved: the module API lives in engine/components/api.py (decision D4). This name stays so
that components written against it keep working."""

from engine.components.api import JobCancelled, ModuleError, NodeContext, NodeHost  # noqa: F401

__all__ = ["JobCancelled", "ModuleError", "NodeContext", "NodeHost"]
