"""The desktop app's configuration.

Plain options (port, owners, shared folders, web GUI URL, data folder) live in `desktop.json` in the user's
config folder. The engine ID and the tunnel credentials live in the OS keyring; where there is
no usable keyring they go to `secrets.json` in the same folder, readable only by the user, and
`SecretStore.location` says so (the tray shows it). Never silently a plaintext keyring backend.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keyring
import keyring.errors
import platformdirs

from engine.auth.frame_auth import ADDRESS_RE
from engine.config import ENGINE_ID_RE, new_engine_id, read_config_file, ConfigError
from engine.storage_files import atomic_write_text
from engine.store.secret_key import KEYRING_SERVICE, keyring_usable

log = logging.getLogger(__name__)

APP_NAME = "flowork"
SETTINGS_FILE = "desktop.json"
SECRETS_FILE = "secrets.json"
DEFAULT_PORT = 12345
DEFAULT_GUI_URL = "https://flowork.cloud/"
DEFAULT_WEBHOOK_PORT = 12346
SECRET_NAMES = ("engine_id", "tunnel_token", "tunnel_hostname")


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True)
class DesktopSettings:
    port: int = DEFAULT_PORT
    owners: tuple[str, ...] = ()
    roots: tuple[Path, ...] = ()
    gui_url: str = DEFAULT_GUI_URL
    data_dir: Path | None = None    # chosen in the app; None: the platform's data folder
    webhook_port: int = DEFAULT_WEBHOOK_PORT  # the automations' webhook server (README)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"port": self.port, "owners": list(self.owners),
                                "roots": [str(p) for p in self.roots], "gui_url": self.gui_url,
                                "webhook_port": self.webhook_port}
        if self.data_dir is not None:
            data["data_dir"] = str(self.data_dir)
        return data

    @classmethod
    def from_json(cls, data: Any) -> "DesktopSettings":
        """Validate a parsed file; raises ConfigError with one sentence for the user."""
        if not isinstance(data, dict):
            raise ConfigError("the settings file must hold a JSON object")
        port = data.get("port", DEFAULT_PORT)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"the port must be a number between 0 and 65535, not {port!r}")
        owners = data.get("owners", [])
        if not isinstance(owners, list) or not all(isinstance(o, str) and ADDRESS_RE.match(o) for o in owners):
            raise ConfigError("owners must be a list of 0x-prefixed 40-digit hex addresses")
        roots = data.get("roots", [])
        if not isinstance(roots, list) or not all(isinstance(r, str) and r for r in roots):
            raise ConfigError("roots must be a list of folder paths")
        gui_url = data.get("gui_url", DEFAULT_GUI_URL)
        if not isinstance(gui_url, str) or not gui_url.startswith(("http://", "https://")):
            raise ConfigError(f"the web GUI URL must start with http:// or https://, not {gui_url!r}")
        data_dir = data.get("data_dir")
        if data_dir is not None and (not isinstance(data_dir, str) or not data_dir
                                     or not Path(data_dir).is_absolute()):
            raise ConfigError(f"the data folder must be an absolute path, not {data_dir!r}")
        webhook_port = data.get("webhook_port", DEFAULT_WEBHOOK_PORT)
        if isinstance(webhook_port, bool) or not isinstance(webhook_port, int) or not 0 <= webhook_port <= 65535:
            raise ConfigError(f"the webhook port must be a number between 0 and 65535, not {webhook_port!r}")
        return cls(port=port, owners=tuple(dict.fromkeys(owners)),
                   roots=tuple(dict.fromkeys(Path(r) for r in roots)), gui_url=gui_url,
                   data_dir=Path(data_dir) if data_dir else None, webhook_port=webhook_port)


class SettingsFile:
    """Reads and writes desktop.json atomically; a damaged file is kept aside, never lost."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> DesktopSettings:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return DesktopSettings()
        try:
            return DesktopSettings.from_json(json.loads(text))
        except (ValueError, ConfigError) as exc:
            aside = self.path.with_name(f"{self.path.name}.broken-{int(time.time())}")
            os.replace(self.path, aside)
            log.error("the settings file %s is damaged (%s); it was moved to %s and the defaults "
                      "are used", self.path, exc, aside)
            return DesktopSettings()

    def save(self, settings: DesktopSettings) -> None:
        atomic_write_text(self.path, json.dumps(settings.to_json(), indent=2) + "\n")


