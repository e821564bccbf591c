"""The canonical emotion vocabulary and named label schemes.

Every corpus maps its own labels onto :data:`EMOTIONS`. A :class:`LabelScheme`
then maps canonical emotions onto the classes of one experiment: it may merge
emotions (calm into neutral), drop them (``None``), or both. Schemes are looked
up by name (:func:`get_scheme`) or built from a user mapping
(:meth:`LabelScheme.from_mapping`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from emovox.errors import ConfigError

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


def check_emotion(emotion: str) -> str:
    """Return ``emotion`` if it is canonical, else raise :class:`ConfigError`."""
    if emotion not in EMOTIONS:
        raise ConfigError(
            f"unknown emotion {emotion!r}: expected one of {', '.join(EMOTIONS)}"
        )
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
    def from_mapping(cls, name: str, mapping: Mapping[str, str | None]) -> "LabelScheme":
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
    def from_dict(cls, data: Mapping) -> "LabelScheme":
        return cls(name=data["name"], classes=tuple(data["classes"]), mapping=dict(data["mapping"]))


def _identity(emotions: Iterable[str]) -> dict[str, str]:
    return {e: e for e in emotions}


_SCHEMES: dict[str, LabelScheme] = {}


def register_scheme(scheme: LabelScheme) -> LabelScheme:
    _SCHEMES[scheme.name] = scheme
    return scheme


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
        {**_identity(("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")),
         "calm": "neutral"},
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


def get_scheme(name: str) -> LabelScheme:
    """Look up a registered scheme by name, with the list of names on a miss."""
    try:
        return _SCHEMES[name]
    except KeyError:
        raise ConfigError(
            f"unknown label scheme {name!r}: expected one of {', '.join(sorted(_SCHEMES))}"
        ) from None


def scheme_names() -> list[str]:
    return sorted(_SCHEMES)
