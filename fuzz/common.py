"""Shared plumbing of the emovox fuzz harnesses (atheris / libFuzzer).

A harness feeds fuzzed bytes to one parser. The contract checked for every
input: the call returns a valid result or raises an :mod:`emovox.errors` class
(or the parser's documented error, e.g. the stream protocol's ProtocolError);
anything else escaping is a crash. libFuzzer also flags hangs (``-timeout``)
and memory blow-ups (``-rss_limit_mb``), the two other failure modes the
bad-input contract rules out.

Nothing from :mod:`emovox` is imported here, so each harness can import the
code under test inside ``atheris.instrument_imports()`` (coverage feedback).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("EMOVOX_FUZZ", "1")


def start(test_one_input) -> None:
    """Run libFuzzer over ``test_one_input`` with ``sys.argv`` (corpus dirs and -flags)."""
    import atheris

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


def replay(test_one_input, paths) -> int:
    """Call ``test_one_input`` on each file (or every file under each folder); returns the count."""
    n = 0
    for path in paths:
        files = [path] if os.path.isfile(path) else sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)
        for name in files:
            with open(name, "rb") as fh:
                test_one_input(fh.read())
            n += 1
    return n
