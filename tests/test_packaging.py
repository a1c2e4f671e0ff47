"""Packaging decisions that need no build: the icons made from the one source image, the
version and Info.plist values build.spec uses, which Qt files it leaves out, what it bundles
for the built-in components, the Linux menu entry and the Windows installer script (compiled
with makensis against a stand-in payload). The real builds are in test_packaging_linux.py."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import plistlib
import re
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PySide6.QtCore import QByteArray
from PySide6.QtGui import QImage, QImageReader

from tests.conftest import REPO_ROOT, require_tool

sys.path.insert(0, str(REPO_ROOT / "installer" / "pyinstaller"))
import bundle_config as cfg  # noqa: E402

ICONS = REPO_ROOT / "resources" / "icons"
NSIS = REPO_ROOT / "installer" / "windows" / "flowork.nsi"


def load_make_icons() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_icons", REPO_ROOT / "resources" / "make_icons.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_all(path: Path) -> list[QImage]:
    """Every image in a multi-image file, decoded by Qt's own readers (not by our writer)."""
    reader = QImageReader(str(path))
    images = []
    for index in range(reader.imageCount()):
        assert reader.jumpToImage(index), f"{path}: cannot seek to image {index}"
        image = reader.read()
        assert not image.isNull(), f"{path} image {index}: {reader.errorString()}"
        images.append(image.convertToFormat(QImage.Format.Format_ARGB32))
    return images


def max_channel_difference(a: QImage, b: QImage) -> int:
    assert a.size() == b.size()
    a = a.convertToFormat(QImage.Format.Format_ARGB32)
    b = b.convertToFormat(QImage.Format.Format_ARGB32)
    raw_a, raw_b = bytes(a.constBits()), bytes(b.constBits())
    return max(abs(x - y) for x, y in zip(raw_a, raw_b))


# -- icons -------------------------------------------------------------------------------------

def test_committed_icons_are_those_the_source_image_makes(qapp, tmp_path: Path) -> None:
    make_icons = load_make_icons()
    written = make_icons.make_icons(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in ICONS.iterdir()), \
        "resources/icons/ differs from what make_icons.py writes"
    for size in make_icons.PNG_SIZES:
        committed = QImage(str(ICONS / f"flowork-{size}.png"))
        fresh = QImage(str(tmp_path / f"flowork-{size}.png"))
        assert committed.width() == committed.height() == size
        # A different Qt may antialias a little differently; a changed drawing differs a lot.
        assert max_channel_difference(committed, fresh) <= 24, \
            f"flowork-{size}.png is stale: run python resources/make_icons.py"
    assert QImage(str(ICONS / "flowork-256.png")).hasAlphaChannel()  # the tray's base image


def test_ico_holds_every_size_and_windows_reads_bmp_below_256(qapp) -> None:
    make_icons = load_make_icons()
    data = (ICONS / "flowork.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind, count) == (0, 1, len(make_icons.ICO_SIZES))
    for index, size in enumerate(sorted(make_icons.ICO_SIZES)):
        width, height, _, _, planes, bits, length, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * index)
        assert (width or 256, height or 256, planes, bits) == (size, size, 1, 32)
        blob = data[offset:offset + length]
        assert len(blob) == length
        assert blob.startswith(b"\x89PNG") == (size >= 256)
    images = read_all(ICONS / "flowork.ico")
    assert sorted(i.width() for i in images) == sorted(make_icons.ICO_SIZES)
    for image in images:  # same drawing as the PNG of that size, transparent corners
        png = QImage(str(ICONS / f"flowork-{image.width()}.png"))
        assert max_channel_difference(image, png) <= 1
        assert image.pixelColor(0, 0).alpha() == 0


