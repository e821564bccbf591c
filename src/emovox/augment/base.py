"""Configured, replayable augmentations: the base class, validation and chaining.

Every augmentation is a small frozen dataclass whose fields are its whole
configuration. It is called with the array to augment and an explicit random
generator; the same generator state gives the same output (replayable). It
round-trips to a plain ``dict`` so that a model artifact can record exactly
what was used::

    >>> import numpy as np
    >>> from emovox.augment import Compose, GaussianNoise, Gain
    >>> chain = Compose([(GaussianNoise(snr_db=(10, 30)), 0.5), (Gain(gain_db=(-6, 6)), 1.0)])
    >>> y = np.zeros(16000, dtype=np.float32)
    >>> out = chain(y, sample_rate_hz=16000, rng=np.random.default_rng(0))
    >>> Compose.from_dict(chain.to_dict()) == chain
    True

Waveform transforms (``kind == "waveform"``) take ``y`` (float32, shape
``(n,)``) and ``sample_rate_hz``; spectrogram transforms (``kind ==
"spectrogram"``) take arrays or tensors of shape ``(..., n_freq, n_frames)``.
Nothing here reads files except :func:`emovox.augment.noise.load_noise_folder`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from emovox.audio.validate import validate_waveform
from emovox.errors import AudioError, ConfigError
from emovox.registry import Registry

#: name -> transform class, filled by :func:`register_transform` (complete after the first lookup).
TRANSFORMS: dict[str, type[Transform]] = {}
#: Modules that define transforms, imported on the first lookup, so that a
#: name never depends on what the caller happened to import.
TRANSFORM_MODULES: tuple[str, ...] = (
    "emovox.augment.channel",
    "emovox.augment.mixup",
    "emovox.augment.noise",
    "emovox.augment.room",
    "emovox.augment.spectral",
    "emovox.augment.waveform",
)
_REGISTRY = Registry("augmentation", lookup_error=ConfigError, modules=TRANSFORM_MODULES, entries=lambda: TRANSFORMS)


def register_transform(cls: type[Transform]) -> type[Transform]:
    """Class decorator: make ``cls`` constructible from ``{"type": cls.name, ...}``.

    A second, different class under a taken name is a :class:`ConfigError`.
    """
    return _REGISTRY.register(cls.name, cls)


def transform_names() -> list[str]:
    """Every augmentation name :func:`transform_from_dict` accepts, sorted."""
    return _REGISTRY.names()


# --------------------------------------------------------------------------- validation
def check_range(
    name: str,
    value: Any,
    *,
    lo: float = -math.inf,
    hi: float = math.inf,
    unit: str = "",
) -> tuple[float, float]:
    """Validate a ``(low, high)`` range and return it as a tuple of floats.

    A single number ``v`` is accepted as the degenerate range ``(v, v)``.
    Raises :class:`ConfigError` on a reversed, non-finite or out-of-bounds range.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value, value)
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} {value!r} is not a range: give (low, high) as two numbers{unit and ' in ' + unit}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(f"{name} range ({low:g}, {high:g}) is not finite: give finite numbers")
    if low > high:
        raise ConfigError(f"{name} range ({value[0]!r}, {value[1]!r}) is reversed: give (low, high) with low <= high")
    if low < lo or high > hi:
        raise ConfigError(
            f"{name} range ({low:g}, {high:g}) is outside [{lo:g}, {hi:g}]{unit and ' ' + unit}: "
            f"choose values inside it"
        )
    return (low, high)


