"""Recipes: named bundles of input pipeline + architecture + training config.

A recipe builder is a function ``builder() -> Recipe`` registered under a
name with :func:`register_recipe`; ``emovox train --recipe NAME`` looks it up
with :func:`get_recipe`. The seed replicas, the flagship and the heads on a
frozen Whisper encoder (``default``, ``whisper-linear``) register theirs in
:mod:`emovox.recipes` (imported on first lookup, like the built-in "tiny"
debug recipe in :mod:`emovox.training.tiny`).

Two kinds of recipe run through :func:`emovox.training.run.run_recipe`:
gradient-trained ones (the engine's epochs, this module's ``train``
settings) and closed-form ones, whose :attr:`Recipe.fit` fits a head on
frozen embeddings in one go (no epochs; their own :attr:`Recipe.settings`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from emovox.errors import ConfigError
from emovox.registry import Registry
from emovox.training.config import TrainConfig

Augment = Callable[..., Any]
#: ``make_datasets(train_waveforms, train_labels, val_waveforms, val_labels, *, seed)
#: -> (train_dataset, val_dataset, preprocessing)``; see :attr:`Recipe.make_datasets`.
MakeDatasets = Callable[..., tuple[Any, Any, dict]]
#: ``fit(records, *, out_dir, scheme, settings) -> summary``; see :attr:`Recipe.fit`.
Fit = Callable[..., dict]

#: Modules imported (if present) before a recipe lookup.
RECIPE_MODULES: tuple[str, ...] = ("emovox.training.tiny", "emovox.recipes")


@dataclass
class Recipe:
    """How to turn a labelled corpus into a trained model.

    Attributes
    ----------
    name : str
    arch : str
        Architecture registered in :mod:`emovox.models.registry`.
    arch_params : dict
        Hyper-parameters passed to the architecture builder (saved in the artifact).
    train : TrainConfig
    label_scheme : str
        Default label scheme (``emovox.labels.get_scheme``); ``--scheme`` overrides.
    sample_rate_hz : int
    clip_s : float
        Input length; clips are centre-cropped/zero-padded (random crops in training).
    input_kind : str
        ``"waveform"`` or ``"features"``.
    feature : str or None
        For ``"features"``: a name that ``emovox.features.extract_features``
        knows, computed per clip and (without ``make_datasets``) standardised
        with statistics of the training split.
    normalize : str or None
        ``load_audio(normalize=...)``: ``None``, ``"peak"`` or ``"loudness"``.
    trim_silence : bool
        ``load_audio(trim_silence=...)``.
    val_fraction : float
        Share of training speakers held out for validation.
    wave_augment, spec_augment : callable or None
        Engine hooks (see :mod:`emovox.training.engine`); not serialised, the
        artifact records their names.
    make_datasets : callable or None
        Recipe-owned input pipeline for training, replacing the generic one
        (fixed-length waveforms, or features + standard scaling)::

            make_datasets(train_waveforms, train_labels, val_waveforms, val_labels, *, seed)
                -> (train_dataset, val_dataset, preprocessing)

        The waveforms are whole clips as loaded for this recipe
        (``sample_rate_hz``, ``normalize``, ``trim_silence``); labels are int
        arrays. ``train_dataset`` may augment (it only ever sees training
        clips); ``val_dataset`` must hold exactly the inputs that
        :func:`emovox.training.pipeline.prepare_inputs` makes from the
        validation clips with the final ``preprocessing``. ``preprocessing``
        is merged into the artifact's ``preprocessing`` section (at least
        ``"normalization"``: ``None`` or :func:`~emovox.training.pipeline.fit_normalization`
        statistics), so test clips and ``emovox evaluate --model`` get the same
        inputs. Not serialised; the artifact records its name.
    fit : callable or None
        A closed-form recipe (a head fitted in one go on a frozen encoder's
        embeddings, no epochs)::

            fit(records, *, out_dir, scheme, settings) -> summary

        writes the artifact in ``out_dir/model`` and anything else it reports
        under ``out_dir``, and returns a JSON-able summary with at least
        ``artifact`` and ``lines`` (what ``emovox train`` prints). When set,
        :func:`~emovox.training.run.run_recipe` calls it instead of the
        engine, and ``train``, ``arch_params``, ``clip_s``, the hooks above
        are unused.
    settings : dict
        A closed-form recipe's own options and their defaults (e.g.
        ``{"copies": 0, "folds": None, "seed": 0, "threads": 2, "progress": True}``);
        ``emovox train`` passes the command-line options of the same names and
        refuses them for recipes that do not declare them.
    description : str
    """

    name: str
    arch: str
    arch_params: dict = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    label_scheme: str = "native"
    sample_rate_hz: int = 16000
    clip_s: float = 3.0
    input_kind: str = "waveform"
    feature: str | None = None
    normalize: str | None = None
    trim_silence: bool = False
    val_fraction: float = 0.15
    wave_augment: Augment | None = None
    spec_augment: Augment | None = None
    make_datasets: MakeDatasets | None = None
    fit: Fit | None = None
    settings: dict = field(default_factory=dict)
    description: str = ""

    def with_changes(self, **changes: Any) -> Recipe:
        return replace(self, **changes)

    @property
    def closed_form(self) -> bool:
        """Whether the recipe fits its head in closed form (:attr:`fit`) rather than by the engine's epochs."""
        return self.fit is not None

    def to_dict(self) -> dict:
        """JSON-able description (augmentation hooks by name only)."""
        return {
            "name": self.name,
            "arch": self.arch,
            "arch_params": dict(self.arch_params),
            "train": self.train.to_dict(),
            "label_scheme": self.label_scheme,
            "sample_rate_hz": self.sample_rate_hz,
            "clip_s": self.clip_s,
            "input_kind": self.input_kind,
            "feature": self.feature,
            "normalize": self.normalize,
            "trim_silence": self.trim_silence,
            "val_fraction": self.val_fraction,
            "wave_augment": _hook_name(self.wave_augment),
            "spec_augment": _hook_name(self.spec_augment),
            "make_datasets": _hook_name(self.make_datasets),
            **({"fit": _hook_name(self.fit), "settings": dict(self.settings)} if self.fit is not None else {}),
            "description": self.description,
        }


def _hook_name(hook: Any) -> str | None:
    if hook is None:
        return None
    return getattr(hook, "name", None) or getattr(hook, "__qualname__", None) or type(hook).__name__


_RECIPES: dict[str, Callable[[], Recipe]] = {}
_REGISTRY = Registry("recipe", lookup_error=ConfigError, modules=RECIPE_MODULES, entries=lambda: _RECIPES)


def register_recipe(name: str, builder: Callable[[], Recipe] | None = None, *, replace: bool = False):
    """Register ``builder`` (``() -> Recipe``) under ``name``; usable as a decorator."""
    return _REGISTRY.register(name, builder, replace=replace)


def recipe_names() -> list[str]:
    return _REGISTRY.names()


def get_recipe(name: str) -> Recipe:
    """Build the recipe registered as ``name``; :class:`ConfigError` lists the known names."""
    recipe = _REGISTRY.get(name)()
    if not isinstance(recipe, Recipe):
        raise ConfigError(f"recipe {name!r} builder returned {type(recipe).__name__}, not a Recipe")
    return recipe
