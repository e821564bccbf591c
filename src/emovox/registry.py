"""A small registry of named objects, shared by architectures and recipes.

A :class:`Registry` maps names to builders. Defining modules register at
import; lookups first import the known defining modules (lazily, once), so
that ``get("name")`` works without importing them by hand. Used by
:mod:`emovox.models.registry` (architectures) and
:mod:`emovox.training.recipes` (recipes).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar, overload

from emovox.errors import ConfigError

_B = TypeVar("_B")


def _same_definition(old: Any, new: Any) -> bool:
    """Same qualified name in the same module (a module imported twice)."""
    return getattr(old, "__qualname__", None) == getattr(new, "__qualname__", None) and getattr(
        old, "__module__", None
    ) == getattr(new, "__module__", None)


class Registry:
    """Names -> builders, with lazy import of the modules that register them.

    Parameters
    ----------
    kind : str
        What is registered, used in messages (``"architecture"``, ``"recipe"``).
    lookup_error : type of Exception
        Raised by :meth:`get` on an unknown name (registration errors are
        :class:`ConfigError`).
    modules : tuple of str
        Modules imported (if present) before the first full lookup.
    entries : callable
        Returns the dict that holds the entries. A callable rather than the
        dict itself, so that the owning module's dict (e.g. ``_RECIPES``) stays
        the one source of truth, even when a test swaps it for a copy.
    """

    def __init__(
        self,
        kind: str,
        *,
        lookup_error: type[Exception],
        modules: tuple[str, ...],
        entries: Callable[[], dict[str, Any]],
    ) -> None:
        self.kind = kind
        self.lookup_error = lookup_error
        self.modules = modules
        self._entries = entries
        self._loaded = False

    @overload
    def register(self, name: str, builder: None = None, *, replace: bool = False) -> Callable[[_B], _B]: ...

    @overload
    def register(self, name: str, builder: _B, *, replace: bool = False) -> _B: ...

    def register(self, name: str, builder: Any = None, *, replace: bool = False) -> Any:
        """Register ``builder`` under ``name``; usable as a decorator.

        Re-registering the same definition (same module and qualified name) is
        harmless; a different one under a taken name raises
        :class:`ConfigError` unless ``replace=True``.
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.kind} name {name!r} must be a non-empty string")

        def _register(fn: _B) -> _B:
            entries = self._entries()
            old = entries.get(name)
            if old is not None and old is not fn and not _same_definition(old, fn) and not replace:
                raise ConfigError(
                    f"{self.kind} {name!r} is already registered by {old.__module__}: choose another name"
                )
            entries[name] = fn
            return fn

        return _register if builder is None else _register(builder)

    def load_known(self) -> None:
        """Import the known defining modules once; a missing module is skipped."""
        if self._loaded:
            return
        self._loaded = True
        for module in self.modules:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as error:
                if error.name != module:
                    raise

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self.load_known()
        return sorted(self._entries())

    def get(self, name: str) -> Any:
        """The builder registered under ``name``; ``lookup_error`` lists the known names."""
        if name not in self._entries():
            self.load_known()
        entries = self._entries()
        try:
            return entries[name]
        except KeyError:
            raise self.lookup_error(
                f"unknown {self.kind} {name!r}: expected one of {', '.join(sorted(entries)) or '(none)'}"
            ) from None
