"""Every benchmark script runs in its quick mode and prints its table, so the scripts never rot.

This checks that they run and report, not their numbers: timings on a shared CI machine are
noise (bench/RESULTS.md holds real runs, each against a baseline measured in the same run).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.run import SCRIPTS
from tests.conftest import REPO_ROOT

TABLE_HEADER = "| metric | engine | baseline | ratio | target | verdict |"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_quick_mode_runs_and_prints_its_table(script: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("FLOWORK_BENCH_PROFILE", None)
    proc = subprocess.run([sys.executable, "-m", f"bench.{script}", "--quick"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    lines = proc.stdout.splitlines()
    assert any(line.startswith("### ") for line in lines), proc.stdout
    assert TABLE_HEADER in lines, proc.stdout
    rows = lines[lines.index(TABLE_HEADER) + 2:]
    assert rows and rows[0].startswith("| ") and rows[0].count("|") == 7, proc.stdout
    assert "Traceback" not in proc.stdout


def test_the_runner_lists_every_script_in_the_folder() -> None:
    found = {p.stem for p in (REPO_ROOT / "bench").glob("bench_*.py")}
    assert found == set(SCRIPTS)
