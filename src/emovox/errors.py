"""The one exception hierarchy of emovox.

Every error a user can cause is an :class:`EmovoxError`. Its message is one
line that says what was received, what was expected and how to fix it. The CLI
maps these to exit code 2, the service to HTTP 4xx with a JSON body; anything
else escaping is a bug.
"""

from __future__ import annotations


class EmovoxError(Exception):
    """Base class of every user-facing emovox error."""


class ConfigError(EmovoxError, ValueError):
    """A parameter, option or configuration value is invalid."""


class AudioError(EmovoxError):
    """Audio could not be read or does not pass the validation gate."""


class EmptyAudioError(AudioError):
    """The input holds no bytes or no samples."""


class UnsupportedAudioError(AudioError):
    """The input is not audio in a format emovox can decode."""


class TruncatedAudioError(AudioError):
    """The input looks like audio but ends early or is corrupt."""


class InvalidSamplesError(AudioError):
    """The decoded samples contain NaN or infinite values."""


class TooShortError(AudioError):
    """The clip is shorter than the minimum duration that can be analysed."""


class CorpusError(EmovoxError):
    """A corpus folder, manifest or file name could not be parsed."""


class FeatureError(EmovoxError):
    """A feature could not be computed from the given input or settings."""


class ModelError(EmovoxError):
    """A model artifact is missing, corrupt or incompatible."""
