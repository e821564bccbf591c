"""The canonical emotion vocabulary and named label schemes.

Every corpus maps its own labels onto :data:`EMOTIONS`. A :class:`LabelScheme`
then maps canonical emotions onto the classes of one experiment: it may merge
emotions (calm into neutral), drop them (``None``), or both. Schemes are looked
up by name (:func:`get_scheme`) or built from a user mapping
(:meth:`LabelScheme.from_mapping`, :func:`resolve_scheme` for a CLI string
or JSON file) and applied to records with :func:`apply_scheme`.

User mappings are written ``"a=b,c=b,d=-"``: ``-`` (or an empty target) drops
the source label. The same syntax maps a corpus's own labels onto canonical
emotions (:func:`parse_mapping`, used by the CSV and folder loaders) and
canonical emotions onto experiment classes (:func:`resolve_scheme`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emovox.errors import ConfigError
from emovox.registry import Registry

#: Canonical emotions, in a fixed order. ``unknown`` is not an emotion: it is
#: what a predictor answers when its confidence is under the threshold.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "boredom",
)
UNKNOWN = "unknown"
#: The answer for an input that holds no speech (never an emotion).
NO_SPEECH = "no_speech"
#: A recording's summary when no emotion leads the confident speech.
MIXED = "mixed"


def check_emotion(emotion: str) -> str:
    """Return ``emotion`` if it is canonical, else raise :class:`ConfigError`."""
    if emotion not in EMOTIONS:
        raise ConfigError(f"unknown emotion {emotion!r}: expected one of {', '.join(EMOTIONS)}")
    return emotion


@dataclass(frozen=True)
class LabelScheme:
    """Maps canonical emotions onto the ordered classes of an experiment.

    Attributes
    ----------
    name : str
        Short identifier, e.g. ``"ravdess8"``.
    classes : tuple[str, ...]
        Output classes in model order (index = class id).
    mapping : Mapping[str, str | None]
        Canonical emotion -> class; ``None`` or a missing key drops the emotion.
    """

    name: str
    classes: tuple[str, ...]
    mapping: Mapping[str, str | None] = field(hash=False)

    def __post_init__(self) -> None:
        if len(set(self.classes)) != len(self.classes) or not self.classes:
            raise ConfigError(f"label scheme {self.name!r}: classes must be unique and non-empty")
        for emotion, target in self.mapping.items():
            check_emotion(emotion)
            if target is not None and target not in self.classes:
                raise ConfigError(
                    f"label scheme {self.name!r} maps {emotion!r} to {target!r}, "
                    f"which is not one of its classes {list(self.classes)}"
                )

    @classmethod
    def from_mapping(cls, name: str, mapping: Mapping[str, str | None]) -> LabelScheme:
        """Build a scheme whose classes are the distinct targets, in first-seen order."""
        classes: list[str] = []
        for target in mapping.values():
            if target is not None and target not in classes:
                classes.append(target)
        return cls(name=name, classes=tuple(classes), mapping=dict(mapping))

    def class_of(self, emotion: str) -> str | None:
        """The class of a canonical emotion, or ``None`` if the scheme drops it."""
        return self.mapping.get(emotion)

    def index_of(self, emotion: str) -> int | None:
        """The class index of a canonical emotion, or ``None`` if dropped."""
        target = self.class_of(emotion)
        return None if target is None else self.classes.index(target)

    def keeps(self, emotion: str) -> bool:
        return self.class_of(emotion) is not None

    def to_dict(self) -> dict:
        return {"name": self.name, "classes": list(self.classes), "mapping": dict(self.mapping)}

    @classmethod
    def from_dict(cls, data: Mapping) -> LabelScheme:
        return cls(name=data["name"], classes=tuple(data["classes"]), mapping=dict(data["mapping"]))


def _identity(emotions: Iterable[str]) -> dict[str, str]:
    return {e: e for e in emotions}


_SCHEMES: dict[str, LabelScheme] = {}
_REGISTRY = Registry("label scheme", lookup_error=ConfigError, modules=(), entries=lambda: _SCHEMES)


def register_scheme(scheme: LabelScheme) -> LabelScheme:
    """Make ``scheme`` known by its name (:func:`get_scheme`, ``--labels NAME``); replaces one of the same name."""
    return _REGISTRY.register(scheme.name, scheme, replace=True)


#: All canonical emotions as themselves: each corpus keeps its native classes.
NATIVE = register_scheme(LabelScheme("native", EMOTIONS, _identity(EMOTIONS)))
#: The 8 RAVDESS classes (S0, S3).
RAVDESS8 = register_scheme(
    LabelScheme.from_mapping(
        "ravdess8",
        _identity(("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")),
    )
)
#: Seven basic emotions, calm merged into neutral (S1's 7 classes).
SEVEN = register_scheme(
    LabelScheme.from_mapping(
        "seven",
        {**_identity(("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")), "calm": "neutral"},
    )
)
#: Six classes, calm merged into neutral, surprised dropped (S2 on CREMA-D's label set).
SIX_CALM_MERGED = register_scheme(
    LabelScheme.from_mapping(
        "six-calm-merged",
        {**_identity(("neutral", "happy", "sad", "angry", "fearful", "disgust")), "calm": "neutral"},
    )
)
#: Six RAVDESS classes with sad and surprised dropped (S4).
SIX_NO_SAD_SURPRISED = register_scheme(
    LabelScheme.from_mapping(
        "six-no-sad-surprised",
        _identity(("neutral", "calm", "happy", "angry", "fearful", "disgust")),
    )
)


#: The label set of the bundled default model, harmonised over RAVDESS, EMO-DB,
#: EMOVO and TurEV-DB: calm merged into neutral (RAVDESS and TurEV-DB describe
#: calm as a low-arousal neutral delivery), boredom dropped (EMO-DB only; no
#: other corpus has it, and merging it into neutral or sad would blur both).
EMOVOX7 = register_scheme(
    LabelScheme.from_mapping(
        "emovox7",
        {
            **_identity(("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")),
            "calm": "neutral",
            "boredom": None,
        },
    )
)


def get_scheme(name: str) -> LabelScheme:
    """Look up a registered scheme by name, with the list of names on a miss."""
    scheme: LabelScheme = _REGISTRY.get(name)
    return scheme


def scheme_names() -> list[str]:
    """Names of the registered schemes, sorted."""
    return _REGISTRY.names()


#: Common spellings of the canonical emotions in users' own data (lower case).
EMOTION_ALIASES: dict[str, str] = {
    "anger": "angry",
    "mad": "angry",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "fear": "fearful",
    "afraid": "fearful",
    "disgusted": "disgust",
    "surprise": "surprised",
    "bored": "boredom",
}

#: Targets that drop a label in a user mapping.
_DROP = ("-", "")


def canonical_emotion(label: str) -> str | None:
    """The canonical emotion spelled by ``label``, or ``None`` if it is none.

    Case-insensitive; accepts the canonical names and :data:`EMOTION_ALIASES`
    (``"Anger"`` -> ``"angry"``, ``"fear"`` -> ``"fearful"``).
    """
    key = label.strip().lower()
    if key in EMOTIONS:
        return key
    return EMOTION_ALIASES.get(key)


def parse_mapping(text: str) -> dict[str, str | None]:
    """Parse ``"a=b,c=b,d=-"`` into ``{"a": "b", "c": "b", "d": None}``.

    Whitespace around names is ignored; a target of ``-`` or nothing drops the
    source label. Raises :class:`ConfigError` on a malformed or repeated entry.
    """
    mapping: dict[str, str | None] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        source, sep, target = item.partition("=")
        source, target = source.strip(), target.strip()
        if not sep or not source:
            raise ConfigError(
                f"bad mapping entry {item.strip()!r} in {text!r}: "
                "expected source=target pairs separated by commas, e.g. 'calm=neutral,sad=-'"
            )
        if source in mapping:
            raise ConfigError(f"mapping {text!r} maps {source!r} twice: give each label once")
        mapping[source] = None if target in _DROP else target
    if not mapping:
        raise ConfigError(f"empty mapping {text!r}: expected e.g. 'calm=neutral,sad=-'")
    return mapping


def format_mapping(mapping: Mapping[str, str | None]) -> str:
    """Inverse of :func:`parse_mapping`: ``{"d": None}`` -> ``"d=-"``."""
    return ",".join(f"{k}={'-' if v is None else v}" for k, v in mapping.items())


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read mapping file {str(path)!r}: {error}") from None


def _json_mapping(data: Any, source: str) -> dict[str, str | None]:
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in data.items()
    ):
        raise ConfigError(
            f"mapping in {source!r} must be a JSON object of label -> label or null, "
            'e.g. {"calm": "neutral", "sad": null}'
        )
    return {k: (None if v in _DROP else v) for k, v in data.items()}


def load_mapping(spec: str | Mapping[str, str | None]) -> dict[str, str | None]:
    """A user mapping from a dict, an inline ``"a=b,c=-"`` string or a JSON file.

    A JSON file holds an object ``{"a": "b", "c": null}``.
    """
    if isinstance(spec, Mapping):
        return _json_mapping(dict(spec), "mapping")
    if "=" in spec:
        return parse_mapping(spec)
    path = Path(os.path.expanduser(spec))  # Path.expanduser raises on '~unknown-user'
    if os.path.isfile(path):  # Path.is_file raises on names over 255 bytes
        return _json_mapping(_read_json(path), spec)
    raise ConfigError(f"mapping {spec!r} is neither 'a=b,c=-' pairs nor an existing JSON file")


def resolve_scheme(spec: str | LabelScheme | Mapping[str, str | None]) -> LabelScheme:
    """A label scheme from a name, an inline mapping, a JSON file or a dict.

    Parameters
    ----------
    spec : str, LabelScheme or Mapping
        A registered name (``"seven"``, see :func:`scheme_names`); an inline
        mapping of canonical emotions to classes (``"neutral=neutral,calm=neutral,
        happy=happy,sad=-"``, emotions not named are dropped, classes in
        first-seen order); the path of a JSON file holding either
        :meth:`LabelScheme.to_dict` output or a flat ``{"emotion": "class" | null}``
        object; or such a dict.

    Raises
    ------
    ConfigError
        On an unknown name, a malformed mapping, or a source that is not a
        canonical emotion.
    """
    if isinstance(spec, LabelScheme):
        return spec
    if isinstance(spec, Mapping):
        return LabelScheme.from_mapping("custom", _json_mapping(dict(spec), "mapping"))
    if spec in _SCHEMES:
        return _SCHEMES[spec]
    if "=" in spec:
        return LabelScheme.from_mapping("custom", parse_mapping(spec))
    path = Path(os.path.expanduser(spec))  # Path.expanduser raises on '~unknown-user'
    if path.suffix.lower() == ".json" or os.path.isfile(path):
        if not os.path.isfile(path):
            raise ConfigError(f"label scheme file {spec!r} does not exist")
        data = _read_json(path)
        if isinstance(data, dict) and "classes" in data and "mapping" in data:
            try:
                return LabelScheme.from_dict({"name": path.stem, **data})
            except (TypeError, AttributeError, ValueError) as error:
                raise ConfigError(f"bad label scheme file {spec!r}: {error}") from None
        return LabelScheme.from_mapping(path.stem, _json_mapping(data, spec))
    raise ConfigError(
        f"unknown label scheme {spec!r}: expected one of {', '.join(sorted(_SCHEMES))}, "
        "an inline mapping like 'neutral=neutral,calm=neutral,sad=-', or a JSON file"
    )


def apply_scheme(
    records: Iterable[Any], scheme: str | LabelScheme | Mapping[str, str | None]
) -> tuple[list[Any], np.ndarray]:
    """Keep the records a scheme keeps and give each its class index.

    Parameters
    ----------
    records : iterable of Record
        Anything with a canonical ``emotion`` attribute.
    scheme : str, LabelScheme or Mapping
        Anything :func:`resolve_scheme` accepts.

    Returns
    -------
    kept : list of Record
        The records whose emotion the scheme keeps, in input order.
    labels : np.ndarray [shape=(len(kept),), dtype=int64]
        Class index of each kept record in ``scheme.classes``.
    """
    scheme = resolve_scheme(scheme)
    kept: list[Any] = []
    labels: list[int] = []
    for record in records:
        index = scheme.index_of(record.emotion)
        if index is not None:
            kept.append(record)
            labels.append(index)
    return kept, np.asarray(labels, dtype=np.int64)


def classes_present(emotions: Sequence[str]) -> tuple[str, ...]:
    """The canonical emotions that occur in ``emotions``, in :data:`EMOTIONS` order."""
    seen = set(emotions)
    return tuple(e for e in EMOTIONS if e in seen)
