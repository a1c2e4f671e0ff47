"""The workflow graph the GUI sends, parsed and checked before anything runs.

Accepts both connection spellings in use: `source/target` with `source_port_name/
target_port_name` (current GUI) and `from/to` with `sourceHandle/targetHandle` (older presets).
Every problem is an EngineError naming the field, so the GUI shows what to fix.
"""

from __future__ import annotations

import math
import sys
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from engine.protocol.errors import EngineError
from engine.runtime.payload import PayloadNotJSON, decode, encode
from engine.protocol.workflow import workflow_parts

MAX_ITERATIONS = 100_000
DEFAULT_PORT_NAMES = ("", "output", "default")
ERROR_PORT = "error"


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    name: str
    module_id: str
    config_json: bytes   # compact JSON: a job waiting for hours keeps bytes, not a tree of dicts
    # [module, its prepared config as compact JSON] once prepared (LoadedModule.plain_config):
    # the graph is shared by every run of the workflow, so a config is prepared once per graph.
    prepared: list[Any] = field(default_factory=list, compare=False, repr=False)

    @property
    def config(self) -> dict[str, Any]:
        """The node's config_values as sent, a fresh copy on every read."""
        return decode(self.config_json)


@dataclass(frozen=True, slots=True)
class Edge:
    id: str
    source: str
    target: str
    source_port: str   # "" when unnamed
    target_port: str


@dataclass(frozen=True)
class LoopConfig:
    iterations: int = 1
    delay_type: str | None = None       # None, "static" or "random_range"
    delay_static: float = 0.0
    delay_min: float = 0.0
    delay_max: float = 0.0


@dataclass
class Graph:
    nodes: dict[str, Node]
    edges: list[Edge]
    loop: LoopConfig = field(default_factory=LoopConfig)
    timeout_s: float | None = None
    outgoing: dict[str, list[Edge]] = field(default_factory=dict)
    incoming: dict[str, list[Edge]] = field(default_factory=dict)
    _ports: dict[tuple[str, str | None], list[Edge]] = field(default_factory=dict, repr=False)
    # No node has more than one outgoing connection: a branch never forks (the scheduler then
    # runs a single start's branch in the job's own task instead of a task of its own).
    chain: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        outgoing: dict[str, list[Edge]] = {}
        incoming: dict[str, list[Edge]] = {}
        for edge in self.edges:
            outgoing.setdefault(edge.source, []).append(edge)
            incoming.setdefault(edge.target, []).append(edge)
        # Tuples: they never change, and a job keeps its graph for as long as it runs.
        self.outgoing = {k: tuple(v) for k, v in outgoing.items()}  # type: ignore[misc]
        self.incoming = {k: tuple(v) for k, v in incoming.items()}  # type: ignore[misc]
        self.chain = all(len(v) <= 1 for v in outgoing.values())

    def start_nodes(self, start_node_id: str | None = None) -> list[Node]:
        """The named node, else every node that no connection targets, in the GUI's order."""
        if start_node_id:
            if start_node_id not in self.nodes:
                raise EngineError.invalid("start_node_id", f"names no node of this workflow ({start_node_id!r})")
            return [self.nodes[start_node_id]]
        starts = [n for n in self.nodes.values() if not self.incoming.get(n.id)]
        if not starts and self.nodes:
            raise EngineError.invalid("workflow_data", "has no start node: every node is the "
                                      "target of a connection; pick one with start_node_id")
        return starts

    def edges_from(self, node_id: str, port: str | None) -> list[Edge]:
        """Edges leaving through `port` (case-insensitive); with no port, or the default port
        named, the unnamed and `output` ones. (Asked once per node run: remembered.)"""
        key = (node_id, port)
        found = self._ports.get(key)
        if found is None:
            found = self._ports[key] = self._edges_from(node_id, port)
        return found

    def _edges_from(self, node_id: str, port: str | None) -> list[Edge]:
        edges = self.outgoing.get(node_id, ())
        wanted = (port or "").lower()
        if wanted in DEFAULT_PORT_NAMES:
            return [e for e in edges if e.source_port.lower() in DEFAULT_PORT_NAMES]
        return [e for e in edges if e.source_port.lower() == wanted]

    def module_ids(self) -> set[str]:
        return {n.module_id for n in self.nodes.values()}


