"""Entry point of the ``emovox`` command.

Each sub-command lives in its own module under :mod:`emovox.cli` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a handler
``func(args) -> int``. Any :class:`~emovox.errors.EmovoxError` becomes one line
on stderr and exit code 2; nothing a user can cause prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from emovox import __version__
from emovox.errors import EmovoxError

#: Sub-command modules, in the order ``emovox --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "predict",
    "listen",
    "serve",
    "batch",
    "corpus",
    "features",
    "evaluate",
    "compare",
    "run",
    "train",
    "explore",
    "export",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emovox",
        description="Speech emotion recognition: predict, train and evaluate honestly.",
    )
    parser.add_argument("--version", action="version", version=f"emovox {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"emovox.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"emovox.cli.{name}":
                continue  # command not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EmovoxError as error:
        print(f"emovox: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emovox: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` or similar, which closed early: not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