def test_icns_holds_the_retina_sizes_macos_wants(qapp) -> None:
    make_icons = load_make_icons()
    data = (ICONS / "flowork.icns").read_bytes()
    assert data[:4] == b"icns" and struct.unpack_from(">I", data, 4)[0] == len(data)
    kinds, offset = [], 8
    while offset < len(data):
        kind, length = data[offset:offset + 4], struct.unpack_from(">I", data, offset + 4)[0]
        assert length >= 8 and offset + length <= len(data)
        if kind != b"TOC ":
            assert data[offset + 8:offset + 16] == b"\x89PNG\r\n\x1a\n"
            image = QImage.fromData(QByteArray(data[offset + 8:offset + length]), "PNG")
            assert image.width() == dict(make_icons.ICNS_TYPES)[kind]
        kinds.append(kind)
        offset += length
    assert kinds == [b"TOC "] + [kind for kind, _ in make_icons.ICNS_TYPES]
    assert sorted(i.width() for i in read_all(ICONS / "flowork.icns")) == \
        sorted(size for _, size in make_icons.ICNS_TYPES)


# -- what build.spec decides ---------------------------------------------------------------------

@pytest.mark.parametrize("version, expected", [
    ("0.1.0", (0, 1, 0, 0)), ("1.2", (1, 2, 0, 0)), ("1.2.3rc1", (1, 2, 3, 0)),
    ("2.0.0.dev4", (2, 0, 0, 0)), ("1!3.4.5", (3, 4, 5, 0)), ("1.2.3.4.5", (1, 2, 3, 4)),
])
def test_windows_version_fields_from_pep440(version: str, expected: tuple[int, ...]) -> None:
    assert cfg.version_tuple(version) == expected


@pytest.mark.parametrize("bad", ["", "v1.0", "1.70000"])
def test_a_version_windows_cannot_hold_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        cfg.version_tuple(bad)


def test_the_bundle_reports_the_version_in_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.platform != "win32":
        # PyInstaller's version-resource module imports pefile and win32api (Windows only) for
        # reading and patching .exe files; building the resource bytes uses neither.
        import PyInstaller.compat
        monkeypatch.setitem(sys.modules, "pefile", ModuleType("pefile"))
        monkeypatch.setattr(PyInstaller.compat, "win32api", None, raising=False)
    version = cfg.project_version()
    assert version == importlib.metadata.version(cfg.DIST_NAME)
    info = cfg.windows_version_info(version, exe_name="flowork", description="Flowork Desktop")
    raw = info.toRaw()  # the bytes PyInstaller writes into the .exe's version resource
    numbers = cfg.version_tuple(version)
    assert struct.pack("<II", numbers[0] << 16 | numbers[1], numbers[2] << 16 | numbers[3]) in raw
    for text in ("ProductVersion", version, "flowork.exe", "Flowork"):
        assert text.encode("utf-16-le") in raw
    # PyInstaller's own reader accepts the text form too (what `pyi-grab_version` shows).
    from PyInstaller.utils.win32.versioninfo import VSVersionInfo  # noqa: F401 (eval needs it)
    from PyInstaller.utils.win32 import versioninfo
    assert eval(str(info), vars(versioninfo)).toRaw() == raw


def test_macos_info_plist_makes_a_menu_bar_app() -> None:
    plist = cfg.macos_info_plist("1.2.3")
    assert plist["LSUIElement"] is True
    assert plist["CFBundleShortVersionString"] == "1.2.3"
    assert cfg.BUNDLE_ID == "cloud.flowork.desktop"
    plistlib.loads(plistlib.dumps(plist))  # every value is a plist type


@pytest.mark.parametrize("dest", [
    "PySide6/Qt/translations/qtbase_de.qm", "PySide6/translations/qt_fr.qm",
    "PySide6/Qt/plugins/imageformats/libqjpeg.so", "PySide6/plugins/imageformats/qjpeg.dll",
    "PySide6/Qt/plugins/imageformats/libqgif.dylib", "PySide6/Qt/plugins/platforms/libqeglfs.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so", "PySide6/Qt/plugins/tls/libqopensslbackend.so",
    "PySide6/Qt/plugins/sqldrivers/libqsqlite.so", "PySide6/plugins/printsupport/windowsprintersupport.dll",
    "PySide6/Qt/plugins/wayland-shell-integration/libivi-shell.so",
    "PySide6/Qt/lib/libQt6Pdf.so.6", "libQt6Pdf.so.6", "PySide6/Qt6Quick.dll",
    "PySide6/Qt/lib/QtPdf.framework/Versions/A/QtPdf",
])
def test_qt_files_the_app_never_loads_are_left_out(dest: str) -> None:
    assert cfg.is_unused_qt_file(dest)


