"""The linear CT window, shared by the readers and ``IntensityWindow``."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["WINDOW_PRESETS", "apply_window"]

#: CT windows as (level, width) in Hounsfield units.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    # Radiopaedia, "Windowing (CT)" (radiopaedia.org/articles/windowing-ct),
    # table of typical values, chest: lungs W:1500 L:-600
    "lung": (-600.0, 1500.0),
    # same table, chest: mediastinum W:350 L:50
    "mediastinum": (50.0, 350.0),
    # the general soft-tissue window W:400 L:40, e.g. the "Soft tissue" CT
    # preset of the OHIF viewer (OHIF/Viewers, extensions/cornerstone/src/
    # components/WindowLevelActionMenu/defaultWindowLevelPresets.ts); the
    # Radiopaedia table gives W:400 L:50 for abdominal soft tissues
    "abdomen": (40.0, 400.0),
    # Radiopaedia table, spine: bone W:1800 L:400
    "bone": (400.0, 1800.0),
    # Radiopaedia table, head and neck: brain W:80 L:40 (also OHIF's "Brain")
    "brain": (40.0, 80.0),
}


def apply_window(
    image: NDArray[Any], level: float, width: float
) -> NDArray[np.float32]:
    """Map ``level +/- width / 2`` onto [0, 1] as float32, clipping outside.

    ``(X - low) / width`` is cast to float32 element by element: no float64
    copy of ``image`` is made.

    Parameters
    ----------
    image : ndarray
        Intensities of any shape and real dtype (Hounsfield units for CT).
    level : float
        The window's centre.
    width : float
        The window's width (positive).

    Returns
    -------
    windowed : ndarray of float32
        ``clip((image - (level - width / 2)) / width, 0, 1)``, of ``image``'s
        shape.
    """
    out = np.empty(image.shape, dtype=np.float32)
    np.subtract(image, np.float32(level - width / 2), out=out, casting="unsafe")
    out /= np.float32(width)
    np.clip(out, 0, 1, out=out)
    return out
