"""Start at login: the real files for Linux and macOS in a temporary home, the registry value on
Windows (winreg mocked: it cannot run here), and the menu checkbox reading the OS state."""

from __future__ import annotations

import configparser
import plistlib

from desktop.autostart import RUN_KEY, RUN_VALUE, Autostart


def test_linux_xdg_autostart_entry(home):
    auto = Autostart(system="Linux", home=home, command=["/opt/Flowork App/flowork", "--autostart"])
    assert not auto.is_enabled()
    auto.set_enabled(True)
    path = home / ".config" / "autostart" / "flowork.desktop"
    assert auto.is_enabled() and path.is_file()
    entry = configparser.ConfigParser(interpolation=None)
    entry.read_string(path.read_text())
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application" and section["Name"] == "Flowork"
    assert section["Exec"] == '"/opt/Flowork App/flowork" --autostart'
    assert section["TryExec"] == "/opt/Flowork App/flowork"
    auto.set_enabled(False)
    assert not path.exists() and not auto.is_enabled()


def test_macos_launch_agent(home):
    auto = Autostart(system="Darwin", home=home, command=["/Applications/Flowork.app/Contents/MacOS/Flowork", "--autostart"])
    auto.set_enabled(True)
    path = home / "Library" / "LaunchAgents" / "cloud.flowork.desktop.plist"
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == "cloud.flowork.desktop"
    assert plist["ProgramArguments"] == ["/Applications/Flowork.app/Contents/MacOS/Flowork", "--autostart"]
    assert plist["RunAtLoad"] is True
    assert auto.is_enabled()
    auto.set_enabled(False)
    assert not path.exists()


class FakeWinreg:
    """The part of winreg the module uses, over a dict (the real one exists only on Windows)."""

    HKEY_CURRENT_USER = "HKCU"
    KEY_READ = 1
    KEY_SET_VALUE = 2
    REG_SZ = 1

    def __init__(self) -> None:
        self.values: dict[tuple[str, str, str], str] = {}

    class _Key:
        def __init__(self, root, path):
            self.root, self.path = root, path

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def OpenKey(self, root, path, reserved, access):
        return self._Key(root, path)

    def CreateKeyEx(self, root, path, reserved, access):
        return self._Key(root, path)

    def QueryValueEx(self, key, name):
        try:
            return self.values[(key.root, key.path, name)], self.REG_SZ
        except KeyError:
            raise FileNotFoundError(name) from None

    def SetValueEx(self, key, name, reserved, kind, value):
        assert kind == self.REG_SZ
        self.values[(key.root, key.path, name)] = value

    def DeleteValue(self, key, name):
        try:
            del self.values[(key.root, key.path, name)]
        except KeyError:
            raise FileNotFoundError(name) from None


def test_windows_run_value():
    reg = FakeWinreg()
    auto = Autostart(system="Windows", command=[r"C:\Program Files\Flowork\flowork.exe", "--autostart"], winreg=reg)
    assert not auto.is_enabled()
    auto.set_enabled(True)
    assert reg.values == {("HKCU", RUN_KEY, RUN_VALUE): r'"C:\Program Files\Flowork\flowork.exe" --autostart'}
    assert auto.is_enabled()
    auto.set_enabled(False)
    assert reg.values == {} and not auto.is_enabled()
    auto.set_enabled(False)  # already off: no error


async def test_menu_checkbox_reads_the_real_state_each_time(make_app, home):
    app = await make_app(start_engine=False)
    entry = home / ".config" / "autostart" / "flowork.desktop"
    app.menu.aboutToShow.emit()
    assert not app.menu.autostart.isChecked()  # off by default
    app.menu.autostart.trigger()  # the user ticks it
    assert entry.is_file() and app.menu.autostart.isChecked()
    assert "--autostart" in entry.read_text()
    entry.unlink()  # removed behind the app's back (the desktop's own settings)
    app.menu.aboutToShow.emit()
    assert not app.menu.autostart.isChecked()