@dataclass
class SecretStore:
    """Engine ID and tunnel credentials: the OS keyring, or a 0600 file when there is none."""

    fallback_path: Path
    use_keyring: bool = field(default_factory=keyring_usable)

    @property
    def location(self) -> str:
        """"keyring" or "file"; the tray tells the user when it is "file"."""
        return "keyring" if self.use_keyring else "file"

    def get(self, name: str) -> str | None:
        assert name in SECRET_NAMES, name
        if self.use_keyring:
            try:
                value = keyring.get_password(KEYRING_SERVICE, name)
                if value is None:
                    value = self._read_file().get(name)
                    if value is not None:  # migrate a value kept while no keyring was usable
                        keyring.set_password(KEYRING_SERVICE, name, value)
                        self._write_file({k: v for k, v in self._read_file().items() if k != name})
                return value
            except keyring.errors.KeyringError as exc:
                self._lose_keyring(exc)
        return self._read_file().get(name)

    def set(self, name: str, value: str | None) -> None:
        assert name in SECRET_NAMES, name
        if self.use_keyring:
            try:
                if value is None:
                    try:
                        keyring.delete_password(KEYRING_SERVICE, name)
                    except keyring.errors.PasswordDeleteError:
                        pass
                else:
                    keyring.set_password(KEYRING_SERVICE, name, value)
                return
            except keyring.errors.KeyringError as exc:
                self._lose_keyring(exc)
        data = self._read_file()
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
        self._write_file(data)

    def _lose_keyring(self, exc: Exception) -> None:
        log.warning("the OS keyring failed (%s); keeping the engine ID and tunnel settings in %s, "
                    "readable only by you", exc, self.fallback_path)
        self.use_keyring = False

    def _read_file(self) -> dict[str, str]:
        try:
            if os.name == "posix" and stat.S_IMODE(self.fallback_path.stat().st_mode) & 0o077:
                os.chmod(self.fallback_path, 0o600)
            data = json.loads(self.fallback_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("cannot read %s (%s)", self.fallback_path, exc)
            return {}
        return {k: v for k, v in data.items() if k in SECRET_NAMES and isinstance(v, str)} \
            if isinstance(data, dict) else {}

    def _write_file(self, data: dict[str, str]) -> None:
        from engine.storage_files import atomic_write_bytes
        atomic_write_bytes(self.fallback_path, (json.dumps(data, indent=2) + "\n").encode("utf-8"),
                           mode=0o600)


@dataclass
class DesktopConfig:
    """Everything the app keeps: the settings file, the secrets, and where data and logs go."""

    folder: Path = field(default_factory=config_dir)
    data_dir: Path | None = None
    log_dir: Path | None = None
    settings_file: SettingsFile = field(init=False)
    secrets: SecretStore = field(init=False)
    settings: DesktopSettings = field(init=False)
    _writer: ThreadPoolExecutor | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        from engine.config import default_data_dir, default_log_dir
        self.settings_file = SettingsFile(self.folder / SETTINGS_FILE)
        self.secrets = SecretStore(self.folder / SECRETS_FILE)
        self.settings = self.settings_file.load()
        # --data-dir wins over the folder chosen in the app, which wins over the default
        self.data_dir = self.data_dir or self.settings.data_dir or default_data_dir()
        self.log_dir = self.log_dir or default_log_dir()

    def update(self, **changes: Any) -> DesktopSettings:
        """Change and save settings now (blocking: for start-up and other code off the loop)."""
        self.settings = replace(self.settings, **changes)
        self.settings_file.save(self.settings)
        return self.settings

    async def save(self, **changes: Any) -> DesktopSettings:
        """Change settings at once in memory and write them on the config writer thread.
        One worker thread keeps the writes in the order they were asked for."""
        self.settings = snapshot = replace(self.settings, **changes)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowork-config")
        await asyncio.get_running_loop().run_in_executor(self._writer, self.settings_file.save, snapshot)
        return snapshot

    async def flush(self) -> None:
        """Return once every write asked for so far is on disk."""
        if self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(self._writer, lambda: None)

    def close(self) -> None:
        """Wait for queued writes (at quit)."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    def engine_id(self) -> str:
        """The engine ID, made on first run (or taken over from a headless engine's data folder)."""
        current = self.secrets.get("engine_id")
        if current and ENGINE_ID_RE.match(current):
            return current
        try:
            stored = read_config_file(self.data_dir).get("engine_id")  # type: ignore[arg-type]
        except ConfigError:
            stored = None
        engine_id = stored if isinstance(stored, str) and ENGINE_ID_RE.match(stored) else new_engine_id()
        self.secrets.set("engine_id", engine_id)
        return engine_id

    def regenerate_engine_id(self) -> str:
        engine_id = new_engine_id()
        self.secrets.set("engine_id", engine_id)
        return engine_id
