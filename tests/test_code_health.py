"""The code-health guards bite: ruff and mypy, run with the project's own configuration,
fail on a throwaway file with a violation and pass where there is none; CI runs them
before the tests and pre-commit runs the same checks without the network. The import
graph of ``src/emovox`` has no circle, between packages or between modules, and its
packages import only the layers below them (docs/design.md, "Layers").

mypy over the whole package is CI's `make typecheck`, not this test (it takes a minute)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from collections.abc import Iterable
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


# ---------------------------------------------------------------------- the import graph
SRC = REPO / "src"
#: docs/design.md "Layers", bottom up: a package imports only packages of its rank or below
#: (and never in a circle). The root package (``emovox/__init__.py``: ``load_model``) sits
#: above ``inference``; ``testing`` (tests' helpers) above ``models``.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "_version", "registry", "fileio", "labels", "palette"),
    ("audio",),
    ("corpora",),
    ("features", "augment"),
    ("models",),
    ("inference", "testing"),
    ("",),
    ("evaluation",),
    ("training",),
    ("export",),
    ("recipes",),
    ("batch",),
    ("service",),
    ("cli",),
)


def _module_names() -> dict[str, Path]:
    names = {}
    for path in (SRC / "emovox").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(nodes: Iterable[ast.AST], module: str, is_package: bool) -> list[str]:
    """Every module name the import statements in or under ``nodes`` name (``if TYPE_CHECKING:`` bodies skipped)."""
    found: list[str] = []
    for node in nodes:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            found += _imported(node.orelse, module, is_package)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package, one level up per extra dot
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            found += [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            found += _imported(ast.iter_child_nodes(node), module, is_package)
    return found


def _import_graph(*, packages: bool) -> dict[str, set[str]]:
    """``src/emovox``'s imports (function-level included), between modules or between packages."""
    modules = _module_names()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = _imported([tree], module, path.name == "__init__.py")
        graph[module] = {t for t in targets if t in modules and t != module}
    if not packages:
        return graph

    def package(name: str) -> str:
        return ".".join(name.split(".")[:2])

    grouped: dict[str, set[str]] = {package(m): set() for m in graph}
    for module, targets in graph.items():
        grouped[package(module)] |= {package(t) for t in targets if package(t) != package(module)}
    return grouped


def _a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` as ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_import_graph_finds_what_it_should() -> None:
    graph = _import_graph(packages=False)
    assert "emovox.evaluation.metrics" in graph["emovox.evaluation.workbench_models"]
    assert "emovox.inference.adaptation" in graph["emovox.recipes.whisper"]  # an import inside a function
    assert "emovox.inference.predictor" not in graph["emovox"]  # only under `if TYPE_CHECKING:`
    assert _a_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _a_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_between_packages() -> None:
    cycle = _a_cycle(_import_graph(packages=True))
    assert cycle is None, "package import circle: " + " -> ".join(cycle or [])


def test_no_import_circle_between_modules() -> None:
    cycle = _a_cycle(_import_graph(packages=False))
    assert cycle is None, "module import circle: " + " -> ".join(cycle or [])


def test_packages_import_only_the_layers_below() -> None:
    rank = {("emovox." + name).rstrip("."): i for i, layer in enumerate(LAYERS) for name in layer}
    graph = _import_graph(packages=True)
    assert set(graph) <= set(rank), f"packages missing from LAYERS: {sorted(set(graph) - set(rank))}"
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if rank[b] > rank[a])
    assert not upward, "imports pointing up a layer: " + "; ".join(upward)
