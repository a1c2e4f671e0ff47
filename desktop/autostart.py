"""Start at login, per user, off until the user turns it on.

Windows: a value under HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run; macOS: a
LaunchAgent plist in ~/Library/LaunchAgents; Linux: an XDG autostart entry. The login start
passes --autostart so the app starts hidden. `is_enabled()` reads the real OS state every time
(the user may have removed the entry from the system's own settings).
"""

from __future__ import annotations

import os
import platform
import plistlib
import sys
from pathlib import Path
from typing import Any

from engine.storage_files import atomic_write_bytes, atomic_write_text

RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "Flowork"
LAUNCH_AGENT_LABEL = "cloud.flowork.desktop"
DESKTOP_FILE = "flowork.desktop"


def login_command() -> list[str]:
    """The command a login start runs: the frozen executable, or this Python with -m desktop."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--autostart"]
    return [sys.executable, "-m", "desktop", "--autostart"]


class Autostart:
    def __init__(self, *, system: str | None = None, home: Path | None = None,
                 command: list[str] | None = None, winreg: Any = None) -> None:
        self.system = system or platform.system()
        self.home = home or Path.home()
        self.command = command or login_command()
        self._winreg = winreg

    # -- public ------------------------------------------------------------------------------

    def is_enabled(self) -> bool:
        if self.system == "Windows":
            return self._win_get() is not None
        return self.entry_path().is_file()

    def set_enabled(self, enabled: bool) -> None:
        if self.system == "Windows":
            self._win_set(enabled)
        elif enabled:
            self._write_entry()
        else:
            self.entry_path().unlink(missing_ok=True)

    def entry_path(self) -> Path:
        if self.system == "Darwin":
            return self.home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"
        xdg = os.environ.get("XDG_CONFIG_HOME") if self.home == Path.home() else None
        base = Path(xdg) if xdg else self.home / ".config"
        return base / "autostart" / DESKTOP_FILE

    # -- per OS ------------------------------------------------------------------------------

    def _write_entry(self) -> None:
        path = self.entry_path()
        if self.system == "Darwin":
            plist = {"Label": LAUNCH_AGENT_LABEL, "ProgramArguments": self.command,
                     "RunAtLoad": True, "KeepAlive": False, "ProcessType": "Interactive"}
            atomic_write_bytes(path, plistlib.dumps(plist))
            return
        atomic_write_text(path, "\n".join([
            "[Desktop Entry]",
            "Type=Application",
            "Name=Flowork",
            "Comment=Flowork Core Engine in the tray",
            # TryExec: once the program is uninstalled, session managers skip the stale entry.
            f"TryExec={self.command[0]}",
            f"Exec={_desktop_exec(self.command)}",
            "Icon=flowork",
            "Terminal=false",
            "X-GNOME-Autostart-enabled=true",
            "",
        ]))

    def _winreg_module(self) -> Any:
        if self._winreg is None:
            import winreg  # type: ignore[import-not-found]  # Windows only
            self._winreg = winreg
        return self._winreg

    def _win_command(self) -> str:
        return " ".join(f'"{part}"' if " " in part or not part else part for part in self.command)

    def _win_get(self) -> str | None:
        winreg = self._winreg_module()
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_READ) as key:
                value, _kind = winreg.QueryValueEx(key, RUN_VALUE)
                return str(value)
        except FileNotFoundError:
            return None

    def _win_set(self, enabled: bool) -> None:
        winreg = self._winreg_module()
        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
            if enabled:
                winreg.SetValueEx(key, RUN_VALUE, 0, winreg.REG_SZ, self._win_command())
            else:
                try:
                    winreg.DeleteValue(key, RUN_VALUE)
                except FileNotFoundError:
                    pass


def _desktop_exec(command: list[str]) -> str:
    """Quote an Exec= line as the Desktop Entry spec wants (double quotes, % doubled)."""
    parts = []
    for part in command:
        part = part.replace("%", "%%")
        if any(c in part for c in ' \t\n"\'\\><~|&;$*?#()`'):
            part = '"' + part.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$") + '"'
        parts.append(part)
    return " ".join(parts)

