"""The key that encrypts secret variables at rest: in the OS keyring, or a 0600 file.

A keyring that cannot really keep secrets (the "fail" backend, or a plaintext one from
keyrings.alt) is treated as missing: the key then lives in a file only the user can read, and
the log says so. The desktop app reads `KeySource.location` to tell the user.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import keyring
import keyring.errors
from cryptography.fernet import Fernet

from engine.storage_files import atomic_write_bytes

log = logging.getLogger(__name__)

KEYRING_SERVICE = "flowork-desktop"
KEY_FILE = "secrets.key"


@dataclass(frozen=True)
class KeySource:
    key: bytes
    location: str  # "keyring" or "file"
    detail: str


def keyring_usable() -> bool:
    """True when the active keyring backend really stores secrets outside plain files."""
    try:
        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a broken keyring configuration means "not usable"
        return False
    name = f"{type(backend).__module__}.{type(backend).__name__}".lower()
    if "fail" in name or "plaintext" in name or "null" in name:
        return False
    try:
        priority = backend.priority  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        return False
    return bool(priority and priority > 0)


def _account_for(data_dir: Path) -> str:
    # One key per data folder, so two engines with different folders never share secrets.
    digest = hashlib.sha256(str(data_dir.resolve()).encode("utf-8")).hexdigest()[:16]
    return f"secrets-key:{digest}"


def load_or_create_key(data_dir: Path) -> KeySource:
    """Find the data folder's key (keyring first), creating it on first use."""
    account = _account_for(data_dir)
    key_file = data_dir / KEY_FILE
    if keyring_usable():
        try:
            stored = keyring.get_password(KEYRING_SERVICE, account)
            if stored is None and key_file.exists():
                stored = _read_key_file(key_file).decode("ascii")  # migrate a fallback key
                keyring.set_password(KEYRING_SERVICE, account, stored)
            if stored is None:
                stored = Fernet.generate_key().decode("ascii")
                keyring.set_password(KEYRING_SERVICE, account, stored)
            Fernet(stored.encode("ascii"))  # refuse a damaged entry loudly
            return KeySource(stored.encode("ascii"), "keyring",
                             f"OS keyring ({type(keyring.get_keyring()).__name__})")
        except (keyring.errors.KeyringError, ValueError) as exc:
            why = f"the OS keyring failed ({exc})"
    else:
        why = "no usable OS keyring"
    if key_file.exists():
        key = _read_key_file(key_file)
    else:
        key = Fernet.generate_key()
        atomic_write_bytes(key_file, key, mode=0o600)
    # Said only once the file really holds the key: a folder that cannot be read or written
    # raises above, and the caller reports that instead.
    log.warning("%s; the secrets key is kept in %s, readable only by you", why, key_file)
    return KeySource(key, "file", str(key_file))


def _read_key_file(path: Path) -> bytes:
    if os.name == "posix":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("the secrets key file %s was readable by others; restricting it to 0600", path)
            os.chmod(path, 0o600)
    key = path.read_bytes().strip()
    Fernet(key)
    return key
