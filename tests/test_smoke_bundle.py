"""scripts/smoke_bundle.py, the release workflow's smoke test, run as the workflow runs it
against stand-in bundles whose flowork-engine is the engine from this source tree: it passes
on a good one and fails, saying why, on one that refuses its owner, dies at start or is stale.
The real bundle and packages go through it in test_packaging_linux.py."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from eth_account import Account

from tests.conftest import REPO_ROOT

SMOKE = REPO_ROOT / "scripts" / "smoke_bundle.py"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the stand-in engines are POSIX scripts")


def stand_in(folder: Path, body: str) -> Path:
    """A bundle folder whose flowork-engine runs `body` (Python, with sys.argv as given)."""
    folder.mkdir(parents=True)
    exe = folder / "flowork-engine"
    exe.write_text(f"#!{sys.executable}\nimport os, sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\n{body}\n")
    exe.chmod(0o755)
    return folder


REAL_ENGINE = "from engine.cli import main\nraise SystemExit(main(sys.argv[1:]))"


def smoke(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SMOKE), "--timeout", "60", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_a_bundle_whose_engine_answers_passes(tmp_path: Path) -> None:
    bundle = stand_in(tmp_path / "flowork", REAL_ENGINE)
    tarball = tmp_path / "dist" / "flowork-1.0-linux-x86_64.tar.gz"
    tarball.parent.mkdir()
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(bundle, arcname="flowork-1.0")
    result = smoke(bundle, bundle / "flowork-engine", "--installers", tarball.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("smoke: ok") for line in lines), result.stdout
    assert "10-frame opening burst" in lines[0] and "stopped cleanly on SIGTERM" in lines[0]


def test_an_engine_that_serves_someone_else_fails(tmp_path: Path) -> None:
    # It drops the owner it is given and serves another address: every frame is refused.
    other = Account.create().address
    bundle = stand_in(tmp_path / "flowork", f"args = sys.argv[1:]\nif '--owner' in args:\n    args[args.index('--owner') + 1] = {other!r}\n"
                                            "from engine.cli import main\nraise SystemExit(main(args))")
    result = smoke(bundle)
    assert result.returncode == 1 and "smoke: FAIL" in result.stderr
    assert "request_settings: expected a settings_response" in result.stderr
    assert "request_components_list(triggers)" in result.stderr and "not authorized" in result.stderr
    assert "-- engine output --" in result.stderr and "Web GUI URL" in result.stderr


def test_an_engine_that_dies_at_start_fails_with_its_output(tmp_path: Path) -> None:
    bundle = stand_in(tmp_path / "flowork", "if '--version' in sys.argv:\n    print('flowork-engine', "
                      "__import__('engine').__version__)\n    raise SystemExit(0)\n"
                      "print('cannot open the data folder', flush=True)\nraise SystemExit(3)")
    result = smoke(bundle)
    assert result.returncode == 1
    assert "exited with code 3" in result.stderr and "cannot open the data folder" in result.stderr


def test_a_stale_bundle_fails_and_missing_installers_are_named(tmp_path: Path) -> None:
    bundle = stand_in(tmp_path / "flowork", REAL_ENGINE)
    result = smoke(bundle, "--expect-version", "99.0")
    assert result.returncode == 1 and "expected 'flowork-engine 99.0' (a stale build?)" in result.stderr
    (tmp_path / "empty").mkdir()
    result = smoke("--installers", tmp_path / "empty")
    assert result.returncode == 1 and "no installers in" in result.stderr and "make dist" in result.stderr
    result = smoke(tmp_path / "no-such-artifact")
    assert result.returncode == 1 and "does not exist" in result.stderr
