"""MkDocs hooks: generate the API and CLI reference pages at build time.

Nothing here is hand-maintained, so neither reference can drift from the code:

* ``on_config`` walks ``src/emovox`` and adds one API page per public module
  (no path component starting with ``_``; ``emovox.cli`` is covered by the CLI
  page instead) to the "API reference" section of the nav, grouped by
  sub-package. A new module gets its page without anyone editing ``mkdocs.yml``.
* ``on_files`` adds those pages (each a ``::: emovox.x.y`` mkdocstrings block)
  and ``cli.md``, written from ``emovox.cli.main.build_parser()``: the ``--help``
  of ``emovox`` and of every sub-command, sub-sub-commands included.
* ``RstRoles`` (a griffe extension, named in ``mkdocs.yml``) turns the Sphinx
  roles the docstrings use (``:class:`~emovox.x.Y```, ``:func:``, ``:meth:``,
  ``:attr:``, ``:data:``, ``:mod:``) into cross-references, resolved in the
  docstring's own scope (a target with no page stays plain code, silently), and
  fences ``>>>`` sessions as code, and reads an attribute's ``#:`` comment as
  its docstring; the sources keep their RST-flavoured text.

Hooks are loaded by path (``hooks:`` in ``mkdocs.yml``); this file is excluded
from the built site.
"""

from __future__ import annotations

import argparse
import html
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import griffe
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / "src" / "emovox"
API_DIR = "api"
CLI_PAGE = "cli.md"
#: Packages documented elsewhere (the CLI page), not in the API reference.
EXCLUDED_PACKAGES = ("emovox.cli",)
#: Width the ``--help`` texts are wrapped at, whatever the terminal.
HELP_WIDTH = 90  # argparse wraps at COLUMNS - 2: 88 characters, the width of a code block


