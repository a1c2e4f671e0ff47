"""What build.spec needs to decide, as plain functions that tests can call without PyInstaller
running: the version, the Windows version resource, the macOS Info.plist, which Qt files the
app never loads, and what the built-in components import.

Kept apart from build.spec because a spec file is exec'd by PyInstaller with its own globals
and cannot be imported.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[2]
DIST_NAME = "flowork-desktop"
APP_NAME = "Flowork"
BUNDLE_ID = "cloud.flowork.desktop"
COMPANY = "Flowork"
COPYRIGHT = "Copyright (c) Flowork. MIT License."
MACOS_MINIMUM = "11.0"  # PySide6 6.6+ wheels need macOS 11 or newer


# -- version ---------------------------------------------------------------------------------

def project_version(root: Path = ROOT) -> str:
    """The version in pyproject.toml: the one place it is written."""
    with open(root / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def version_tuple(version: str) -> tuple[int, int, int, int]:
    """PEP 440 release numbers as the four 16-bit fields Windows wants ("1.2.3rc1" -> 1,2,3,0)."""
    match = re.match(r"^(?:\d+!)?(\d+(?:\.\d+)*)", version.strip())
    if not match:
        raise ValueError(f"{version!r} is not a PEP 440 version")
    numbers = [int(part) for part in match.group(1).split(".")][:4]
    numbers += [0] * (4 - len(numbers))
    if any(n > 0xFFFF for n in numbers):
        raise ValueError(f"{version!r}: Windows version fields are at most 65535")
    return tuple(numbers)  # type: ignore[return-value]


def windows_version_info(version: str, *, exe_name: str, description: str) -> Any:
    """The VS_VERSIONINFO resource of one executable (Explorer's Details tab, installers)."""
    from PyInstaller.utils.win32.versioninfo import (FixedFileInfo, StringFileInfo, StringStruct,
                                                     StringTable, VarFileInfo, VarStruct,
                                                     VSVersionInfo)
    numbers = version_tuple(version)
    return VSVersionInfo(
        ffi=FixedFileInfo(filevers=numbers, prodvers=numbers, mask=0x3F, flags=0x0,
                          OS=0x40004,  # VOS_NT_WINDOWS32
                          fileType=0x1,  # VFT_APP
                          subtype=0x0, date=(0, 0)),
        kids=[
            StringFileInfo([StringTable("040904B0", [  # U.S. English, Unicode
                StringStruct("CompanyName", COMPANY),
                StringStruct("FileDescription", description),
                StringStruct("FileVersion", version),
                StringStruct("InternalName", exe_name),
                StringStruct("LegalCopyright", COPYRIGHT),
                StringStruct("OriginalFilename", f"{exe_name}.exe"),
                StringStruct("ProductName", APP_NAME),
                StringStruct("ProductVersion", version),
            ])]),
            VarFileInfo([VarStruct("Translation", [0x0409, 1200])]),
        ],
    )


def macos_info_plist(version: str) -> dict[str, Any]:
    """Info.plist keys beyond the ones PyInstaller's BUNDLE writes itself."""
    return {
        "CFBundleDisplayName": APP_NAME,
        "CFBundleShortVersionString": version,
        "CFBundleVersion": version,
        "LSUIElement": True,  # a menu-bar app: no Dock icon, no app menu
        "LSMinimumSystemVersion": MACOS_MINIMUM,
        "NSHighResolutionCapable": True,
        "NSHumanReadableCopyright": COPYRIGHT,
        "LSApplicationCategoryType": "public.app-category.developer-tools",
    }


# -- what the app never loads ------------------------------------------------------------------

# Whole plugin types nothing in the app uses: embedded-Linux input and display (evdev, eglfs),
# network reachability, Qt's own TLS (the engine's sockets are Python's), printing, SQL drivers
# (the store is Python's sqlite3), QML debugging, Designer, compositor-side Wayland.
UNUSED_PLUGIN_TYPES = frozenset({
    "egldeviceintegrations", "generic", "networkinformation", "tls", "printsupport",
    "sqldrivers", "qmltooling", "designer", "wayland-graphics-integration-server",
    "vectorimageformats", "bearer",
})
# Single plugins: other display back ends, image formats the app never reads (PNG is built into
# QtGui; SVG and ICO stay for icons), the QML virtual keyboard, Wayland shells other than the
# desktop one (xdg-shell) and the buffer integrations only clients of a Qt-based compositor use.
UNUSED_PLUGINS = {
    "platforms": frozenset({"qeglfs", "qlinuxfb", "qminimal", "qminimalegl", "qoffscreen",
                            "qvkkhrdisplay", "qvnc", "qdirect2d"}),
    "imageformats": frozenset({"qgif", "qjpeg", "qtga", "qtiff", "qwbmp", "qwebp", "qpdf", "qicns"}),
    "platforminputcontexts": frozenset({"qtvirtualkeyboardplugin"}),
    "wayland-shell-integration": frozenset({"fullscreen-shell-v1", "ivi-shell", "qt-shell",
                                            "wl-shell-plugin"}),
    "wayland-graphics-integration-client": frozenset({"dmabuf-server", "drm-egl-server",
                                                      "shm-emulation-server", "vulkan-server"}),
}
# Qt libraries only those plugins (or unused Qt modules) link: left behind they are dead weight.
UNUSED_QT_LIBRARIES = frozenset({
    "Qt6Pdf", "Qt6Qml", "Qt6QmlModels", "Qt6QmlMeta", "Qt6QmlWorkerScript", "Qt6Quick",
    "Qt6VirtualKeyboard", "Qt6VirtualKeyboardQml", "Qt6EglFSDeviceIntegration",
    "Qt6EglFsKmsSupport", "Qt6EglFsKmsGbmSupport", "Qt6WaylandCompositor",
    "Qt6WaylandEglCompositorHwIntegration", "Qt6WlShellIntegration", "Qt6PrintSupport",
    "Qt6Sql", "Qt6QuickWidgets",
})
# Python modules nothing imports at run time (but that packages mention): trimmed from analysis.
# tests/test_packaging.py imports the window's charts with these blocked, as in the bundle.
EXCLUDED_MODULES = [
    "tkinter", "_tkinter", "turtle", "turtledemo", "idlelib", "lib2to3", "pydoc_data", "test",
    "unittest", "doctest", "pdb", "PyQt5", "PyQt6", "PySide2",
    # test tooling some libraries ship helpers for (eth_abi.tools imports hypothesis)
    "hypothesis", "eth_abi.tools", "pytest", "_pytest", "pytestqt",
    "setuptools", "pkg_resources", "distutils", "_distutils_hack", "pip",
    # pyqtgraph's parts the charts never use (examples, 3D, notebooks, the Python console), and
    # numpy's optional YAML config dump
    "pyqtgraph.examples", "pyqtgraph.opengl", "pyqtgraph.jupyter", "pyqtgraph.console", "yaml",
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtQuickControls2",
    # (QtOpenGL and QtOpenGLWidgets stay: pyqtgraph, the window's charts, imports both at once)
    "PySide6.QtPrintSupport", "PySide6.QtSql",
    "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtTest", "PySide6.QtUiTools",
    "PySide6.QtXml", "PySide6.QtConcurrent", "PySide6.QtPdf",
]


def _library_stem(name: str) -> str:
    """'libQt6Pdf.so.6' / 'Qt6Pdf.dll' / 'QtPdf' -> 'Qt6Pdf'; plugin 'libqgif.so' -> 'qgif'."""
    stem = name
    for suffix in (".dylib", ".dll", ".so"):
        if suffix in stem:
            stem = stem[:stem.index(suffix)]
    if stem.startswith("lib"):
        stem = stem[3:]
    return stem


def is_unused_qt_file(dest: str, keep_translations: Iterable[str] = ()) -> bool:
    """True for a bundled Qt file (destination path inside the bundle) the app never loads.

    Translations go unless listed in keep_translations (e.g. "qtbase_de"): the app's texts are
    English and it installs no QTranslator, so Qt's own catalogues are never read."""
    parts = PurePosixPath(dest.replace("\\", "/")).parts
    name = parts[-1]
    framework = next((p for p in parts if p.endswith(".framework")), None)
    if framework:  # macOS: PySide6/Qt/lib/QtPdf.framework/...
        return framework[:-len(".framework")].replace("Qt", "Qt6", 1) in UNUSED_QT_LIBRARIES
    if _library_stem(name) in UNUSED_QT_LIBRARIES:  # also the links PyInstaller puts at the top
        return True
    if "PySide6" not in parts:
        return False
    if "translations" in parts and name.endswith(".qm"):
        return name[:-3] not in set(keep_translations)
    if "plugins" in parts:
        index = parts.index("plugins")
        if index + 1 < len(parts) - 1:
            plugin_type = parts[index + 1]
            if plugin_type in UNUSED_PLUGIN_TYPES:
                return True
            return _library_stem(name) in UNUSED_PLUGINS.get(plugin_type, ())
    return False


def _ldd_names(path: str) -> set[str]:
    """Sonames a Linux binary loads, transitively, as the dynamic linker resolves them."""
    import subprocess
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if "=>" in line}


