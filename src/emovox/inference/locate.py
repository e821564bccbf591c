"""Where a model artifact lives: the shipped models' folders, and a name or path -> its folder.

:func:`resolve_model_dir` is how ``load_model(path)``, ``emovox predict
--model``, batch jobs and the service find an artifact: ``None`` is the
default model, a bare name (``"default"``, ``"cnn"``) one of the models
shipped inside the package, anything else a folder.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from emovox.errors import ModelError

__all__ = [
    "DEFAULT_MODEL",
    "FAST_MODEL",
    "pretrained_dir",
    "default_model_dir",
    "shipped_models",
    "resolve_model_dir",
    "artifact_name",
]

#: Name of the model :func:`~emovox.inference.predictor.load_model` loads when given no path.
DEFAULT_MODEL = "default"
#: Name of the small, fast model (``emovox predict --fast``).
FAST_MODEL = "cnn"


def pretrained_dir() -> Path:
    """The folder of the models shipped inside the package: ``emovox/pretrained``."""
    return Path(str(resources.files("emovox"))) / "pretrained"


def default_model_dir() -> Path:
    """Where the bundled default model lives: ``emovox/pretrained/default`` inside the package."""
    return pretrained_dir() / DEFAULT_MODEL


def shipped_models() -> tuple[str, ...]:
    """Names of the models shipped inside the package (sub-folders of :func:`pretrained_dir` with a config)."""
    root = pretrained_dir()
    if not root.is_dir():
        return ()
    return tuple(sorted(p.name for p in root.iterdir() if (p / "config.json").is_file()))


def _looks_like_name(path: str | os.PathLike) -> bool:
    return isinstance(path, str) and path != "" and not any(sep in path for sep in ("/", os.sep, "."))


def resolve_model_dir(path: str | os.PathLike | None) -> Path:
    """The artifact folder of ``path``: ``None`` -> the default model, a shipped name -> its folder, else the path.

    A string without ``/`` or ``.`` that is not an existing path is a model
    name (``"default"``, ``"cnn"``); write ``./cnn`` for a folder of that name.

    Raises
    ------
    ModelError
        The default model is missing, or a name is not one of the shipped models.
    """
    if path is None or path == DEFAULT_MODEL and not os.path.exists(path):
        model_dir = default_model_dir()
        if not (model_dir / "config.json").is_file():
            raise ModelError(
                f"no bundled model at {model_dir}: this emovox build ships none yet; "
                "pass a trained artifact with --model DIR (or load_model(path=...))"
            )
        return model_dir
    if _looks_like_name(path) and not os.path.exists(path):
        names = shipped_models()
        if path in names:
            return pretrained_dir() / path
        raise ModelError(
            f"no model named {path!r}: it is neither a folder nor a model shipped with emovox "
            f"(shipped: {', '.join(names) or 'none'}); pass a model artifact folder or one of those names"
        )
    return Path(path)


def artifact_name(model_dir: Path) -> str:
    """A shipped model's name (``"default"``, ``"cnn"``), else the artifact folder's own name."""
    folder = Path(os.path.abspath(model_dir))
    return folder.name or str(model_dir)
