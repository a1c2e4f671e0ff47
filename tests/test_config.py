"""Option layering (command line > FLOWORK_* environment > config.json > defaults), validation
with one readable sentence per problem, and the engine ID made once and kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import parse_config
from engine.config import (CONFIG_FILE, ConfigError, EngineConfig, ensure_engine_id, load_config,
                           read_config_file)

A1 = "0x" + "a1" * 20
A2 = "0x" + "b2" * 20
A3 = "0x" + "c3" * 20


def write_config(data_dir: Path, data: object) -> None:
    (data_dir / CONFIG_FILE).write_text(json.dumps(data), encoding="utf-8")


def test_defaults_without_any_layer(data_dir: Path) -> None:
    config = load_config({"data_dir": str(data_dir)}, environ={})
    assert (config.host, config.port, config.status_interval) == ("127.0.0.1", 12345, 10.0)
    assert config.owners == () and config.roots == () and config.engine_id == ""
    assert "https://flowork.cloud" in config.origins


def test_command_line_beats_environment_beats_config_file(data_dir: Path, tmp_path: Path) -> None:
    r1, r2 = tmp_path / "r1", tmp_path / "r2"
    r1.mkdir(), r2.mkdir()
    write_config(data_dir, {"port": 1111, "host": "0.0.0.0", "owners": [A1], "status_interval": 3,
                            "engine_id": "from-file", "roots": [str(r1)]})
    env = {"FLOWORK_DATA_DIR": str(data_dir), "FLOWORK_PORT": "2222", "FLOWORK_OWNERS": f"{A2}, {A3}",
           "FLOWORK_ROOTS": str(r2), "FLOWORK_HOST": ""}
    config = load_config({"port": "3333"}, environ=env)
    assert config.port == 3333                      # command line
    assert config.owners == (A2, A3)                # environment, comma-separated
    assert config.roots == (r2.resolve(),)          # environment
    assert config.host == "0.0.0.0"                 # empty variables do not count
    assert (config.status_interval, config.engine_id) == (3.0, "from-file")  # config file
    assert config.data_dir == data_dir


def test_cli_parser_accepts_repetition_and_commas(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWORK_OWNERS", A3)
    config, save = parse_config(["--data-dir", str(data_dir), "--owner", A1, "--owner", f"{A2},{A1}",
                                 "--port", "0", "--engine-id", "my.engine:1", "--save-owners"])
    assert config.owners == (A1, A2) and config.port == 0 and config.engine_id == "my.engine:1"
    assert save is True


@pytest.mark.parametrize(("layer", "value", "fragment"), [
    ("cli", {"port": "abc"}, "Option 'port': expected a whole number"),
    ("cli", {"port": "70000"}, "The port must be between 0 and 65535"),
    ("env", {"FLOWORK_PORT": "-1"}, "The port must be between 0 and 65535"),
    ("cli", {"owners": ["0x1234"]}, "is not a 0x-prefixed 40-digit hex address"),
    ("cli", {"engine_id": "bad id/../"}, "The engine ID may only hold"),
    ("cli", {"status_interval": "0"}, "status interval must be a positive"),
    ("cli", {"status_interval": "soon"}, "Option 'status_interval': expected a number"),
    ("cli", {"roots": ["/definitely/not/here"]}, "does not exist or is not a folder"),
    ("file", {"prot": 1}, "unknown options: prot"),
    ("file", [1, 2], "must hold a JSON object"),
    ("file", {"max_connections": 0}, "'max_connections' must be at least 1"),
    ("env", {"FLOWORK_HANDSHAKES_PER_S": "0"}, "handshakes_per_s must be a positive number"),
    ("env", {"FLOWORK_HANDSHAKES_PER_S": "nan"}, "handshakes_per_s must be a positive number"),
    ("file", {"handshake_burst": 0}, "'handshake_burst' must be at least 1"),
    ("file", {"port": True}, "expected a whole number"),
])
def test_malformed_options_give_one_readable_sentence(data_dir: Path, layer: str, value: object,
                                                      fragment: str) -> None:
    cli: dict[str, object] = {"data_dir": str(data_dir)}
    env: dict[str, str] = {}
    if layer == "cli":
        cli.update(value)  # type: ignore[arg-type]
    elif layer == "env":
        env.update(value)  # type: ignore[arg-type]
    else:
        write_config(data_dir, value)
    with pytest.raises(ConfigError) as info:
        load_config(cli, environ=env)
    text = str(info.value)
    assert fragment in text and text.endswith(".") and "\n" not in text


def test_a_config_file_that_is_not_json_says_so(data_dir: Path) -> None:
    (data_dir / CONFIG_FILE).write_text("{port: 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_config({"data_dir": str(data_dir)}, environ={})


def test_engine_id_is_generated_once_and_kept(data_dir: Path) -> None:
    first = ensure_engine_id(EngineConfig(data_dir=data_dir))
    assert first.engine_id.startswith("flowork-")
    again = ensure_engine_id(load_config({"data_dir": str(data_dir)}, environ={}))
    assert again.engine_id == first.engine_id
    assert read_config_file(data_dir)["engine_id"] == first.engine_id
    given = ensure_engine_id(EngineConfig(data_dir=data_dir, engine_id="explicit"))
    assert given.engine_id == "explicit"
    assert read_config_file(data_dir)["engine_id"] == first.engine_id  # not overwritten


def test_url_brackets_ipv6_hosts() -> None:
    assert EngineConfig(host="::1", port=5, engine_id="e").url == "ws://[::1]:5/?engineId=e"
