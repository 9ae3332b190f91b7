"""Exceptions and warnings raised by sk_medcnn.

Each subclasses a builtin, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ArchitectureNotFoundError",
    "ImageReadError",
    "ModelFileError",
    "OutOfDistributionWarning",
    "PluginLoadError",
]


class ArchitectureNotFoundError(ValueError):
    """An architecture name that is neither built in nor provided by a plugin."""


class PluginLoadError(ImportError):
    """A plugin's entry point in ``sk_medcnn.architectures`` failed to import."""


class ImageReadError(ValueError):
    """A file that cannot be read as an image (missing, corrupt or unsupported).

    The message names the file; ``path`` holds it.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class ModelFileError(ValueError):
    """A model file in the safe ``.skmed`` format that cannot be loaded.

    Raised for truncated, corrupt or hostile files, wrong types in the JSON
    document, weights of the wrong shape or dtype, and unknown format versions.
    """


class OutOfDistributionWarning(UserWarning):
    """Images unlike those a model was trained on, met by ``predict``.

    Raised when a batch holds an image whose out-of-distribution score is far
    above the model's threshold, or more images above it than its false-alarm
    rate explains. Silence it with
    ``warnings.simplefilter("ignore", OutOfDistributionWarning)``.
    """