def check_number(
    name: str, value: Any, *, lo: float = -math.inf, hi: float = math.inf, integer: bool = False, lo_open: bool = False
) -> Any:
    """Validate one number within ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    ok_type = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} {value!r} is not {kind}: give {kind}")
    bad_low = value <= lo if lo_open else value < lo
    if bad_low or value > hi or (not integer and not math.isfinite(float(value))):
        left = "(" if lo_open else "["
        raise ConfigError(f"{name} {value!r} is outside {left}{lo:g}, {hi:g}]: choose a value inside it")
    return int(value) if integer else float(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} {value!r} is not one of {', '.join(map(repr, choices))}: pick one of them")
    return value


def check_rng(rng: Any) -> np.random.Generator:
    """Require an explicit ``numpy.random.Generator`` (no global randomness)."""
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(
            f"rng must be a numpy.random.Generator, got {type(rng).__name__}: pass rng=numpy.random.default_rng(seed)"
        )
    return rng


def check_waveform(y: Any) -> np.ndarray:
    """Accept a mono finite float waveform ``(n,)``; return it as float32.

    The checks are :func:`emovox.audio.validate.validate_waveform`'s; its
    errors are re-raised as :class:`ConfigError` with the same message.
    """
    try:
        return validate_waveform(np.asarray(y), mono=True)
    except AudioError as error:  # the gate's message, as the augmentations' error type
        raise ConfigError(str(error)) from error


def check_snr_db(value: Any) -> tuple[float, float]:
    """Validate an SNR range ``snr_db`` in dB, within [-30, 100]."""
    return check_range("snr_db", value, lo=-30, hi=100, unit="dB")


def check_waveform_and_rng(y: Any, rng: Any) -> np.ndarray:
    """The checks a waveform transform starts its call with; returns ``y`` as float32.

    ``y`` goes through :func:`check_waveform`, then ``rng`` through :func:`check_rng`.
    """
    y = check_waveform(y)
    check_rng(rng)
    return y


# --------------------------------------------------------------------------- base class
@dataclass(frozen=True)
class Transform:
    """Base of every augmentation: a frozen, validated, serialisable configuration.

    Subclasses set ``name`` (registry key) and ``kind`` (``"waveform"`` or
    ``"spectrogram"``), validate their fields in ``__post_init__`` and implement
    ``__call__``. Fields declared with ``metadata={"runtime": True}`` are not
    serialised (e.g. in-memory noise clips).
    """

    name: ClassVar[str] = "transform"
    kind: ClassVar[str] = "waveform"

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"type": self.name}
        for f in dataclasses.fields(self):
            if f.metadata.get("runtime"):
                continue
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> Transform:
        return transform_from_dict(data)


def _set(obj: Any, name: str, value: Any) -> None:
    """Assign in a frozen dataclass's ``__post_init__`` (normalised values)."""
    object.__setattr__(obj, name, value)


def transform_from_dict(data: Mapping) -> Transform:
    """Rebuild a transform (or a :class:`Compose`/:class:`OneOf`) from its dict."""
    if not isinstance(data, Mapping) or "type" not in data:
        raise ConfigError(f"augmentation config {data!r} has no 'type': give {{'type': name, ...}}")
    kind = data["type"]
    cls = _REGISTRY.get(kind)  # ConfigError listing the names
    params = {k: v for k, v in data.items() if k != "type"}
    if hasattr(cls, "_from_params"):
        return cls._from_params(params)
    names = {f.name for f in dataclasses.fields(cls) if not f.metadata.get("runtime")}
    unknown = sorted(set(params) - names)
    if unknown:
        raise ConfigError(
            f"augmentation {kind!r} has no option(s) {', '.join(unknown)}: valid options are {', '.join(sorted(names))}"
        )
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return cls(**params)


# --------------------------------------------------------------------------- chaining
def _check_steps(steps: Any, where: str) -> tuple[tuple[Transform, float], ...]:
    out = []
    for i, step in enumerate(steps):
        if isinstance(step, Transform):
            t, p = step, 1.0
        else:
            try:
                t, p = step
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{where} step {i} is {step!r}: give a transform or a (transform, probability) pair"
                ) from None
        if not isinstance(t, Transform):
            raise ConfigError(f"{where} step {i} is {type(t).__name__}, not an augmentation transform")
        p = check_number(f"{where} step {i} probability", p, lo=0.0, hi=1.0)
        out.append((t, p))
    kinds = {t.kind for t, _ in out}
    if len(kinds) > 1:
        raise ConfigError(
            f"{where} mixes {' and '.join(sorted(kinds))} transforms: chain waveform and spectrogram "
            f"transforms separately"
        )
    return tuple(out)


@register_transform
@dataclass(frozen=True)
class Compose(Transform):
    """Apply transforms in order, each with its own probability.

    Parameters
    ----------
    steps : sequence of Transform or (Transform, p)
        ``p`` in [0, 1] is the chance that the step is applied (default 1).

    Notes
    -----
    For each step one uniform number is drawn from ``rng`` (whether or not the
    step then runs), so the draw sequence, and thus the output, is fixed by the
    generator state.
    """

    name: ClassVar[str] = "compose"
    steps: tuple = ()

    def __post_init__(self) -> None:
        _set(self, "steps", _check_steps(self.steps, self.name))

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.steps[0][0].kind if self.steps else "waveform"

    def __call__(self, x, **kwargs):
        rng = kwargs.get("rng")
        for t, p in self.steps:
            u = _uniform(rng)
            if u < p:
                x = t(x, **kwargs)
        return x

    def to_dict(self) -> dict:
        return {"type": self.name, "steps": [{"p": p, "transform": t.to_dict()} for t, p in self.steps]}

    @classmethod
    def _from_params(cls, params: Mapping) -> Compose:
        steps = params.get("steps", [])
        return cls(tuple((transform_from_dict(s["transform"]), s.get("p", 1.0)) for s in steps))


