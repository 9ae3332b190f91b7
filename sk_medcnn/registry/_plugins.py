"""Entry points of plugin packages: finding them and importing their objects.

Architectures come from the group ``sk_medcnn.architectures``, weight loaders
from ``sk_medcnn.weight_loaders``; an entry point that fails to import raises
:class:`~sk_medcnn.exceptions.PluginLoadError` naming its distribution.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ..exceptions import PluginLoadError
from . import ENTRY_POINT_GROUP, WEIGHT_LOADER_GROUP

logger = logging.getLogger(__package__)


def _plugin_entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in found:
            logger.debug("duplicate entry point %s ignored", entry_point)
            continue
        found[entry_point.name] = entry_point
    return found


def _weight_loader_entry_point(name: str) -> EntryPoint | None:
    for entry_point in entry_points(group=WEIGHT_LOADER_GROUP):
        if entry_point.name == name:
            return entry_point
    return None


def _distribution_name(entry_point: EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return getattr(dist, "name", None) or "an unknown distribution"


def _load_entry_point(entry_point: EntryPoint, subject: str) -> Any:
    """Import the object of ``entry_point``, which provides ``subject``.

    Raises
    ------
    PluginLoadError
        If the import fails; the message names ``subject``, the entry point
        and its distribution.
    """
    try:
        return entry_point.load()
    except Exception as error:
        raise PluginLoadError(
            f"{subject} comes from the entry point "
            f"{entry_point.value!r} of {_distribution_name(entry_point)}, which "
            f"failed to import: {type(error).__name__}: {error}"
        ) from error