def _text(value: Any, where: str, *, required: bool = True, max_len: int = 256) -> str:
    if value is None or value == "":
        if required:
            raise EngineError.invalid(where, "is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise EngineError.invalid(where, "must be a string")
    text = str(value)
    if len(text) > max_len:
        raise EngineError.invalid(where, f"is longer than {max_len} characters")
    return text


def parse_workflow(data: Any, field_name: str = "workflow_data") -> Graph:
    raw_nodes, raw_edges = workflow_parts(data, field_name)
    nodes: dict[str, Node] = {}
    for index, raw in enumerate(raw_nodes):
        where = f"{field_name}.nodes[{index}]"
        node_id = _text(raw.get("id"), f"{where}.id")
        if node_id in nodes:
            raise EngineError.invalid(f"{where}.id", f"repeats the node id {node_id!r}")
        module_id = _text(raw.get("module_id"), f"{where}.module_id", max_len=64)
        config = raw.get("config_values")
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise EngineError.invalid(f"{where}.config_values", "must be an object")
        name = _text(raw.get("name"), f"{where}.name", required=False) or module_id
        # Interned: the same ids and names recur in every run of a workflow.
        nodes[node_id] = Node(sys.intern(node_id), sys.intern(name), sys.intern(module_id),
                              encode(config)[0])
    edges: list[Edge] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_edges):
        where = f"{field_name}.connections[{index}]"
        source = _text(raw.get("source", raw.get("from")), f"{where}.source")
        target = _text(raw.get("target", raw.get("to")), f"{where}.target")
        for end, node_id in (("source", source), ("target", target)):
            if node_id not in nodes:
                raise EngineError.invalid(f"{where}.{end}", f"names no node of this workflow ({node_id!r})")
        edge_id = _text(raw.get("id"), f"{where}.id", required=False) or f"{source}->{target}#{index}"
        if edge_id in seen:
            raise EngineError.invalid(f"{where}.id", f"repeats the connection id {edge_id!r}")
        seen.add(edge_id)
        source_port = _text(raw.get("source_port_name", raw.get("sourceHandle")),
                            f"{where}.source_port_name", required=False)
        target_port = _text(raw.get("target_port_name", raw.get("targetHandle")),
                            f"{where}.target_port_name", required=False)
        edges.append(Edge(sys.intern(edge_id), nodes[source].id, nodes[target].id,
                          sys.intern(source_port), sys.intern(target_port)))
    return Graph(nodes, edges, parse_loop_config(data.get("global_loop_config"), field_name),
                 _timeout(data.get("timeout_s"), f"{field_name}.timeout_s"))


class GraphCache:
    """Parsed workflows by their compact JSON text. A workflow that runs again (Run pressed
    twice, a trigger's preset, a thousand jobs of one workflow) shares one Graph: it is not
    parsed again, and its jobs keep one copy of it (about 3.5 KiB for ten nodes) instead of one
    each. A Graph never changes once built, so sharing it is safe. Graphs in use are found
    through weak references; the last few stay alive between runs."""

    KEEP = 8                       # recent graphs kept alive with no job using them
    KEEP_MAX_TEXT = 256 * 1024     # larger workflows are shared only while in use

    def __init__(self) -> None:
        self._live: weakref.WeakValueDictionary[bytes, Graph] = weakref.WeakValueDictionary()
        self._recent: OrderedDict[bytes, Graph] = OrderedDict()

    def parse(self, data: Any, field_name: str = "workflow_data") -> tuple[Graph, bytes]:
        """(the graph, the workflow's compact JSON text); EngineError as `parse_workflow`."""
        try:
            text, lossy = encode(data)
        except PayloadNotJSON:
            raise EngineError.invalid(field_name, "must be JSON") from None
        if lossy:  # written with str() stand-ins: the text does not identify the workflow
            return parse_workflow(data, field_name), text
        graph = self._live.get(text)
        if graph is None:
            graph = parse_workflow(data, field_name)
            self._live[text] = graph
        if len(text) <= self.KEEP_MAX_TEXT:
            self._recent[text] = graph
            self._recent.move_to_end(text)
            while len(self._recent) > self.KEEP:
                self._recent.popitem(last=False)
        return graph, text


def _number(value: Any, where: str, *, minimum: float = 0.0) -> float:
    if value is None or value == "":
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EngineError.invalid(where, "must be a number") from None
    if isinstance(value, bool) or math.isnan(number) or math.isinf(number) or number < minimum:
        raise EngineError.invalid(where, f"must be a number of at least {minimum:g}")
    return number


def _timeout(value: Any, where: str) -> float | None:
    number = _number(value, where)
    return number or None


def parse_loop_config(raw: Any, field_name: str = "workflow_data") -> LoopConfig:
    where = f"{field_name}.global_loop_config"
    if not raw:
        return LoopConfig()
    if not isinstance(raw, dict):
        raise EngineError.invalid(where, "must be an object")
    if not raw.get("isEnabled"):
        return LoopConfig()
    iterations = int(_number(raw.get("iterations", 1), f"{where}.iterations", minimum=1))
    if iterations > MAX_ITERATIONS:
        raise EngineError.invalid(f"{where}.iterations", f"must be at most {MAX_ITERATIONS}")
    delay_type = None
    if raw.get("isDelayEnabled"):
        delay_type = raw.get("delayType") or "static"
        if delay_type not in ("static", "random_range"):
            raise EngineError.invalid(f"{where}.delayType", "must be 'static' or 'random_range'")
    low = _number(raw.get("delayRandomMin"), f"{where}.delayRandomMin")
    high = _number(raw.get("delayRandomMax"), f"{where}.delayRandomMax")
    if delay_type == "random_range" and high < low:
        raise EngineError.invalid(f"{where}.delayRandomMax", "must not be smaller than delayRandomMin")
    return LoopConfig(iterations, delay_type, _number(raw.get("delayStatic"), f"{where}.delayStatic"),
                      low, high)
