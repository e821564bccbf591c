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

import inspect
from collections.abc import Callable
from typing import Any

from emovox.errors import ConfigError, ModelError
from emovox.models.spec import TaskSpec
from emovox.registry import Registry

Builder = Callable[..., Any]

#: Modules imported (if present) before an architecture lookup.
ARCHITECTURE_MODULES: tuple[str, ...] = (
    "emovox.training.tiny",
    "emovox.models.seeds",
    "emovox.models.flagship",
    "emovox.models.whisper_classifier",
    "emovox.models.whisper_finetune",
    "emovox.models.hf_head",
)

_ARCHITECTURES: dict[str, Builder] = {}
_REGISTRY = Registry(
    "architecture", lookup_error=ModelError, modules=ARCHITECTURE_MODULES, entries=lambda: _ARCHITECTURES
)


def register_architecture(name: str, builder: Builder | None = None, *, replace: bool = False):
    """Register ``builder`` under ``name``; usable as a decorator.

    Re-registering the same builder (a module imported twice) is harmless; a
    different builder under a taken name raises :class:`ConfigError` unless
    ``replace=True``.
    """
    return _REGISTRY.register(name, builder, replace=replace)


def architecture_names() -> list[str]:
    """Names of every registered architecture, sorted."""
    return _REGISTRY.names()


def get_architecture(name: str) -> Builder:
    """The builder registered under ``name``; :class:`ModelError` lists the known names."""
    return _REGISTRY.get(name)


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
