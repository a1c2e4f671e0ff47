#!/usr/bin/env python3
"""Smoke test of what a user downloads: the built bundle's headless engine answers the web GUI.

    python scripts/smoke_bundle.py ARTIFACT...      (the repository's venv Python)
    python scripts/smoke_bundle.py --installers dist  (every installer `make dist` left there;
                                                        `make smoke` runs this)

An ARTIFACT is a bundle folder (dist/flowork, an unpacked .tar.gz, Flowork.app), a
flowork-engine executable, or an installer: the .tar.gz and the .deb are unpacked (the .deb with
`dpkg-deb -x`, nothing is installed), the .dmg is attached read-only with hdiutil, and
Flowork-Setup-*.exe is installed silently into a temporary folder and uninstalled afterwards.

For each one it starts that bundle's flowork-engine on an ephemeral port with a generated owner
key and temporary folders, and nothing of this repository on its path; sends the GUI's opening
burst of 10 frames (protocol.md section 1) signed by that key through engine.client; checks the
10 typed replies, the engine_status_update that follows, and that a frame signed by another key
is refused; then stops it (SIGTERM, which must end it with exit code 0; on Windows, where no
signal reaches a console program from outside, the process is terminated). The engine's output
is printed when something fails. Exit code 0 when every artifact passed.

Plain Python (no shell), so that the release workflow runs it on Linux, macOS and Windows alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from eth_account import Account  # noqa: E402

from engine.client import EngineClient  # noqa: E402
from tests.output_process import OutputProcess  # noqa: E402

IS_WINDOWS = sys.platform == "win32"
ENGINE_EXE = "flowork-engine.exe" if IS_WINDOWS else "flowork-engine"
# Where a bundle keeps the engine, relative to the folder an artifact unpacks or mounts to.
ENGINE_PLACES = (ENGINE_EXE, f"*/{ENGINE_EXE}", f"opt/flowork/{ENGINE_EXE}",
                 f"Contents/MacOS/{ENGINE_EXE}", f"*.app/Contents/MacOS/{ENGINE_EXE}")
# What `make dist` leaves in dist/ (installer/linux, installer/macos, installer/windows).
INSTALLER_PATTERNS = ("flowork_*.deb", "flowork-*-linux-*.tar.gz", "Flowork-*-macos-*.dmg",
                      "Flowork-Setup-*.exe")

# The web GUI's first frames after the socket opens, and the reply type each must get.
OPENING_BURST: list[tuple[str, dict[str, Any], str]] = [
    ("request_settings", {}, "settings_response"),
    ("request_variables", {}, "variables_response"),
    ("request_presets_list", {}, "presets_list_response"),
    ("request_prompts_list", {}, "prompts_list_response"),
    ("request_datasets_list", {}, "datasets_list_response"),
    ("request_local_models", {}, "local_models_response"),
] + [("request_components_list", {"component_type": kind}, "components_list_response")
     for kind in ("modules", "plugins", "tools", "triggers")]
STATUS_FIELDS = {"engineId", "isBusy", "cpuPercent", "memoryPercent"}


class SmokeError(Exception):
    """The artifact failed the smoke test; the text says how."""


def project_version() -> str:
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["version"])


# -- the check over the wire --------------------------------------------------------------------

def burst_label(msg_type: str, fields: dict[str, Any]) -> str:
    return f"{msg_type}({fields['component_type']})" if "component_type" in fields else msg_type


def burst_problems(replies: list[Any]) -> list[str]:
    """What is wrong with the replies to OPENING_BURST (in its order); empty when all is well."""
    problems = []
    for (msg_type, fields, expected), reply in zip(OPENING_BURST, replies, strict=True):
        label = burst_label(msg_type, fields)
        if isinstance(reply, BaseException):
            problems.append(f"{label}: no reply ({type(reply).__name__}: {reply})")
        elif reply.get("type") != expected or reply.get("error"):
            problems.append(f"{label}: expected a {expected}, got {str(reply)[:300]}")
        elif fields.get("component_type") == "modules" and not reply.get("components"):
            problems.append(f"{label}: no modules listed: the built-in components are missing")
    return problems


async def opening_burst(client: EngineClient, *, timeout: float) -> list[Any]:
    """Send the 10 frames back to back, as the GUI does, and gather their replies (or errors)."""
    return await asyncio.gather(*(client.request(msg_type, check=False, timeout=timeout, **fields)
                                  for msg_type, fields, _ in OPENING_BURST), return_exceptions=True)


async def check_engine(url: str, owner_key: str, stranger_key: str, *, timeout: float) -> list[str]:
    """Every problem seen: the burst's replies, the status update, a stranger's refusal."""
    engine_id = parse_qs(urlsplit(url).query).get("engineId", [""])[0]
    async with await EngineClient.connect(url, owner_key) as client:
        replies = await opening_burst(client, timeout=timeout)
        problems = burst_problems(replies)
        if len(problems) == len(OPENING_BURST):  # nothing accepted: no status will follow
            return problems + ["so no engine_status_update either"]
        try:
            status = await client.next_event("engine_status_update", timeout=timeout)
        except TimeoutError:
            problems.append(f"no engine_status_update within {timeout:.0f} s")
        else:
            if status.get("engineId") != engine_id or not STATUS_FIELDS <= set(status) or "error" in status:
                problems.append(f"engine_status_update not as the GUI reads it: {str(status)[:300]}")
    async with await EngineClient.connect(url, stranger_key) as stranger:
        reply = await stranger.request("request_settings", check=False, timeout=timeout)
        if "not authorized for engine" not in str(reply.get("error", "")):
            problems.append(f"a frame signed by a stranger was not refused: {str(reply)[:300]}")
    return problems


# -- running one bundle's engine ----------------------------------------------------------------

def engine_env(home: Path) -> dict[str, str]:
    """The bundle's environment: a fresh home, no keyring to reach (secrets go to a 0600 file),
    and nothing of this Python's setup, so that a module missing from the bundle cannot be found
    in the repository instead."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "QT_", "XDG_", "FLOWORK_")) and k != "DBUS_SESSION_BUS_ADDRESS"}
    env.update(HOME=str(home), USERPROFILE=str(home), APPDATA=str(home / "AppData" / "Roaming"),
               LOCALAPPDATA=str(home / "AppData" / "Local"), XDG_CONFIG_HOME=str(home / "config"),
               XDG_DATA_HOME=str(home / "data"), XDG_STATE_HOME=str(home / "state"),
               XDG_CACHE_HOME=str(home / "cache"), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    return env


def smoke_engine(engine: Path, work: Path, *, version: str, timeout: float) -> str:
    """Run one engine through the check; a one-line summary, or SmokeError."""
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = engine_env(home)
    try:
        shown = subprocess.run([str(engine), "--version"], capture_output=True, text=True, env=env,
                               cwd=work, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SmokeError(f"{engine} does not run: {exc}") from exc
    if shown.stdout.split() != ["flowork-engine", version]:
        raise SmokeError(f"{engine} --version says {(shown.stdout + shown.stderr).strip()!r}, "
                         f"expected 'flowork-engine {version}' (a stale build?)")
    owner, stranger = Account.create(), Account.create()
    started = time.monotonic()
    process = OutputProcess([str(engine), "--port", "0", "--webhook-port", "0", "--owner", owner.address,
                             "--data-dir", str(work / "data"), "--log-dir", str(work / "log")], env, work)
    try:
        try:
            url = process.wait_for(r"Web GUI URL: (\S+)", timeout=timeout).group(1)
        except AssertionError as exc:
            code = process.proc.poll()
            state = f"exited with code {code}" if code is not None else f"printed no URL within {timeout:.0f} s"
            raise SmokeError(f"{engine} {state}:\n{process.output()}") from exc
        problems = asyncio.run(check_engine(url, owner.key.hex(), stranger.key.hex(), timeout=timeout))
    except SmokeError:
        raise
    except Exception as exc:  # a refused handshake, a dropped connection: say so, with the output
        raise SmokeError(f"could not talk to {engine}: {type(exc).__name__}: {exc}\n{process.output()}") from exc
    finally:
        code = process.stop(timeout=timeout)
    if problems:
        raise SmokeError("\n".join(problems) + f"\n-- engine output --\n{process.output()}")
    if IS_WINDOWS:
        ending = "terminated"
    elif code != 0:
        raise SmokeError(f"{engine} did not stop cleanly on SIGTERM (exit code {code}):\n{process.output()}")
    else:
        ending = "stopped cleanly on SIGTERM"
    return (f"flowork-engine {version} answered the {len(OPENING_BURST)}-frame opening burst with typed "
            f"replies, sent engine_status_update, refused a stranger, {ending} "
            f"({time.monotonic() - started:.1f} s)")


# -- getting at the engine inside an artifact ---------------------------------------------------

def find_engine(root: Path) -> Path:
    for pattern in ENGINE_PLACES:
        found = sorted(p for p in root.glob(pattern) if p.is_file())
        if found:
            return found[0]
    raise SmokeError(f"no {ENGINE_EXE} in {root}")


def run_tool(cmd: list[str] | str, what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise SmokeError(f"{what} failed ({result.returncode}): {result.stdout}{result.stderr}")


@contextlib.contextmanager
def attached_dmg(dmg: Path, mountpoint: Path) -> Iterator[Path]:
    mountpoint.mkdir()
    run_tool(["hdiutil", "attach", "-readonly", "-nobrowse", "-noautoopen",
              "-mountpoint", str(mountpoint), str(dmg)], f"hdiutil attach {dmg.name}")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["hdiutil", "detach", str(mountpoint)], capture_output=True).returncode != 0:
            subprocess.run(["hdiutil", "detach", "-force", str(mountpoint)], capture_output=True)


@contextlib.contextmanager
def installed_setup(setup: Path, target: Path) -> Iterator[Path]:
    """Flowork-Setup-*.exe installed silently into `target` (NSIS: /S, and /D= last, unquoted),
    then uninstalled in place (`_?=` makes the uninstaller wait instead of copying itself away)."""
    run_tool(f'"{setup}" /S /D={target}', f"silent install of {setup.name}")
    try:
        yield target
    finally:
        uninstaller = target / "Uninstall Flowork.exe"
        if uninstaller.exists():
            subprocess.run(f'"{uninstaller}" /S _?={target}', capture_output=True, timeout=600)


@contextlib.contextmanager
def engine_in(artifact: Path, work: Path) -> Iterator[Path]:
    """The flowork-engine of an artifact, unpacked, mounted or installed under `work`."""
    name = artifact.name
    if artifact.is_dir():
        yield find_engine(artifact)
    elif name.endswith(".tar.gz"):
        with tarfile.open(artifact) as tar:  # "tar": keep the modes, refuse paths outside
            tar.extractall(work / "unpacked", **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
        yield find_engine(work / "unpacked")
    elif name.endswith(".deb"):
        run_tool(["dpkg-deb", "-x", str(artifact), str(work / "unpacked")], f"dpkg-deb -x {name}")
        yield find_engine(work / "unpacked")
    elif name.endswith(".dmg"):
        with attached_dmg(artifact, work / "mnt") as mounted:
            yield find_engine(mounted)
    elif name.lower().endswith(".exe") and name.startswith("Flowork-Setup"):
        with installed_setup(artifact, work / "installed") as folder:
            yield find_engine(folder)
    elif artifact.is_file():
        yield artifact
    else:
        raise SmokeError(f"{artifact} does not exist")


def installers_in(folder: Path) -> list[Path]:
    found = sorted({p for pattern in INSTALLER_PATTERNS for p in folder.glob(pattern)})
    if not found:
        raise SmokeError(f"no installers in {folder} ({', '.join(INSTALLER_PATTERNS)}): run make dist first")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smoke_bundle.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("artifacts", nargs="*", type=Path, help="bundle folders, engine executables or installers")
    parser.add_argument("--installers", type=Path, metavar="DIR", help="also every installer in DIR")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for each step (default 120: a first start may be slow)")
    parser.add_argument("--expect-version", default=None,
                        help="the version the engine must report (default: pyproject.toml's)")
    args = parser.parse_args(argv)
    version = args.expect_version or project_version()
    try:
        artifacts = list(args.artifacts) + (installers_in(args.installers) if args.installers else [])
    except SmokeError as exc:
        print(f"smoke: {exc}", file=sys.stderr)
        return 1
    if not artifacts:
        parser.error("name at least one artifact, or --installers DIR")
    failed = 0
    for artifact in artifacts:
        work = Path(tempfile.mkdtemp(prefix="flowork-smoke-"))
        try:
            with engine_in(artifact.resolve(), work) as engine:
                print(f"smoke: ok   {artifact}: {smoke_engine(engine, work, version=version, timeout=args.timeout)}",
                      flush=True)
        except SmokeError as exc:
            failed += 1
            print(f"smoke: FAIL {artifact}: {exc}", file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