@pytest.mark.parametrize("dest", [
    "PySide6/Qt/plugins/platforms/libqxcb.so", "PySide6/Qt/plugins/platforms/libqwayland.so",
    "PySide6/plugins/platforms/qwindows.dll", "PySide6/Qt/plugins/platforms/libqcocoa.dylib",
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so", "PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so",
    "PySide6/plugins/styles/qmodernwindowsstyle.dll", "PySide6/Qt/plugins/imageformats/libqsvg.so",
    "PySide6/plugins/imageformats/qico.dll", "PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so",
    "PySide6/Qt/plugins/platforminputcontexts/libcomposeplatforminputcontextplugin.so",
    "PySide6/Qt/lib/libQt6Widgets.so.6", "PySide6/Qt/lib/QtGui.framework/Versions/A/QtGui",
    "PySide6/Qt6Network.dll", "libQt6DBus.so.6", "resources/icons/flowork-256.png",
    "engine/components/builtin/modules/set_data/manifest.json",
    "PySide6/Qt/lib/libQt6OpenGLWidgets.so.6", "PySide6/Qt6OpenGL.dll",  # pyqtgraph loads them
])
def test_qt_files_the_app_needs_stay(dest: str) -> None:
    assert not cfg.is_unused_qt_file(dest)


CHARTS_WITH_THE_BUNDLES_EXCLUSIONS = """
import importlib.abc, sys
sys.path.insert(0, "installer/pyinstaller")
import bundle_config as cfg
left_out = set(cfg.EXCLUDED_MODULES)

class LeftOut(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == m or name.startswith(m + ".") for m in left_out):
            raise ModuleNotFoundError(f"No module named {name!r} (left out of the bundle)")
        return None

sys.meta_path.insert(0, LeftOut())
from PySide6.QtWidgets import QApplication
app = QApplication([])
from desktop.window.engine_view import EngineView
from desktop.window.samples import StatusHistory
history = StatusHistory()
view = EngineView(history, lambda n: ["a log line"], lambda: None)
view._build_charts()
view.update_view()
print("charts:", sorted(view.curves))
"""


def test_the_window_charts_import_nothing_the_bundle_leaves_out() -> None:
    """pyqtgraph imports QtOpenGL and QtOpenGLWidgets when it loads: excluded, the Engine tab
    would fail in the installed app only. Its charts are built here with every excluded module
    refused, as the bundle would refuse them."""
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", CHARTS_WITH_THE_BUNDLES_EXCLUSIONS], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "charts: ['engine_cpu', 'engine_memory', 'machine_cpu', 'machine_memory', 'running_jobs']" in proc.stdout


def test_every_builtin_component_file_is_bundled_where_the_catalog_looks() -> None:
    builtin = REPO_ROOT / "engine" / "components" / "builtin"
    files = cfg.builtin_component_files(builtin)
    bundled = {str(Path(dest) / Path(src).name) for src, dest in files}
    manifests = sorted(builtin.rglob("manifest.json"))
    assert manifests, "no built-in components found"
    for manifest in manifests:
        folder = manifest.parent.relative_to(REPO_ROOT)
        assert str(folder / "manifest.json") in bundled
        for source in manifest.parent.glob("*.py"):
            assert str(folder / source.name) in bundled
    assert not any("__pycache__" in dest or src.endswith(".pyc") for src, dest in files)