def gtk_only_libraries(binaries: Iterable[tuple[str, str, str]],
                       plugin: str = "libqgtk3.so") -> set[str]:
    """Libraries in the binaries TOC that only Qt's GTK platform-theme plugin needs (GTK, Pango,
    Cairo, ...). The plugin stays (it gives GNOME users the native file dialogs) and loads the
    system's GTK stack when there is one; a half-bundled GTK stack would be dead weight at best
    and, mixed with a newer system GTK, a crash."""
    entries = [(PurePosixPath(dest.replace("\\", "/")), src, kind) for dest, src, kind in binaries
               if kind in ("BINARY", "EXTENSION")]
    theme = [src for dest, src, _ in entries if dest.name == plugin]
    if not theme or not sys.platform.startswith("linux"):
        return set()
    # What the rest of the app loads: Python extension modules, the other Qt plugins (those not
    # trimmed) and libpython, each with everything it links (ldd lists the whole tree).
    roots = [src for dest, src, kind in entries if dest.name != plugin
             and not is_unused_qt_file(str(dest))
             and (kind == "EXTENSION" or "plugins" in dest.parts or dest.name.startswith("libpython"))]
    needed_by_others: set[str] = set()
    for src in roots:
        needed_by_others |= _ldd_names(src)
    return _ldd_names(theme[0]) - needed_by_others


