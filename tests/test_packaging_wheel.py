"""A plain (non-editable) install must carry the built-in components: their folders are not
Python packages, so only the package-data globs in pyproject.toml put them in the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from engine.components.catalog import BUILTIN_DIR

REPO = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_every_builtin_component(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                    str(tmp_path), str(REPO)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("flowork_desktop-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {str(p.relative_to(REPO)).replace("\\", "/")
                for p in BUILTIN_DIR.rglob("*") if p.suffix in {".json", ".py"}
                and "__pycache__" not in p.parts}
    assert any(name.endswith("/module.py") for name in expected)
    assert expected <= names, sorted(expected - names)
