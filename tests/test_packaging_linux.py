"""The Linux release as a user gets it: build.spec through PyInstaller, the .deb and .tar.gz
from installer/linux/build-deb.sh, lintian, the release workflow's smoke test
(scripts/smoke_bundle.py) on the bundle and both packages, then the package installed on this
machine (CI runs as root), its engine answering a signed client, its tray app started from the
menu entry's Exec line on a real X display with a tray, and `apt-get remove` leaving nothing
behind.

Slow (a few minutes: PyInstaller and compressing the package take most of it), so marked slow;
CI runs it. The build happens once per run in temporary folders, never in dist/.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from engine.client import EngineClient, EngineReplyError
from tests.conftest import REPO_ROOT, Wallet, require_tool
from tests.desktop.test_desktop_xvfb_smoke import poll, windows_text, x_display, x_server  # noqa: F401 (fixtures)
from tests.output_process import OutputProcess
from tests.runtime_support import collect, final

sys.path.insert(0, str(REPO_ROOT / "installer" / "pyinstaller"))
import bundle_config as cfg  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),  # the build runs in the first test's fixtures
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux packages build on Linux"),
]
VERSION = cfg.project_version()
PACKAGE = "flowork"
SMOKE = REPO_ROOT / "scripts" / "smoke_bundle.py"  # what `make smoke` and the release workflow run
APT_LOCK_WAIT = ["-o", "DPkg::Lock::Timeout=300"]  # another apt run may hold the lock for a while
# What the package installs outside /opt/flowork; all of it must go again on removal.
OUTSIDE_OPT = ["/usr/bin/flowork", "/usr/bin/flowork-engine", "/usr/share/applications/flowork.desktop",
               "/usr/share/doc/flowork", "/usr/share/lintian/overrides/flowork",
               "/usr/share/man/man1/flowork.1.gz", "/usr/share/man/man1/flowork-engine.1.gz"]


def run(cmd: list[str], *, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{shlex.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def app_env(home: Path, **extra: str) -> dict[str, str]:
    """The installed programs' environment: a fresh home, no keyring daemon to reach (secrets
    go to a 0600 file in the home), and nothing of the test run's Python setup, so that a
    module missing from the bundle cannot be found in the repository instead."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "QT_", "XDG_", "FLOWORK_")) and k != "DBUS_SESSION_BUS_ADDRESS"}
    for sub in ("config", "data", "state", "cache", "runtime"):
        (home / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               XDG_STATE_HOME=str(home / "state"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_RUNTIME_DIR=str(home / "runtime"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", **extra)
    return env


# -- build ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/flowork built from build.spec, as `make dist` builds it (in a temporary folder)."""
    require_tool("objdump")
    work = tmp_path_factory.mktemp("pyinstaller")
    started = time.monotonic()
    result = run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--distpath",
                  str(work / "dist"), "--workpath", str(work / "build"), str(REPO_ROOT / "build.spec")],
                 cwd=REPO_ROOT, timeout=1200)
    report = result.stdout[result.stdout.find("Bundle "):]
    print(f"\nPyInstaller build: {time.monotonic() - started:.0f} s\n{report}")
    return work / "dist" / "flowork"


@pytest.fixture(scope="module")
def packages(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    for tool in ("dpkg-deb", "dpkg-shlibdeps", "chrpath"):
        require_tool(tool)
    out = tmp_path_factory.mktemp("packages")
    started = time.monotonic()
    # gzip instead of the release's xz: the same package, two minutes sooner on CI's two cores.
    result = run(["bash", str(REPO_ROOT / "installer" / "linux" / "build-deb.sh")], cwd=REPO_ROOT,
                 env=dict(os.environ, BUNDLE=str(bundle), OUT=str(out), WORK=str(out / "work"),
                          DEB_COMPRESSION="gzip"), timeout=1200)
    print(f"\nbuild-deb.sh: {time.monotonic() - started:.0f} s\n{result.stdout}")
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    debs = list(out.glob(f"{PACKAGE}_*_{arch}.deb"))
    tarballs = list(out.glob(f"{PACKAGE}-{VERSION}-linux-*.tar.gz"))
    assert len(debs) == 1 and len(tarballs) == 1, sorted(p.name for p in out.iterdir())
    return {"deb": debs[0], "tar": tarballs[0], "work": out / "work"}


# -- the bundle ------------------------------------------------------------------------------------

def test_bundle_holds_what_the_app_loads_and_not_what_it_never_does(bundle: Path) -> None:
    internal = bundle / "_internal"
    for exe in ("flowork", "flowork-engine"):
        assert os.access(bundle / exe, os.X_OK)
    assert (internal / "resources" / "icons" / "flowork-256.png").is_file()
    builtin = REPO_ROOT / "engine" / "components" / "builtin"
    for manifest in builtin.rglob("manifest.json"):
        assert (internal / manifest.relative_to(REPO_ROOT)).is_file(), manifest
    # Our metadata, which the version lookups read (a .dist-info, or the .egg-info of an editable
    # install when the source folder comes first on the path).
    assert list(internal.glob("flowork_desktop-*.dist-info/METADATA")) + list(internal.glob("flowork_desktop.egg-info/PKG-INFO"))
    files = [p.relative_to(internal).as_posix() for p in internal.rglob("*")]
    assert not [f for f in files if f.endswith(".qm")], "Qt translations were bundled"
    assert not [f for f in files if cfg.is_unused_qt_file(f)], "trimmed Qt files were bundled"
    assert not [f for f in files if f.startswith(("hypothesis", "pytest", "_pytest", "tkinter"))]
    assert "PySide6/Qt/plugins/platforms/libqxcb.so" in files
    # Every library in the bundle finds what it links, from the bundle or the system (the GTK
    # theme plugin may lack GTK: Qt skips it then).
    missing = []
    env = dict(os.environ, LD_LIBRARY_PATH=str(internal))
    for path in [bundle / "flowork", bundle / "flowork-engine", *internal.rglob("*.so*")]:
        if path.is_symlink() or path.name == "libqgtk3.so" or path.read_bytes()[:4] != b"\x7fELF":
            continue
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env).stdout
        missing += [f"{path.relative_to(bundle)}: {line.strip()}" for line in out.splitlines() if "not found" in line]
    assert not missing, "\n".join(missing)


def test_bundled_programs_run_without_the_repository(bundle: Path, tmp_path: Path) -> None:
    env = app_env(tmp_path / "home")
    for exe in ("flowork", "flowork-engine"):
        assert run([str(bundle / exe), "--version"], env=env, cwd=tmp_path).stdout.split() == [exe, VERSION]


# -- the packages ----------------------------------------------------------------------------------

def test_deb_is_lintian_clean_with_its_overrides_explained(packages: dict[str, Path]) -> None:
    lintian = require_tool("lintian")
    result = subprocess.run([lintian, "--fail-on", "error,warning", "--tag-display-limit", "0",
                             str(packages["deb"])], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    overrides = (REPO_ROOT / "installer" / "linux" / "lintian-overrides").read_text()
    for block in overrides.strip().split("\n\n")[1:]:  # every override follows its reason
        assert block.lstrip().startswith("#"), f"override without a reason:\n{block}"


def test_deb_control_layout_and_menu_entry(packages: dict[str, Path], tmp_path: Path) -> None:
    deb = packages["deb"]
    control = run(["dpkg-deb", "--field", str(deb)]).stdout
    fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", control, re.MULTILINE))
    assert fields["Package"] == PACKAGE and fields["Version"] == VERSION
    depends = {d.split()[0] for d in fields["Depends"].split(", ")}
    # What the bundle links from the system, and nothing it carries itself.
    assert {"libc6", "libxcb1", "libegl1", "libgl1", "fontconfig-config"} <= depends
    assert not depends & {"libqt6core6", "libpython3.11", "libssl3", "libx11-6", "libxkbcommon0"}
    assert fields["Recommends"] == "libgtk-3-0"
    listing = run(["dpkg-deb", "--contents", str(deb)]).stdout
    assert "./usr/bin/flowork -> /opt/flowork/flowork" in listing
    assert "./usr/bin/flowork-engine -> /opt/flowork/flowork-engine" in listing
    for size in (16, 32, 48, 128, 256, 512):
        assert f"./usr/share/icons/hicolor/{size}x{size}/apps/flowork.png" in listing
    assert "./usr/share/icons/hicolor/scalable/apps/flowork.svg" in listing
    assert "__pycache__" not in listing
    root = tmp_path / "extracted"
    run(["dpkg-deb", "--extract", str(deb), str(root)])
    run([require_tool("desktop-file-validate"), str(root / "usr/share/applications/flowork.desktop")])
    control_files = run(["dpkg-deb", "--info", str(deb)]).stdout
    assert not re.search(r"\b(preinst|postinst|prerm|postrm)\b", control_files)  # no maintainer scripts
    # No library keeps the build machine's folders in its search path.
    leaks = []
    for path in (root / "opt/flowork").rglob("*.so*"):
        if not path.is_symlink():
            dyn = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True).stdout
            leaks += [f"{path.name}: {line.strip()}" for line in dyn.splitlines()
                      if re.match(r"\s*(RUNPATH|RPATH)\s", line) and not line.split()[1].startswith("$ORIGIN")]
    assert not leaks, "\n".join(leaks)


def test_tarball_runs_from_wherever_it_is_unpacked(packages: dict[str, Path], tmp_path: Path) -> None:
    with tarfile.open(packages["tar"]) as tar:
        names = tar.getnames()
        assert all(n == f"flowork-{VERSION}" or n.startswith(f"flowork-{VERSION}/") for n in names)
        assert all(m.uid == 0 and m.gid == 0 for m in tar.getmembers())
        tar.extractall(tmp_path, filter="tar")
    engine = tmp_path / f"flowork-{VERSION}" / "flowork-engine"
    assert run([str(engine), "--version"], env=app_env(tmp_path / "home")).stdout.split() == ["flowork-engine", VERSION]


def test_smoke_script_passes_on_the_bundle_and_both_packages(bundle: Path, packages: dict[str, Path]) -> None:
    """The release workflow's check of its artifacts, on this build: each one's own engine
    answers the GUI's opening burst signed by a generated key."""
    result = run([sys.executable, str(SMOKE), str(bundle), str(packages["deb"]), str(packages["tar"])], timeout=900)
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("smoke: ok") for line in lines), result.stdout + result.stderr
    print("\n" + result.stdout)


