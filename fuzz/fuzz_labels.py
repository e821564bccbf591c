"""Fuzz the label-scheme parser: inline mappings, scheme names, scheme JSON files.

The first byte picks what the rest is: an inline spec for
:func:`emovox.labels.resolve_scheme` / :func:`~emovox.labels.load_mapping`,
or a JSON document written to a ``.json`` file and resolved as a scheme
file (both the ``LabelScheme.to_dict`` form and the flat mapping form).
Contract: a valid :class:`~emovox.labels.LabelScheme` (classes unique and
non-empty, every key a canonical emotion, every target one of the classes)
or a :class:`~emovox.errors.ConfigError`.

    python fuzz/fuzz_labels.py CORPUS_DIR SEEDS_DIR -max_total_time=600
"""

from __future__ import annotations

import os
import tempfile

import atheris
import common  # noqa: F401

with atheris.instrument_imports(include=["emovox"]):
    from emovox.errors import ConfigError
    from emovox.labels import EMOTIONS, LabelScheme, canonical_emotion, load_mapping, resolve_scheme

_DIR = tempfile.mkdtemp(prefix="emovox-fuzz-labels-")
_JSON = os.path.join(_DIR, "scheme.json")


def _check(scheme) -> None:
    assert isinstance(scheme, LabelScheme)
    assert scheme.classes and len(set(scheme.classes)) == len(scheme.classes)
    for emotion, target in scheme.mapping.items():
        assert emotion in EMOTIONS, emotion
        assert target is None or target in scheme.classes
        index = scheme.index_of(emotion)
        assert index is None or scheme.classes[index] == target


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0], data[1:]
    text = body.decode("utf-8", "replace").replace("\x00", "")
    if mode % 2 == 0:
        spec = text if "=" in text or not text.strip() or mode % 4 == 0 else os.path.join(_DIR, "x", text)
        try:
            _check(resolve_scheme(spec))
        except ConfigError:
            pass
        try:
            mapping = load_mapping(text)
            assert all(isinstance(k, str) for k in mapping)
        except ConfigError:
            pass
        canonical_emotion(text)
    else:
        with open(_JSON, "wb") as fh:
            fh.write(body)
        try:
            _check(resolve_scheme(_JSON))
        except ConfigError:
            pass


if __name__ == "__main__":
    common.start(test_one_input)
