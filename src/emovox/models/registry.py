"""Architectures registered by name and built from a :class:`TaskSpec`.

An architecture is a builder ``builder(spec, **params) -> torch.nn.Module``;
the module takes a batch shaped ``(batch, *spec.input_shape)`` and returns
logits ``(batch, spec.n_classes)``. Modules that define architectures call
:func:`register_architecture` at import; :func:`build_model` imports the
known ones (:data:`ARCHITECTURE_MODULES`) on first use, so that
``build_model("s3-conv1d", spec)`` works without importing
``emovox.models.seeds`` by hand (which is what loading an artifact needs).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

from emovox.errors import ConfigError, ModelError
from emovox.models.spec import TaskSpec

Builder = Callable[..., Any]

#: Modules imported (if present) before an architecture lookup.
ARCHITECTURE_MODULES: tuple[str, ...] = (
    "emovox.training.tiny",
    "emovox.models.seeds",
    "emovox.models.flagship",
)

_ARCHITECTURES: dict[str, Builder] = {}
_loaded = False


def register_architecture(name: str, builder: Builder | None = None, *, replace: bool = False):
    """Register ``builder`` under ``name``; usable as a decorator.

    Re-registering the same builder (a module imported twice) is harmless; a
    different builder under a taken name raises :class:`ConfigError` unless
    ``replace=True``.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"architecture name {name!r} must be a non-empty string")

    def _register(fn: Builder) -> Builder:
        old = _ARCHITECTURES.get(name)
        same = old is not None and getattr(old, "__qualname__", None) == getattr(fn, "__qualname__", None) \
            and getattr(old, "__module__", None) == getattr(fn, "__module__", None)
        if old is not None and old is not fn and not same and not replace:
            raise ConfigError(
                f"architecture {name!r} is already registered by {old.__module__}: choose another name"
            )
        _ARCHITECTURES[name] = fn
        return fn

    return _register if builder is None else _register(builder)


def _load_known() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in ARCHITECTURE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise


def architecture_names() -> list[str]:
    """Names of every registered architecture, sorted."""
    _load_known()
    return sorted(_ARCHITECTURES)


def get_architecture(name: str) -> Builder:
    """The builder registered under ``name``; :class:`ModelError` lists the known names."""
    if name not in _ARCHITECTURES:
        _load_known()
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        raise ModelError(
            f"unknown architecture {name!r}: expected one of {', '.join(sorted(_ARCHITECTURES)) or '(none)'}"
        ) from None


def build_model(name: str, spec: TaskSpec, **params: Any):
    """Build architecture ``name`` sized for ``spec``.

    Raises
    ------
    ModelError
        Unknown name, or parameters the builder does not accept.
    """
    if not isinstance(spec, TaskSpec):
        raise ConfigError(f"build_model needs a TaskSpec, got {type(spec).__name__}")
    builder = get_architecture(name)
    try:
        inspect.signature(builder).bind(spec, **params)
    except TypeError as error:
        raise ModelError(f"architecture {name!r} rejected parameters {sorted(params)}: {error}") from None
    except ValueError:  # pragma: no cover - builtins without a signature
        pass
    return builder(spec, **params)
