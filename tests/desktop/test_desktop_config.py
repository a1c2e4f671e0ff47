"""Engine ID, tunnel settings and the secrets key: in the OS keyring, or 0600 files (and the
tray says so) when there is no usable keyring; the settings file survives damage."""

from __future__ import annotations

import json
import os
import stat

import keyring
import pytest
from keyring.backends import fail

from desktop.config import DesktopConfig, SecretStore
from engine.client import EngineClient
from engine.config import write_config_value
from engine.store.secret_key import KEYRING_SERVICE


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def no_keyring():
    keyring.set_keyring(fail.Keyring())


def test_engine_id_is_made_once_and_kept_in_the_keyring(tmp_path, data_dir, memory_keyring):
    config = DesktopConfig(folder=tmp_path / "cfg", data_dir=data_dir)
    first = config.engine_id()
    assert first.startswith("flowork-")
    assert memory_keyring.entries[(KEYRING_SERVICE, "engine_id")] == first
    assert DesktopConfig(folder=tmp_path / "cfg", data_dir=data_dir).engine_id() == first
    assert not (tmp_path / "cfg" / "secrets.json").exists()
    assert config.secrets.location == "keyring"


def test_a_headless_engines_id_is_taken_over(tmp_path, data_dir):
    write_config_value(data_dir, "engine_id", "my-old-engine")
    assert DesktopConfig(folder=tmp_path / "cfg", data_dir=data_dir).engine_id() == "my-old-engine"


def test_without_a_keyring_the_secrets_go_to_0600_files(tmp_path, data_dir, no_keyring):
    config = DesktopConfig(folder=tmp_path / "cfg", data_dir=data_dir)
    assert config.secrets.location == "file"
    engine_id = config.engine_id()
    config.secrets.set("tunnel_token", "tok-123")
    path = tmp_path / "cfg" / "secrets.json"
    assert mode(path) == 0o600
    assert json.loads(path.read_text()) == {"engine_id": engine_id, "tunnel_token": "tok-123"}
    config.secrets.set("tunnel_token", None)
    assert "tunnel_token" not in json.loads(path.read_text())


def test_values_kept_in_the_file_move_into_a_keyring_that_appears(tmp_path, memory_keyring):
    path = tmp_path / "secrets.json"
    SecretStore(path, use_keyring=False).set("tunnel_hostname", "engine.example.com")
    store = SecretStore(path)
    assert store.get("tunnel_hostname") == "engine.example.com"
    assert memory_keyring.entries[(KEYRING_SERVICE, "tunnel_hostname")] == "engine.example.com"
    assert json.loads(path.read_text()) == {}


def test_a_damaged_settings_file_is_set_aside_not_lost(tmp_path, data_dir):
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "desktop.json").write_text('{"port": "twelve"')
    config = DesktopConfig(folder=folder, data_dir=data_dir)
    assert config.settings.port == 12345
    aside = list(folder.glob("desktop.json.broken-*"))
    assert len(aside) == 1 and aside[0].read_text() == '{"port": "twelve"'


async def test_tray_says_when_no_keyring_is_usable(make_app, no_keyring, desktop_config, owner):
    desktop_config.secrets.use_keyring = False
    desktop_config.update(owners=(owner.address,))
    app = await make_app()
    assert app.key_source.location == "file"
    key_file = desktop_config.data_dir / "secrets.key"
    assert mode(key_file) == 0o600
    note = "No usable OS keyring: keys are kept in files only you can read."
    assert note in app.tray.icon.toolTip()
    assert note in app.status_window.details_text()
    app.menu.settings.trigger()
    assert "readable only by you" in app.settings_dialog.secrets_note.text()
    # secret variables still work (encrypted with the file's key)
    async with await EngineClient.connect(app.engine.url, owner.key) as client:
        await client.request("update_variable", name="API_KEY",
                             data={"value": "s3cret", "is_secret": True, "is_enabled": True, "mode": "single"})
        listed = await client.request("request_variables")
        assert "s3cret" not in json.dumps(listed)


async def test_with_a_keyring_the_tray_has_no_warning(make_app, memory_keyring):
    app = await make_app()
    assert app.key_source.location == "keyring"
    assert "keyring" not in app.tray.icon.toolTip().lower()
    assert any(k[1].startswith("secrets-key:") for k in memory_keyring.entries)
    assert not os.path.exists(app.config.data_dir / "secrets.key")


def test_the_key_file_is_named_only_once_it_holds_the_key(tmp_path, no_keyring, caplog):
    """An unusable data folder: the log says the key could not be kept, never 'kept in'."""
    import logging

    import pytest

    from engine.store.secret_key import load_or_create_key
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    caplog.set_level(logging.INFO)
    with pytest.raises(OSError):
        load_or_create_key(blocker / "data")
    assert "is kept in" not in caplog.text
    source = load_or_create_key(tmp_path / "data")
    assert source.location == "file" and "is kept in" in caplog.text
