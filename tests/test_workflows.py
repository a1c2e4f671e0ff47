"""The GitHub workflows, checked here since GitHub runs them only after a push: jactionlint (a
fork of actionlint that ships its binary in its wheel, with shellcheck over the run: steps
where it is installed) passes over .github/workflows, it does fail on real mistakes, and every
make target and repository file a workflow calls exists."""

from __future__ import annotations

import glob
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.conftest import REPO_ROOT, require_tool

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
LINT_CONFIG = REPO_ROOT / ".github" / "jactionlint.yaml"
# Top-level folders whose files are committed: a path into one of them must exist.
NOT_SOURCE = {".git", ".venv", "build", "dist", "artifacts", ".pytest_cache", ".hypothesis", "__pycache__"}
SOURCE_DIRS = sorted(d.name for d in REPO_ROOT.iterdir()
                     if d.is_dir() and d.name not in NOT_SOURCE and not d.name.endswith(".egg-info"))
PATH_TOKEN = re.compile(r"(?<![\w.$/\\-])(?:\./)?((?:%s)/[\w.*?/-]*[\w*])" % "|".join(map(re.escape, SOURCE_DIRS)))
COMMAND_SPLIT = re.compile(r"&&|\|\||[;|]|\$\(|`")


def workflow_files() -> list[Path]:
    files = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
    assert {p.name for p in files} >= {"ci.yml", "release.yml"}
    return files


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as true
        data["on"] = data.pop(True)
    return data


