"""Engine configuration: defaults < config file in the data folder < environment < command line.

One dataclass describes every option once; the CLI, the environment variables and the config
file are all derived from that table, so they cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import platformdirs

from engine.auth.frame_auth import ADDRESS_RE
from engine.storage_files import atomic_write_text

APP_NAME = "flowork"
CONFIG_FILE = "config.json"
ENGINE_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_ORIGINS = ("https://flowork.cloud", "https://*.flowork.cloud")


class ConfigError(ValueError):
    """An option has a value the engine cannot use; the text is one sentence for the user."""


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True)
class EngineConfig:
    host: str = "127.0.0.1"
    port: int = 12345
    engine_id: str = ""
    data_dir: Path = field(default_factory=default_data_dir)
    log_dir: Path | None = None
    owners: tuple[str, ...] = ()
    roots: tuple[Path, ...] = ()
    status_interval: float = 10.0
    origins: tuple[str, ...] = DEFAULT_ORIGINS
    freshness_s: float = 300.0
    max_frame_bytes: int = 4 * 1024 * 1024
    max_connections: int = 256
    outbox_limit: int = 1024
    max_node_runs: int = 10_000
    approval_timeout_s: float = 3600.0
    auth_timeout_s: float = 30.0  # a connection with no valid signed frame by then is closed
    # New connections read per second, engine-wide, after a first burst (engine/server/admission.py)
    handshakes_per_s: float = 100.0
    handshake_burst: int = 100
    log_level: str = "INFO"  # the engine log's level; job log lines are at DEBUG
    # Folders never reachable through a share besides the engine's own (the desktop app adds
    # its config folder); set in code, not an option.
    protected: tuple[Path, ...] = ()
    pairing_timeout_s: float = 60.0  # how long a pairing question waits for the user
    pairing_cooldown_s: float = 600.0  # a denied address is not asked about again before this
    webhooks: bool = True         # the webhook HTTP server of the automations (engine/triggers)
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 12346
    webhook_max_body: int = 1024 * 1024
    # Durable jobs: checkpoints at node boundaries (off only to measure what they cost); a job
    # that only waits (an approval, a delay, a pause) this long is released from memory; a
    # graceful stop lets running nodes finish this long before it checkpoints and exits.
    checkpoints: bool = True
    suspend_after_s: float = 65.0
    stop_grace_s: float = 5.0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}/?engineId={self.engine_id}"

    def resolved_log_dir(self) -> Path:
        return self.log_dir or default_log_dir()


# name -> (environment variable, parser). The config-file key equals the field name.
def _parse_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    if isinstance(value, (list, tuple)):
        return tuple(str(p).strip() for p in value if str(p).strip())
    raise ConfigError(f"expected a list or comma-separated text, got {value!r}")


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"expected a whole number, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"expected a whole number, got {value!r}") from None


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise ConfigError(f"expected true or false, got {value!r}")


def _parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"expected a number, got {value!r}") from None


OPTIONS: dict[str, tuple[str, Any]] = {
    "host": ("FLOWORK_HOST", str),
    "port": ("FLOWORK_PORT", _parse_int),
    "engine_id": ("FLOWORK_ENGINE_ID", str),
    "data_dir": ("FLOWORK_DATA_DIR", Path),
    "log_dir": ("FLOWORK_LOG_DIR", Path),
    "owners": ("FLOWORK_OWNERS", _parse_list),
    "roots": ("FLOWORK_ROOTS", lambda v: tuple(Path(p).expanduser() for p in _parse_list_paths(v))),
    "status_interval": ("FLOWORK_STATUS_INTERVAL", _parse_float),
    "origins": ("FLOWORK_ORIGINS", _parse_list),
    "freshness_s": ("FLOWORK_FRESHNESS_S", _parse_float),
    "max_frame_bytes": ("FLOWORK_MAX_FRAME_BYTES", _parse_int),
    "max_connections": ("FLOWORK_MAX_CONNECTIONS", _parse_int),
    "outbox_limit": ("FLOWORK_OUTBOX_LIMIT", _parse_int),
    "max_node_runs": ("FLOWORK_MAX_NODE_RUNS", _parse_int),
    "approval_timeout_s": ("FLOWORK_APPROVAL_TIMEOUT_S", _parse_float),
    "auth_timeout_s": ("FLOWORK_AUTH_TIMEOUT_S", _parse_float),
    "handshakes_per_s": ("FLOWORK_HANDSHAKES_PER_S", _parse_float),
    "handshake_burst": ("FLOWORK_HANDSHAKE_BURST", _parse_int),
    "log_level": ("FLOWORK_LOG_LEVEL", lambda v: str(v).strip().upper()),
    "pairing_timeout_s": ("FLOWORK_PAIRING_TIMEOUT_S", _parse_float),
    "pairing_cooldown_s": ("FLOWORK_PAIRING_COOLDOWN_S", _parse_float),
    "webhooks": ("FLOWORK_WEBHOOKS", _parse_bool),
    "webhook_host": ("FLOWORK_WEBHOOK_HOST", str),
    "webhook_port": ("FLOWORK_WEBHOOK_PORT", _parse_int),
    "webhook_max_body": ("FLOWORK_WEBHOOK_MAX_BODY", _parse_int),
    "checkpoints": ("FLOWORK_CHECKPOINTS", _parse_bool),
    "suspend_after_s": ("FLOWORK_SUSPEND_AFTER_S", _parse_float),
    "stop_grace_s": ("FLOWORK_STOP_GRACE_S", _parse_float),
}


def _parse_list_paths(value: Any) -> tuple[str, ...]:
    # Paths are separated by the OS path separator in the environment, like PATH.
    if isinstance(value, str):
        return tuple(p for p in value.split(os.pathsep) if p.strip())
    return _parse_list(value)


def _coerce(name: str, value: Any) -> Any:
    parser = OPTIONS[name][1]
    try:
        return parser(value)
    except ConfigError as exc:
        raise ConfigError(f"Option '{name}': {exc}.") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Option '{name}' has an unusable value {value!r}: {exc}.") from None


def validate(config: EngineConfig) -> EngineConfig:
    """Check values that parse but make no sense; normalize lists."""
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"The port must be between 0 and 65535, not {config.port}.")
    if not 0 <= config.webhook_port <= 65535:
        raise ConfigError(f"The webhook port must be between 0 and 65535, not {config.webhook_port}.")
    if config.webhooks and config.port and config.webhook_port == config.port and config.host == config.webhook_host:
        raise ConfigError(f"The webhook port {config.webhook_port} is the engine's own port; "
                          f"choose another with --webhook-port.")
    if config.engine_id and not ENGINE_ID_RE.match(config.engine_id):
        raise ConfigError("The engine ID may only hold letters, digits and . _ : - (at most 128).")
    for owner in config.owners:
        if not ADDRESS_RE.match(owner):
            raise ConfigError(f"The owner address {owner!r} is not a 0x-prefixed 40-digit hex address.")
    if config.status_interval <= 0:
        raise ConfigError("The status interval must be a positive number of seconds.")
    if not config.suspend_after_s > 0 or not config.stop_grace_s >= 0:
        raise ConfigError("suspend_after_s must be a positive number of seconds and stop_grace_s "
                          "zero or more.")
    if config.freshness_s <= 0:
        raise ConfigError("The freshness window must be a positive number of seconds.")
    if config.auth_timeout_s <= 0:
        raise ConfigError("The sign-in timeout (auth_timeout_s) must be a positive number of seconds.")
    if config.pairing_timeout_s <= 0 or config.pairing_cooldown_s < 0:
        raise ConfigError("The pairing timeout must be positive and the pairing cool-down not negative.")
    if not config.handshakes_per_s > 0:
        raise ConfigError("handshakes_per_s must be a positive number of connections per second.")
    for name in ("max_frame_bytes", "max_connections", "outbox_limit", "max_node_runs",
                 "webhook_max_body", "handshake_burst"):
        if getattr(config, name) < 1:
            raise ConfigError(f"Option '{name}' must be at least 1.")
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(f"The log level must be one of {', '.join(LOG_LEVELS)}, not {config.log_level!r}.")
    roots = []
    for root in config.roots:
        if not root.is_dir():
            raise ConfigError(f"The shared folder {str(root)!r} does not exist or is not a folder.")
        roots.append(root.resolve())
    return replace(config, roots=tuple(dict.fromkeys(roots)),
                   owners=tuple(dict.fromkeys(config.owners)))


def read_config_file(data_dir: Path) -> dict[str, Any]:
    path = data_dir / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except NotADirectoryError:
        raise ConfigError(f"The data folder {data_dir} is not usable: something in that path is a "
                          f"file, not a folder; choose another with --data-dir.") from None
    except OSError as exc:
        raise ConfigError(f"The config file {path} cannot be read: {exc.strerror}.") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"The config file {path} is not valid JSON ({exc}); fix or delete it.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"The config file {path} must hold a JSON object.")
    unknown = sorted(set(data) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"The config file {path} has unknown options: {', '.join(unknown)}.")
    return data


def write_config_value(data_dir: Path, key: str, value: Any) -> None:
    """Persist one option in the data folder's config file (atomically)."""
    data = read_config_file(data_dir)
    data[key] = value
    atomic_write_text(data_dir / CONFIG_FILE, json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_config(cli: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> EngineConfig:
    """Merge the layers. `cli` holds only options given on the command line."""
    cli = dict(cli or {})
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    env_values = {name: environ[var] for name, (var, _) in OPTIONS.items() if environ.get(var)}
    data_dir_raw = cli.get("data_dir") or env_values.get("data_dir")
    data_dir = Path(data_dir_raw).expanduser() if data_dir_raw else default_data_dir()
    for layer in (read_config_file(data_dir), env_values, cli):
        for name, value in layer.items():
            values[name] = _coerce(name, value)
    values["data_dir"] = data_dir
    known = {f.name for f in fields(EngineConfig)}
    return validate(EngineConfig(**{k: v for k, v in values.items() if k in known}))


def ensure_engine_id(config: EngineConfig) -> EngineConfig:
    """Give a config without an engine ID the one kept in the data folder, made once."""
    if config.engine_id:
        return config
    stored = read_config_file(config.data_dir).get("engine_id")
    if isinstance(stored, str) and ENGINE_ID_RE.match(stored):
        return replace(config, engine_id=stored)
    engine_id = new_engine_id()
    write_config_value(config.data_dir, "engine_id", engine_id)
    return replace(config, engine_id=engine_id)


def new_engine_id() -> str:
    return "flowork-" + secrets.token_hex(16)