def public_modules(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Dotted names of the public modules and packages under ``package_dir``.

    A module is public when no component of its dotted name starts with ``_``;
    a package is named by its directory (its ``__init__.py``).
    """
    names = []
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if any(part.startswith("_") for part in parts):
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in path.parts):
            continue
        name = ".".join(parts)
        if any(name == pkg or name.startswith(pkg + ".") for pkg in EXCLUDED_PACKAGES):
            continue
        names.append(name)
    return sorted(set(names), key=lambda name: (name.split("."),))


def api_page(module: str) -> str:
    """Path of ``module``'s API page, relative to ``docs_dir``."""
    return f"{API_DIR}/{module}.md"


def _api_nav(modules: list[str]) -> list[Any]:
    nav: list[Any] = [{"Overview": f"{API_DIR}/index.md"}]
    groups: dict[str, list[Any]] = {}
    packages = {module for module in modules if any(m.startswith(module + ".") for m in modules)}
    for module in modules:
        parts = module.split(".")
        group = ".".join(parts[:2])
        if len(parts) == 1 or (len(parts) == 2 and group not in packages):
            nav.append({module: api_page(module)})  # emovox itself, or a top-level module
            continue
        groups.setdefault(group, []).append({module: api_page(module)})
    nav.extend({group: pages} for group, pages in groups.items())
    return nav


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    modules = public_modules()
    for entry in config.nav or []:
        if isinstance(entry, dict) and "API reference" in entry:
            entry["API reference"] = _api_nav(modules)
            break
    else:
        raise ValueError('mkdocs.yml: the nav needs an "API reference" entry for the hook to fill')
    return config


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each direct sub-command of ``parser``."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        seen: set[int] = set()
        for name, sub in action.choices.items():
            if id(sub) in seen:  # an alias
                continue
            seen.add(id(sub))
            yield name, helps.get(name, ""), sub


def _help_text(parser: argparse.ArgumentParser) -> str:
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(HELP_WIDTH)
    try:
        return parser.format_help().rstrip()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def _cli_sections(parser: argparse.ArgumentParser, level: int) -> Iterator[str]:
    for _name, summary, sub in _subcommands(parser):
        yield f"{'#' * level} `{sub.prog}`\n"
        if summary:
            yield summary[:1].upper() + summary[1:].rstrip(".") + ".\n"
        yield f"```text\n{_help_text(sub)}\n```\n"
        yield from _cli_sections(sub, level + 1)


def cli_markdown() -> str:
    """The CLI reference page: every parser's ``--help``, from the parsers themselves."""
    from emovox.cli.main import build_parser

    parser = build_parser()
    lines = [
        "# Command-line reference\n",
        "Generated at build time from `emovox.cli.main.build_parser()`: each section is the\n"
        "`--help` of one command, so this page always matches the installed `emovox`.\n"
        "See the [user guide](index.md) for what the commands are for.\n",
        "## `emovox`\n",
        f"```text\n{_help_text(parser)}\n```\n",
    ]
    lines.extend(_cli_sections(parser, 2))
    return "\n".join(lines)


def _module_markdown(module: str, modules: list[str]) -> str:
    children = [m for m in modules if m.rpartition(".")[0] == module]
    text = f"::: {module}\n"
    if children:
        links = "\n".join(f"- [`{child}`]({child}.md)" for child in children)
        text += f"\n## Modules\n\n{links}\n"
    return text


def on_files(files: Files, config: MkDocsConfig) -> Files:
    modules = public_modules()
    for module in modules:
        files.append(File.generated(config, api_page(module), content=_module_markdown(module, modules)))
    files.append(File.generated(config, CLI_PAGE, content=cli_markdown()))
    return files


_ROLE = re.compile(
    r":(?:class|func|meth|attr|data|mod|exc|obj):`(?P<tilde>~?)\.?(?P<name>[A-Za-z_][\w.]*)(?P<call>\(\))?`"
)


def _role_identifier(obj: griffe.Object, name: str) -> str:
    head, dot, rest = name.partition(".")
    try:
        return obj.resolve(head) + dot + rest
    except (griffe.NameResolutionError, AttributeError, KeyError):
        return name


def rewrite_roles(obj: griffe.Object, text: str) -> str:
    """``text`` with each Sphinx role replaced by an optional autorefs cross-reference."""

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        title = (name.rpartition(".")[2] if match["tilde"] else name) + (match["call"] or "")
        identifier = html.escape(_role_identifier(obj, name), quote=True)
        return f'<autoref identifier="{identifier}" optional><code>{html.escape(title)}</code></autoref>'

    return _ROLE.sub(replace, text)


def fence_doctests(text: str) -> str:
    """``text`` with each ``>>>`` session outside an ``Examples`` section fenced as ``pycon`` code.

    (Markdown would read ``>>>`` as nested block quotes.) A session runs to the next blank
    line. An RST ``::`` ending a paragraph before a blank line becomes ``:``, as the indented
    block that follows is already code in Markdown.
    """
    lines = text.split("\n")
    out: list[str] = []
    section = ""
    in_fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        following = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if stripped and len(following) >= 3 and set(following) == {"-"}:
            section = stripped
        if stripped.startswith("```"):
            in_fence = not in_fence
        if not in_fence and section != "Examples" and stripped.startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            while i < len(lines) and lines[i].strip():
                out.append(lines[i])
                i += 1
            out.append(f"{indent}```")
            continue
        if not in_fence and stripped.endswith("::") and stripped != "::" and not following:
            line = line.rstrip()[:-1]
        out.append(line)
        i += 1
    return "\n".join(out)


def _doc_comment(obj: griffe.Object) -> str:
    """The ``#:`` comment lines right above an attribute (Sphinx's doc comments), joined."""
    if obj.lineno is None or obj.filepath is None or isinstance(obj.filepath, list):
        return ""
    try:
        lines = obj.lines_collection[obj.filepath]
    except KeyError:  # a LinesCollection has no .get()
        return ""
    comment: list[str] = []
    for line in reversed(lines[: obj.lineno - 1]):
        if not line.strip().startswith("#:"):
            break
        comment.insert(0, line.strip()[2:].strip())
    return "\n".join(comment)


class RstRoles(griffe.Extension):
    """Griffe extension: Sphinx roles become cross-references, doctest sessions code blocks."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is None and obj.is_attribute and (comment := _doc_comment(obj)):
                obj.docstring = griffe.Docstring(
                    comment,
                    parent=obj,
                    parser=loader.docstring_parser,
                    parser_options=loader.docstring_options,
                )
            if obj.docstring is not None:
                text = obj.docstring.value
                if ":" in text:
                    text = rewrite_roles(obj, text)
                if ">>>" in text or "::" in text:
                    text = fence_doctests(text)
                obj.docstring.value = text
            stack.extend(member for member in obj.members.values() if not member.is_alias)