def jactionlint(*args: str | Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("jactionlint.exe" if sys.platform == "win32" else "jactionlint")
    found = str(exe) if exe.exists() else shutil.which("jactionlint")
    if found is None:
        pytest.fail("jactionlint is missing: the test extra brings it (make venv)")
    return subprocess.run([found, "--no-color", "--no-online", "-c", str(LINT_CONFIG), *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


# -- lint ----------------------------------------------------------------------------------------

def test_workflows_pass_jactionlint() -> None:
    result = jactionlint(*workflow_files())
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def broken_copy(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    text = (WORKFLOWS / "release.yml").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    broken = tmp_path / ".github" / "workflows" / "release.yml"
    broken.write_text(text)
    return broken


def test_jactionlint_fails_on_real_mistakes(tmp_path: Path) -> None:
    broken = broken_copy(tmp_path,
                         ("needs: [version, linux, windows, macos]", "needs: [version, linux, windows, mac]"),
                         ("name: installers-macos-${{ matrix.arch }}", "name: installers-macos-${{ matrix.arch_name }}"),
                         ("secrets.WINDOWS_CERTIFICATE_PASSWORD", "secrets.WINDOWS_CERTIFICATE_PASWORD"),
                         ("runs-on: windows-latest", "runs-on: windows-lastest"))
    result = jactionlint(broken, cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    for what in ('"mac"', "arch_name", "WINDOWS_CERTIFICATE_PASWORD", "windows-lastest"):
        assert what in result.stdout, f"jactionlint said nothing about {what}:\n{result.stdout}"


def test_shellcheck_checks_the_run_steps(tmp_path: Path) -> None:
    require_tool("shellcheck")
    broken = broken_copy(tmp_path, ("run: make smoke", "run: cd $RUNNER_TEMP/somewhere; make smoke"))
    result = jactionlint(broken, cwd=tmp_path)
    assert result.returncode != 0 and "shellcheck" in result.stdout and "SC2086" in result.stdout, result.stdout


# -- what the workflows call ---------------------------------------------------------------------

def run_scripts(workflow: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(job id, run: text) of every step."""
    for job_id, job in (workflow.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            if "run" in step:
                yield job_id, str(step["run"])


def make_targets() -> set[str]:
    rules = re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE)
    return set(rules) - {".PHONY"}


def calls(script: str) -> Iterator[tuple[str, str]]:
    """("make", target) and ("file", path) for what a run: script calls in the repository."""
    text = script.replace("\\\n", " ")
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for command in COMMAND_SPLIT.split(line):
            try:
                words = shlex.split(command, comments=True)
            except ValueError:
                words = command.split()
            if words and words[0] == "make":
                yield from (("make", w) for w in words[1:] if not w.startswith("-") and "=" not in w)
        for path in PATH_TOKEN.findall(line):
            yield "file", path


def missing_calls(workflow: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(what a workflow calls that is missing, everything it calls), as readable strings."""
    targets, missing, seen = make_targets(), [], []
    for job_id, script in run_scripts(workflow):
        for kind, name in calls(script):
            seen.append(f"{kind} {name}")
            if kind == "make" and name not in targets:
                missing.append(f"job {job_id}: make {name} (no such target in the Makefile)")
            elif kind == "file" and not glob.glob(str(REPO_ROOT / name)):
                missing.append(f"job {job_id}: {name} (no such file in the repository)")
    return missing, seen


def test_every_make_target_and_file_a_workflow_calls_exists() -> None:
    seen: list[str] = []
    for path in workflow_files():
        missing, called = missing_calls(load(path))
        assert not missing, f"{path.name}:\n" + "\n".join(missing)
        seen += called
    # The checker found what the workflows do call (it cannot pass by finding nothing).
    assert {"make test", "make dist", "make smoke", "make venv", "file .ci/run",
            "file scripts/sign-windows.ps1", "file installer/pyinstaller"} <= set(seen), seen


def test_the_call_check_names_what_is_missing() -> None:
    workflow = {"jobs": {"build": {"steps": [
        {"run": "choco install make nsis --no-progress -y\nmake venv && make no-such-target V=1"},
        {"run": "bash scripts/no-such-script.sh --flag\n.venv/bin/python scripts/smoke_bundle.py dist"},
        {"uses": "actions/checkout@v6"},
        {"run": 'x=$(python3 -c "import sys; sys.path.insert(0, \'installer/no-such-folder\')")'},
    ]}}}
    missing, seen = missing_calls(workflow)
    assert missing == ["job build: make no-such-target (no such target in the Makefile)",
                       "job build: scripts/no-such-script.sh (no such file in the repository)",
                       "job build: installer/no-such-folder (no such file in the repository)"]
    assert "make nsis" not in seen and "file scripts/smoke_bundle.py" in seen


# -- what the release workflow promises ----------------------------------------------------------

def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) + " " + str(step.get("uses", "")) for step in job["steps"])


def test_release_builds_tests_and_smoke_tests_each_os_from_one_tag() -> None:
    release = load(WORKFLOWS / "release.yml")
    assert release["on"]["push"]["tags"] == ["v*"] and "workflow_dispatch" in release["on"]
    assert release["permissions"] == {"contents": "read"}
    jobs = release["jobs"]
    runners = {"linux": "ubuntu-24.04", "windows": "windows-latest", "macos": "${{ matrix.runner }}"}
    for name, runner in runners.items():
        job, text = jobs[name], steps_text(jobs[name])
        assert job["runs-on"] == runner and job["needs"] == "version"
        assert ("python:3.11" in str(job.get("container")) or
                any(s.get("with", {}).get("python-version") == "3.11" for s in job["steps"])), name
        for command in ("make test", "make dist", "make smoke", "actions/upload-artifact@"):
            assert command in text, f"job {name} lacks {command}"
        # Tested, then built, then the build smoke-tested, then uploaded: in that order.
        order = [text.index(c) for c in ("make test", "make dist", "make smoke", "actions/upload-artifact@")]
        assert order == sorted(order), name
    assert {(e["runner"], e["arch"]) for e in jobs["macos"]["strategy"]["matrix"]["include"]} == \
        {("macos-15", "arm64"), ("macos-15-intel", "x86_64")}
    assert jobs["release"]["needs"] == ["version", "linux", "windows", "macos"]
    assert jobs["release"]["permissions"] == {"contents": "write"}
    assert "sha256sum" in steps_text(jobs["release"]) and "--draft" in steps_text(jobs["release"])


def test_every_secret_the_workflows_use_is_named_in_the_readme() -> None:
    used = set()
    for path in workflow_files():
        used |= set(re.findall(r"secrets\.([A-Z0-9_]+)", path.read_text()))
    assert used, "no secrets found: the signing steps are gone?"
    readme = (REPO_ROOT / "README.md").read_text()
    assert not [name for name in sorted(used) if f"`{name}`" not in readme]
    assert sorted(used) == sorted(yaml.safe_load(LINT_CONFIG.read_text())["config-secrets"])
