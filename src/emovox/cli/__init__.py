"""The ``emovox`` command line: thin wrappers over the library."""

from __future__ import annotations

import re

__all__ = ["plain_help", "add_model_choice"]

_ROLE = re.compile(r":[a-z]+:`(~?)([^`]+)`")  # :func:`x`, :class:`~a.B`
_LITERAL = re.compile(r"``([^`]+)``")


def _role(match: re.Match) -> str:
    tilde, target = match.groups()
    return target.rsplit(".", 1)[-1] if tilde else target


def plain_help(text: str) -> str:
    """A reST docstring as plain text for ``--help``: no ````literals````, roles or ``::`` markers.

    ``:func:`~a.b``` becomes ``b``, ````x```` becomes ``x``, a line ending in
    ``::`` ends in ``:`` and a line that is only ``::`` goes (the indented
    block below it stays indented).
    """
    text = _LITERAL.sub(r"\1", _ROLE.sub(_role, text))
    lines: list[str] = []
    for line in text.splitlines():
        if line.strip() == "::" or not line.strip() and lines and not lines[-1].strip():
            continue  # the marker, and the second of two blank lines it leaves
        lines.append(line[:-1] if line.endswith("::") else line)
    return "\n".join(lines).strip("\n") + "\n"


def add_model_choice(parser, *, needs: str = "") -> None:
    """``--model DIR|NAME`` or ``--fast`` (the shipped CNN), one or the other, on a command that predicts.

    ``needs`` qualifies the artifact folder (e.g. ``" with model.onnx"``).
    """
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--model",
        metavar="DIR|NAME",
        help=f"model artifact folder{needs}, or a shipped model's name: 'default' (the accurate "
        "Whisper-backed model, used when no option is given) or 'cnn' (small and fast)",
    )
    choice.add_argument(
        "--fast", action="store_true", help="use the small, fast CNN shipped with emovox (same as --model cnn)"
    )
