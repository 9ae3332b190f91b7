"""Exceptions and warnings raised by sk_medcnn.

Each subclasses a builtin, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["ArchitectureNotFoundError", "PluginLoadError"]


class ArchitectureNotFoundError(ValueError):
    """An architecture name that is neither built in nor provided by a plugin."""


class PluginLoadError(ImportError):
    """A plugin's entry point in ``sk_medcnn.architectures`` failed to import."""
