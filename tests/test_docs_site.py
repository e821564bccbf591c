"""The documentation site builds offline with warnings as errors, and its references are real.

One strict build of the whole site (``mkdocs.yml``: user guide, CLI reference from the
argparse parsers, API reference from the docstrings; about 40-60 s on 2 busy cores), then
checks on what it wrote; and a throwaway project shows that a broken link or an unparsable
docstring fails a strict build rather than passing with a warning.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_MISSING = [
    name for name in ("mkdocs", "mkdocstrings_handlers.python", "material") if importlib.util.find_spec(name) is None
]
pytestmark = pytest.mark.skipif(bool(_MISSING), reason=f"docs tools not installed (docs extra): {', '.join(_MISSING)}")


def _mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)]
    return subprocess.run(cmd, cwd=config.parent, capture_output=True, text=True, timeout=600, env=env)


def _text(page: Path) -> str:
    """The visible text of a built page, tags removed, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8"))).split())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = _mkdocs_build(REPO / "mkdocs.yml", out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def _public_modules() -> list[str]:
    sys.path.insert(0, str(REPO / "docs"))
    try:
        import hooks  # docs/hooks.py, the generator the build uses
    finally:
        sys.path.pop(0)
    return hooks.public_modules()


def test_every_public_module_has_an_api_page(site: Path) -> None:
    package = REPO / "src" / "emovox"
    expected = set()
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if not any(p.startswith("_") for p in parts) and parts[:2] != ("emovox", "cli"):
            expected.add(".".join(parts))
    assert set(_public_modules()) == expected
    missing = [name for name in sorted(expected) if not (site / "api" / name / "index.html").is_file()]
    assert not missing, f"public modules without an API page: {missing}"


def test_key_api_pages_carry_signatures_and_docstrings(site: Path) -> None:
    predictor = _text(site / "api" / "emovox.inference.predictor" / "index.html")
    assert re.search(r"Predictor\(\s?backend: Backend, info: ModelInfo, \*, min_confidence: float \| None", predictor)
    assert "predict_timeline" in predictor and "A model plus its calibration" in predictor
    assert ":meth:" not in predictor and ":class:" not in predictor  # Sphinx roles became links
    experiment = _text(site / "api" / "emovox.evaluation.experiment" / "index.html")
    assert "emovox.evaluation.experiment" in experiment
    assert "Parameters" in experiment and "run_experiment" in experiment
    top = _text(site / "api" / "emovox" / "index.html")
    assert "load_model" in top


def test_cli_page_is_every_parser_help(site: Path) -> None:
    cli = _text(site / "cli" / "index.html")
    for command in ("predict", "listen", "serve", "batch", "evaluate", "train", "export", "corpus stats"):
        assert f"usage: emovox {command}" in cli, command
    for option in ("--corpus NAME", "--protocol", "--with-random", "--test-corpus NAME"):
        assert option in cli, option


def test_user_guide_pages_are_built(site: Path) -> None:
    for page in sorted((REPO / "docs").glob("*.md")):
        assert (site / ("" if page.stem == "index" else page.stem) / "index.html").is_file(), page.name


@pytest.mark.parametrize("breakage", ["link", "docstring"])
def test_a_broken_reference_fails_the_strict_build(tmp_path: Path, breakage: str) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text('"""A package."""\n')
    (tmp_path / "pkg" / "mod.py").write_text(
        "def f(x: int) -> int:\n"
        '    """Double.\n\n    Parameters\n    ----------\n    x : int\n        A number.\n\n'
        + ('    Call it with a number: x is doubled.\n    """\n' if breakage == "docstring" else '    """\n')
        + "    return 2 * x\n"
    )
    link = "[gone](missing.md)" if breakage == "link" else "[fine](index.md)"
    (tmp_path / "docs" / "index.md").write_text(f"# Home\n\nSee {link}.\n\n::: pkg.mod\n")
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\ntheme:\n  name: material\n  font: false\nplugins:\n  - mkdocstrings:\n"
        "      handlers:\n        python:\n          paths: [.]\n          inventories: []\n"
        "          options:\n            docstring_style: numpy\n"
    )
    result = _mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0, result.stdout + result.stderr
    assert ("missing.md" if breakage == "link" else "does not appear in the function signature") in result.stderr
