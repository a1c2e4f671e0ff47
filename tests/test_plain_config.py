"""A node config without placeholders is prepared once and kept on the graph's node
(engine/runtime/loader.py `plain_config`); every run still gets its own copy and its own refusal."""

from __future__ import annotations

import pytest

from engine.components.catalog import ComponentCatalog
from engine.components.properties import PropertyError
from engine.runtime.graph import Node
from engine.runtime.loader import ModuleLoader
from engine.runtime.payload import encode


@pytest.fixture
def loader() -> ModuleLoader:
    catalog = ComponentCatalog(None)
    catalog.scan()
    return ModuleLoader(catalog)


def a_node(module_id: str, config: dict) -> Node:
    return Node("n", "n", module_id, encode(config)[0])


def test_each_run_gets_a_fresh_copy_of_the_prepared_config(loader: ModuleLoader) -> None:
    module = loader.load("set_data")
    node = a_node("set_data", {"data": '{"nested": {"n": 1}, "list": [1, 2]}'})
    for _ in range(3):
        config = module.plain_config(node)
        assert config == {"data": {"nested": {"n": 1}, "list": [1, 2]}}  # the JSON text parsed
        config["data"]["nested"]["n"] = 99  # a module changing what it was given
        config["data"]["list"].append(3)
    assert node.prepared[0] is module


def test_a_refused_config_is_refused_every_time_and_not_kept(loader: ModuleLoader) -> None:
    module = loader.load("delay")
    node = a_node("delay", {"seconds": "soon"})
    for _ in range(2):
        with pytest.raises(PropertyError, match="must be a number, not 'soon'"):
            module.plain_config(node)
    assert node.prepared == []


def test_another_load_of_the_module_prepares_the_config_again(loader: ModuleLoader) -> None:
    """A module whose files changed is a new LoadedModule, perhaps with other properties: what
    the old one prepared is not used for it."""
    module = loader.load("delay")
    node = a_node("delay", {"seconds": "2"})
    assert module.plain_config(node) == {"seconds": 2.0}
    other = ModuleLoader._import(module.component)
    assert other is not module
    assert other.plain_config(node) == {"seconds": 2.0}
    assert node.prepared[0] is other