# -- built-in components -----------------------------------------------------------------------

def builtin_component_files(builtin_dir: Path) -> list[tuple[str, str]]:
    """(source, destination folder) for every file of the built-in components, manifests and
    their Python sources included: the engine loads them by path at run time."""
    files = []
    for path in sorted(builtin_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            files.append((str(path), str(path.parent.relative_to(builtin_dir.parents[2]))))
    return files


def builtin_component_imports(builtin_dir: Path) -> list[str]:
    """Modules the built-in components import. PyInstaller cannot see them (the components
    are data loaded by path), so they become hidden imports; relative imports stay inside the
    component folder and are skipped. Raises on a module that is not installed: the component
    would fail in the bundle."""
    names: set[str] = set()
    for path in sorted(builtin_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    missing = sorted(n for n in names if n.split(".")[0] not in sys.builtin_module_names
                     and importlib.util.find_spec(n.split(".")[0]) is None)
    if missing:
        raise RuntimeError(f"built-in components import modules that are not installed: {missing}")
    return sorted(names)


def resource_files(resources_dir: Path) -> list[tuple[str, str]]:
    """resources/ as the app reads it (icons and the source SVG), without the icon script."""
    files = []
    for path in sorted(resources_dir.rglob("*")):
        if path.is_file() and path.suffix in (".png", ".svg", ".ico", ".icns"):
            files.append((str(path), str(path.parent.relative_to(resources_dir.parent))))
    return files


# -- size report -------------------------------------------------------------------------------

def size_report(folder: Path, top: int = 12) -> str:
    """Total size of a built bundle and its largest files, for the build log."""
    sizes = [(p.stat().st_size, p) for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    total = sum(s for s, _ in sizes)
    lines = [f"Bundle {folder}: {total / 2**20:.1f} MiB in {len(sizes)} files; largest:"]
    for size, path in sorted(sizes, key=lambda item: item[0], reverse=True)[:top]:
        lines.append(f"  {size / 2**20:7.1f} MiB  {path.relative_to(folder)}")
    return "\n".join(lines)
