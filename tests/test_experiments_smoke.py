"""The research scripts in ``experiments/`` keep working as the library changes.

Every script is imported (so a renamed or removed library name fails here, not
months later in a research session) and run with ``--help`` (its argument
parser is built). The rules of ``experiments/README.md`` are checked too: no
private library names, no fixed ``/tmp`` paths, a ``main(argv)`` entry point.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
SCRIPTS = sorted(EXPERIMENTS.rglob("*.py"))


def _script_id(path: Path) -> str:
    return path.relative_to(EXPERIMENTS).as_posix()


def _import(path: Path) -> ModuleType:
    name = "experiments_smoke_" + _script_id(path).removesuffix(".py").replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved_path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved_path  # scripts may prepend bench/ to sys.path: do not leak it
    return module


def test_there_are_scripts_to_check() -> None:
    assert SCRIPTS, f"no scripts under {EXPERIMENTS}: the smoke test would check nothing"


@pytest.mark.parametrize("path", SCRIPTS, ids=_script_id)
def test_script_imports_and_prints_help(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = _import(path)
    assert callable(getattr(module, "main", None)), f"{_script_id(path)} has no main(argv)"
    with pytest.raises(SystemExit) as stop:
        module.main(["--help"])
    assert stop.value.code == 0
    assert "usage:" in capsys.readouterr().out


def _private(name: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in name.split("."))


def test_the_private_name_rule_tells_private_from_public() -> None:
    assert _private("emovox.models.whisper_classifier._fit")
    assert _private("emovox._internal")
    assert not _private("emovox.evaluation.metrics")
    assert not _private("__future__")


@pytest.mark.parametrize("path", SCRIPTS, ids=_script_id)
def test_script_uses_only_public_names_and_no_fixed_tmp(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert "/tmp" not in source, f"{_script_id(path)}: take output and cache folders from arguments, not /tmp"
    private = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            names = [f"{node.module or ''}.{a.name}" for a in node.names]
            private += [name for name in names if _private(name)]
        elif isinstance(node, ast.Import):
            private += [a.name for a in node.names if _private(a.name)]
    assert not private, f"{_script_id(path)} imports private names: {private}"
