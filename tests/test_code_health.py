"""The code-health guards bite: ruff and mypy, run with the project's own configuration,
fail on a throwaway file with a violation and pass where there is none; CI runs them
before the tests and pre-commit runs the same checks without the network.

mypy over the whole package is CI's `make typecheck`, not this test (it takes a minute)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"

needs_ruff = pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed (dev extra)")
needs_mypy = pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed (dev extra)")


def _run(tool: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", tool, *(str(a) for a in args)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


@needs_ruff
def test_ruff_rejects_an_unused_import(tmp_path: Path) -> None:
    bad = tmp_path / "unused_import.py"
    bad.write_text('import os\n\n\ndef greet() -> str:\n    return "hello"\n')
    out = _run("ruff", "check", "--no-cache", "--config", PYPROJECT, bad, cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "F401" in out.stdout


@needs_ruff
def test_ruff_rejects_unformatted_code(tmp_path: Path) -> None:
    bad = tmp_path / "unformatted.py"
    bad.write_text("def greet( name ):\n    return 'hello '+name\n")
    out = _run("ruff", "format", "--check", "--no-cache", "--config", PYPROJECT, bad, cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr


@needs_ruff
def test_the_repository_is_ruff_clean() -> None:
    out = _run("ruff", "check", "--no-cache", ".", cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr


@needs_mypy
def test_mypy_rejects_a_type_error_and_passes_clean_code(tmp_path: Path) -> None:
    bad = tmp_path / "type_error.py"
    bad.write_text('def count() -> int:\n    return "three"\n')
    good = tmp_path / "typed.py"
    good.write_text("def count() -> int:\n    return 3\n")
    common = ("--config-file", PYPROJECT, "--cache-dir", tmp_path / "mypy_cache")
    out = _run("mypy", *common, bad, cwd=tmp_path)
    # 1: type errors found (2 would be a usage or configuration error)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "[return-value]" in out.stdout
    out = _run("mypy", *common, good, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ci_runs_the_checks_before_the_tests() -> None:
    lines = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines()]
    assert lines.index("make lint typecheck docs") < lines.index("make test")
    makefile = (REPO / "Makefile").read_text()
    for target in ("lint:", "format:", "typecheck:", "docs:", "check:", "test:"):
        assert f"\n{target}" in makefile


def test_pre_commit_hooks_need_no_network() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (comes with pre-commit)")
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    assert {repo["repo"] for repo in config["repos"]} == {"local"}
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert {hook["language"] for hook in hooks} == {"system"}
    entries = " | ".join(hook["entry"] for hook in hooks)
    assert "ruff check" in entries and "ruff format --check" in entries and "mypy" in entries