def test_builtin_component_imports_become_hidden_imports(tmp_path: Path) -> None:
    names = cfg.builtin_component_imports(REPO_ROOT / "engine" / "components" / "builtin")
    assert all(importlib.util.find_spec(name.split(".")[0]) for name in names)
    component = tmp_path / "engine" / "components" / "builtin" / "modules" / "odd"
    component.mkdir(parents=True)
    (component / "module.py").write_text("import json\nfrom . import sibling\n"
                                         "import flowork_no_such_module_anywhere\n")
    with pytest.raises(RuntimeError, match="flowork_no_such_module_anywhere"):
        cfg.builtin_component_imports(tmp_path / "engine" / "components" / "builtin")


def test_resources_bundle_the_icons_not_the_script() -> None:
    names = {Path(src).name for src, _ in cfg.resource_files(REPO_ROOT / "resources")}
    assert {"flowork-256.png", "flowork.ico", "flowork.icns", "flowork.svg"} <= names
    assert "make_icons.py" not in names


# -- Linux menu entry, Windows installer ---------------------------------------------------------

def test_desktop_entry_is_valid_and_named_as_the_app_says(tmp_path: Path) -> None:
    validate = require_tool("desktop-file-validate")
    entry = REPO_ROOT / "installer" / "linux" / "flowork.desktop"
    result = subprocess.run([validate, str(entry)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    from desktop.autostart import DESKTOP_FILE
    assert entry.name == DESKTOP_FILE  # Qt's desktop file name, so docks match windows to it
    fields = dict(line.split("=", 1) for line in entry.read_text().splitlines() if "=" in line)
    assert fields["Exec"].split()[0] == "flowork" and fields["Icon"] == "flowork"


def nsis_define(name: str) -> str:
    match = re.search(rf'^!define {name} "([^"]*)"', NSIS.read_text(), re.MULTILINE)
    assert match, f"flowork.nsi defines no {name}"
    return match.group(1)


def test_installer_script_shares_names_with_the_app() -> None:
    from desktop.autostart import RUN_KEY, RUN_VALUE
    from engine.store.secret_key import KEYRING_SERVICE
    assert nsis_define("RUN_VALUE") == RUN_VALUE  # the uninstaller removes the app's own entry
    assert nsis_define("RUN_KEY") == RUN_KEY
    assert nsis_define("KEYRING_SERVICE") == KEYRING_SERVICE
    assert nsis_define("AUMID_KEY").endswith("\\Flowork")  # desktop-notifier's app name


def test_windows_installer_compiles_with_makensis(tmp_path: Path) -> None:
    makensis = require_tool("makensis")
    payload = tmp_path / "payload"
    (payload / "_internal").mkdir(parents=True)
    for exe in ("flowork.exe", "flowork-engine.exe"):
        (payload / exe).write_bytes(b"MZ stand-in for the PyInstaller executable")
    (payload / "_internal" / "base_library.zip").write_bytes(b"PK")
    out = tmp_path / "Flowork-Setup.exe"
    version = cfg.project_version()
    quad = ".".join(map(str, cfg.version_tuple(version)))
    result = subprocess.run([makensis, "-V2", "-WX", f"-DVERSION={version}", f"-DVERSION_QUAD={quad}",
                             f"-DPAYLOAD={payload}", f"-DOUTFILE={out}", str(NSIS)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    data = out.read_bytes()
    assert data[:2] == b"MZ"
    assert version.encode("utf-16-le") in data  # the version resource of the setup program
    # Without a version it stops with a sentence saying how to pass one.
    result = subprocess.run([makensis, "-V1", f"-DPAYLOAD={payload}", f"-DOUTFILE={out}", str(NSIS)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Pass the version" in result.stdout + result.stderr


def test_dmg_script_says_where_it_runs(tmp_path: Path) -> None:
    if sys.platform == "darwin":
        pytest.skip("on macOS the script really builds a .dmg")
    result = subprocess.run(["bash", str(REPO_ROOT / "installer" / "macos" / "build-dmg.sh")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "only on macOS" in result.stderr
