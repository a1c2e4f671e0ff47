"""A node config without placeholders is prepared once per loaded module (engine/runtime/loader.py
`plain_config`), and every run still gets its own copy and its own refusal."""

from __future__ import annotations

import pytest

from engine.components.catalog import ComponentCatalog
from engine.components.properties import PropertyError
from engine.runtime.loader import ModuleLoader
from engine.runtime.payload import encode


@pytest.fixture
def loader() -> ModuleLoader:
    catalog = ComponentCatalog(None)
    catalog.scan()
    return ModuleLoader(catalog)


def test_each_run_gets_a_fresh_copy_of_the_prepared_config(loader: ModuleLoader) -> None:
    module = loader.load("set_data")
    config_json = encode({"data": '{"nested": {"n": 1}, "list": [1, 2]}'})[0]
    first = module.plain_config(config_json)
    assert first == {"data": {"nested": {"n": 1}, "list": [1, 2]}}  # the JSON text parsed
    first["data"]["nested"]["n"] = 99  # a module changing what it was given
    first["data"]["list"].append(3)
    second = module.plain_config(config_json)
    assert second == {"data": {"nested": {"n": 1}, "list": [1, 2]}}
    assert second["data"] is not first["data"]
    assert list(module.plain_configs) == [config_json]


def test_a_refused_config_is_refused_every_time_and_not_kept(loader: ModuleLoader) -> None:
    module = loader.load("delay")
    config_json = encode({"seconds": "soon"})[0]
    for _ in range(2):
        with pytest.raises(PropertyError, match="must be a number, not 'soon'"):
            module.plain_config(config_json)
    assert module.plain_configs == {}


def test_the_prepared_configs_are_bounded(loader: ModuleLoader, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.runtime import loader as loader_module
    monkeypatch.setattr(loader_module, "PLAIN_CONFIGS_KEPT", 3)
    module = loader.load("delay")
    for n in range(10):
        assert module.plain_config(encode({"seconds": str(n)})[0]) == {"seconds": float(n)}
        assert len(module.plain_configs) <= 3