@register_transform
@dataclass(frozen=True)
class OneOf(Transform):
    """With probability ``p``, apply exactly one of ``transforms`` (chosen by ``weights``).

    ``OneOf((GaussianNoise(...), BackgroundNoise(...)), p=0.4)`` is seed S2's
    "Gaussian or background noise on 40 % of the training data".
    """

    name: ClassVar[str] = "one_of"
    transforms: tuple = ()
    p: float = 1.0
    weights: tuple | None = None

    def __post_init__(self) -> None:
        steps = _check_steps(tuple(self.transforms), self.name)
        _set(self, "transforms", tuple(t for t, _ in steps))
        _set(self, "p", check_number("one_of p", self.p, lo=0.0, hi=1.0))
        if not self.transforms:
            raise ConfigError("one_of needs at least one transform: give transforms=(t1, t2, ...)")
        if self.weights is not None:
            w = tuple(float(v) for v in self.weights)
            if len(w) != len(self.transforms) or min(w) < 0 or sum(w) <= 0:
                raise ConfigError(
                    f"one_of weights {self.weights!r} must be {len(self.transforms)} non-negative "
                    f"numbers with a positive sum"
                )
            _set(self, "weights", w)

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.transforms[0].kind

    def __call__(self, x, **kwargs):
        rng = kwargs.get("rng")
        u = _uniform(rng)
        k = len(self.transforms)
        w = np.asarray(self.weights if self.weights is not None else [1.0] * k)
        cdf = np.cumsum(w / w.sum())
        v = _uniform(rng)
        idx = min(int(np.searchsorted(cdf, v, side="right")), k - 1)
        if u >= self.p:
            return x
        return self.transforms[idx](x, **kwargs)

    def to_dict(self) -> dict:
        return {
            "type": self.name,
            "p": self.p,
            "weights": None if self.weights is None else list(self.weights),
            "transforms": [t.to_dict() for t in self.transforms],
        }

    @classmethod
    def _from_params(cls, params: Mapping) -> OneOf:
        ts = tuple(transform_from_dict(t) for t in params.get("transforms", []))
        return cls(ts, p=params.get("p", 1.0), weights=params.get("weights"))


def _uniform(rng: Any) -> float:
    """One uniform draw in [0, 1) from a numpy or torch generator."""
    if isinstance(rng, np.random.Generator):
        return float(rng.random())
    try:
        import torch
    except ImportError:  # pragma: no cover
        pass
    else:
        if isinstance(rng, torch.Generator):
            return float(torch.rand((), generator=rng))
    raise ConfigError(
        f"rng must be a numpy.random.Generator (or torch.Generator for tensor transforms), "
        f"got {type(rng).__name__}: pass rng=numpy.random.default_rng(seed)"
    )


def augmentation_from_config(config: Mapping | Sequence | None) -> Transform | None:
    """Build an augmentation from a dict (one transform) or a list (a :class:`Compose`)."""
    if config is None:
        return None
    if isinstance(config, Mapping):
        return transform_from_dict(config)
    return Compose(
        tuple(
            (transform_from_dict(s["transform"]), s.get("p", 1.0)) if "transform" in s else transform_from_dict(s)
            for s in config
        )
    )


def engine_hook(transform: Transform, *, sample_rate_hz: int | None = None):
    """Adapt a transform to the training engine's hook ``hook(x, rng) -> x``.

    Waveform transforms are applied to each row of a ``(batch, n)`` batch
    (rows keep their length: a row that changes length is cropped or
    zero-padded back); spectrogram transforms to the whole batch. The engine
    passes its checkpointed ``numpy.random.Generator``.
    """
    if not isinstance(transform, Transform):
        raise ConfigError(f"engine_hook needs an augmentation transform, got {type(transform).__name__}")

    def hook(x, rng):
        if transform.kind != "waveform":
            return transform(x, rng=rng)
        x = np.asarray(x, dtype=np.float32)
        out = np.empty_like(x)
        for i, row in enumerate(x):
            y = transform(row, sample_rate_hz=sample_rate_hz, rng=rng)
            n = min(y.shape[0], x.shape[1])
            out[i, :n] = y[:n]
            out[i, n:] = 0.0
        return out

    # recorded by emovox.training.recipes.Recipe.to_dict; mypy knows no attributes set on a function
    hook.name = transform.name  # type: ignore[attr-defined]
    return hook