# -- installed on this machine ----------------------------------------------------------------------

def installed_version() -> str | None:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", PACKAGE], capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.startswith("install ok installed"):
        return None
    return result.stdout.split()[-1]


@pytest.fixture
def installed(packages: dict[str, Path]) -> Iterator[Path]:
    """The .deb installed with apt (which brings its Depends); removed again whatever happens."""
    apt = require_tool("apt-get")
    if os.geteuid() != 0:
        message = "installing the .deb needs root (CI runs as root)"
        if os.environ.get("FLOWORK_REQUIRE_SYSTEM_TESTS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    if installed_version() is not None or Path("/opt/flowork").exists():
        pytest.fail("a flowork package (or /opt/flowork) is already on this machine; remove it first "
                    "so that this test does not overwrite it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        run([apt, "install", "-y", "-q", "--no-install-recommends", *APT_LOCK_WAIT, str(packages["deb"])],
            env=env, timeout=900)
        assert installed_version() == VERSION
        yield Path("/opt/flowork")
    finally:
        if installed_version() is not None:
            subprocess.run([apt, "remove", "-y", "-q", *APT_LOCK_WAIT, PACKAGE], env=env, capture_output=True, timeout=600)
        subprocess.run(["dpkg", "--purge", PACKAGE], env=env, capture_output=True, timeout=600)


async def talk_to(url: str, owner: Wallet, stranger: Wallet) -> dict[str, object]:
    """Settings, the built-in components and one node run, over a signed connection."""
    async with await EngineClient.connect(url, owner.key) as client:
        settings = await client.request("request_settings")
        modules = await client.request("request_components_list", component_type="modules")
        await client.request("execute_standalone_node", job_id="deb-smoke", mode="EXECUTE",
                             node_data={"module_id": "set_data", "config_values": {"data": {"from": "deb"}}})
        outcome = final(await collect(client, "deb-smoke"))
    async with await EngineClient.connect(url, stranger.key) as other:
        with pytest.raises(EngineReplyError) as refused:
            await other.request("request_settings")
    return {"settings": settings, "modules": modules, "outcome": outcome, "refused": refused.value.code}


def test_deb_installs_runs_and_removes_without_a_trace(installed: Path, packages: dict[str, Path],
                                                        x_display: dict[str, str], tmp_path: Path,
                                                        owner: Wallet, stranger: Wallet) -> None:
    # As installed: links on the PATH, a menu entry, icons, man pages.
    assert shutil.which("flowork") == "/usr/bin/flowork" and shutil.which("flowork-engine") == "/usr/bin/flowork-engine"
    assert os.path.realpath("/usr/bin/flowork") == str(installed / "flowork")
    for path in OUTSIDE_OPT + ["/usr/share/icons/hicolor/256x256/apps/flowork.png"]:
        assert os.path.lexists(path), path

    # The headless engine answers a signed client (and only its owner).
    home = tmp_path / "engine-home"
    engine = OutputProcess(["/usr/bin/flowork-engine", "--port", "0", "--owner", owner.address,
                      "--data-dir", str(home / "data"), "--log-dir", str(home / "log")], app_env(home), tmp_path)
    try:
        url = engine.wait_for(r"Web GUI URL: (\S+)", timeout=90).group(1)
        seen = asyncio.run(talk_to(url, owner, stranger))
    finally:
        code = engine.stop(timeout=60)
    assert code == 0, "flowork-engine did not stop cleanly on SIGTERM:\n" + engine.output()
    assert seen["settings"]["settings"]["theme"] == "dark"
    bundled = {c["id"] for c in seen["modules"]["components"] if c.get("is_builtin")}
    expected = {m.parent.name for m in (REPO_ROOT / "engine/components/builtin/modules").glob("*/manifest.json")}
    assert expected and expected <= bundled
    assert seen["outcome"]["status"] == "SUCCEEDED" and seen["outcome"]["result"]["data"] == {"from": "deb"}
    assert seen["refused"]
    # The release workflow's smoke test passes on the installed command too.
    assert run([sys.executable, str(SMOKE), "/usr/bin/flowork-engine"], timeout=600).stdout.startswith("smoke: ok")

    # The tray app, started the way the menu starts it (the entry's Exec line), shows its icon
    # in the tray host: trayer embeds the icon's window in its panel.
    entry = Path("/usr/share/applications/flowork.desktop").read_text()
    exec_line = shlex.split(re.search(r"^Exec=(.*)$", entry, re.MULTILINE).group(1))
    gui_home = tmp_path / "gui-home"
    app = OutputProcess([*exec_line, "--port", "0", "--webhook-port", "0"], app_env(gui_home, DISPLAY=x_display["DISPLAY"]), tmp_path)
    try:
        line = app.wait_for(r"is running in the tray.*", timeout=90).group(0)
        assert "no system tray here" not in line, app.output()
        poll(lambda: tray_icon_in_panel(windows_text(x_display)), what="the Flowork icon in the tray",
             detail=lambda: windows_text(x_display) + "\n" + app.output())
    finally:
        code = app.stop(timeout=60)
    assert code == 0, "flowork did not quit cleanly on SIGTERM:\n" + app.output()

    # Running the programs wrote nothing into the package's folders: removal can take it all.
    listed = set(run(["dpkg", "-L", PACKAGE]).stdout.split("\n"))
    extra = [str(p) for p in installed.rglob("*") if str(p) not in listed]
    assert not extra, "files in /opt/flowork that dpkg does not know:\n" + "\n".join(extra[:20])

    run(["apt-get", "remove", "-y", "-q", *APT_LOCK_WAIT, PACKAGE], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
        timeout=600)
    assert installed_version() is None
    left = [p for p in ["/opt/flowork", *OUTSIDE_OPT] if os.path.lexists(p)]
    left += [str(p) for p in Path("/usr/share/icons/hicolor").rglob("flowork.*")]
    assert not left, f"left behind after apt-get remove: {left}"
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], capture_output=True, text=True)
    assert "config-files" not in status.stdout  # nothing for --purge to find either


def tray_icon_in_panel(tree: str) -> bool:
    """True when a window of class flowork sits inside trayer's panel window."""
    panel_depth = None
    for line in tree.splitlines():
        depth = len(line) - len(line.lstrip())
        if '("panel" "trayer")' in line:
            panel_depth = depth
        elif panel_depth is not None:
            if depth <= panel_depth:
                panel_depth = None
            elif '("flowork" "Flowork")' in line:
                return True
    return False
