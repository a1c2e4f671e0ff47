"""The outer shape every `workflow_data` must have, whether it is stored (save_preset) or run:
one check, so a preset that saves is a preset the runtime will read."""

from __future__ import annotations

from typing import Any

from engine.protocol.errors import EngineError

MAX_NODES = 10_000
MAX_CONNECTIONS = 50_000


def workflow_parts(data: Any, field_name: str = "workflow_data") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(nodes, connections) of a workflow, checked for shape and size. Older presets call the
    connections `edges`; both are accepted."""
    if not isinstance(data, dict):
        raise EngineError.invalid(field_name, "must be an object with 'nodes' and 'connections'")
    nodes = data.get("nodes")
    connections = data.get("connections")
    if connections is None:
        connections = data.get("edges")
    nodes = [] if nodes is None else nodes
    connections = [] if connections is None else connections
    if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
        raise EngineError.invalid(f"{field_name}.nodes", "must be a list of objects")
    if not isinstance(connections, list) or not all(isinstance(c, dict) for c in connections):
        raise EngineError.invalid(f"{field_name}.connections", "must be a list of objects")
    if len(nodes) > MAX_NODES:
        raise EngineError.invalid(f"{field_name}.nodes", f"has more than {MAX_NODES} nodes")
    if len(connections) > MAX_CONNECTIONS:
        raise EngineError.invalid(f"{field_name}.connections",
                                  f"has more than {MAX_CONNECTIONS} connections")
    return nodes, connections
