"""ImageLoader: a transformer reading image files, so a Pipeline starts from paths."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin

from ..utils._validation import (
    OUTPUT_CONTAINERS,
    Checker,
    check_params,
    one_of,
    optional,
)
from ._batch import check_channels, read_images
from ._folder import _check_shape, _check_spatial_dims, _check_volume_options
from ._readers import check_index, check_slice_axis, check_window
from ._volume import spatial_dims_of_file

__all__ = ["ImageLoader"]


def _check_paths(X: Any) -> list[str | os.PathLike[str]]:
    """Return the file paths of ``X`` as a list, or raise naming what is wrong."""
    if isinstance(X, str | bytes | os.PathLike):
        raise TypeError(
            f"X must be a list or array of file paths; got a single path {X!r}. "
            "Wrap it in a list: [path]."
        )
    if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2:  # a DataFrame
        if X.shape[1] != 1:
            raise ValueError(
                "X must be one column of file paths; got a DataFrame with "
                f"{X.shape[1]} columns."
            )
        X = X.iloc[:, 0]
    if hasattr(X, "to_numpy"):  # a Series
        X = X.to_numpy()
    try:
        paths = np.asarray(X, dtype=object)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"X must be a list or array of file paths; got {type(X).__name__}."
        ) from error
    if paths.ndim == 2 and paths.shape[1] == 1:
        paths = paths[:, 0]
    if paths.ndim != 1:
        raise ValueError(
            "X must be a list or 1-D array of file paths (or one column of "
            f"them); got an array of shape {paths.shape}. ImageLoader reads "
            "files: pass image arrays directly to the next step instead."
        )
    if paths.size == 0:
        raise ValueError("X holds no file paths (0 samples); at least 1 is needed.")
    for position, path in enumerate(paths):
        if not isinstance(path, str | os.PathLike):
            raise TypeError(
                "X must hold file paths (str or os.PathLike); "
                f"X[{position}] is {path!r} ({type(path).__name__}). "
                "ImageLoader reads files: pass image arrays directly to the "
                "next step instead."
            )
    return list(paths)


def _first_dims(paths: list[str | os.PathLike[str]]) -> int:
    """Return the spatial dimensions of the first readable path (2 if none is)."""
    for path in paths:
        try:
            return spatial_dims_of_file(path)
        except (OSError, ValueError):  # unreadable: reported when it is read
            continue
    return 2


class ImageLoader(TransformerMixin, BaseEstimator):
    """Read image files: turn file paths into an image array, in a Pipeline.

    Put it first in a :class:`~sklearn.pipeline.Pipeline` so that the
    pipeline is fitted on, and predicts from, file paths, and a saved model
    predicts straight from files. Each path is read with :func:`read_image`
    (PNG, JPEG, TIFF, DICOM, NIfTI), converted to ``channels`` and resized to
    ``shape``; or, for volumes, with :func:`read_volume` (a NIfTI volume, or
    a folder holding one DICOM series) and resized to ``(depth, height,
    width)``.

    Parameters
    ----------
    shape : int or tuple of int, default=None
        Resize every image to ``(height, width)`` (an int gives a square; for
        volumes an int gives a cube) with
        :class:`~sk_medcnn.preprocessing.Resize`, every volume to ``(depth,
        height, width)``; images of that size are left as they are. None
        requires all images of one call to have one size.
    channels : {1, 3}, default=None
        Convert every image to grayscale (1) or RGB (3); None keeps the
        files' channels, which must then agree.
    window : str or tuple of (float, float), default=None
        Passed to :func:`read_image`: ``"file"`` (the DICOM file's own
        window), a preset name (``"lung"``, ...) or ``(level, width)``; the
        images are then float32 in [0, 1].
    index : int, default=None
        Passed to :func:`read_image`: the frame or slice to take from files
        holding several (multi-frame DICOM, NIfTI volumes). Without it, such
        files are errors.
    slice_axis : {0, 1, 2}, default=2
        Passed to :func:`read_image`, for NIfTI volumes.
    spatial_dims : {None, 2, 3}, default=None
        Read 2-D images (2) or volumes (3). None decides from the first path
        of each call, reading at most its header: a folder (a DICOM series)
        and a NIfTI file holding a volume are volumes, unless ``index`` takes
        one slice of each; every other file is an image. Volumes keep their
        intensities (``channels`` and ``window="file"`` do not apply).
    on_error : {"raise", "fill"}, default="raise"
        An unreadable file raises its
        :class:`~sk_medcnn.exceptions.ImageReadError` (naming it), or becomes
        a blank (all-zero) image with one :class:`UnreadableFilesWarning`
        listing every such file. There is no "skip": a transformer must
        return one row per path, or predictions would no longer match the
        paths (and ``fit`` would misalign ``X`` and ``y``).

    See Also
    --------
    read_image : Read one file.
    load_image_folder : Read a class-per-subfolder tree into ``(X, y)``, or
        its paths with ``lazy=True``.

    Notes
    -----
    The transformer is stateless: ``fit`` only checks the parameters and
    ``X``, ``transform`` works without ``fit``, and a fitted pipeline keeps
    no image. ``transform`` returns ``(n_samples, height, width)`` for
    grayscale images and ``(n_samples, height, width, channels)`` for colour,
    in the files' common dtype (see :func:`read_image`; uint8 for ordinary
    PNG and JPEG files); ``(n_samples, depth, height, width)`` for volumes,
    depth first as the estimators take them.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import imageio.v3 as iio
    >>> import numpy as np
    >>> from sk_medcnn.io import ImageLoader
    >>> folder = tempfile.TemporaryDirectory()
    >>> paths = [Path(folder.name) / f"{i}.png" for i in range(3)]
    >>> for i, path in enumerate(paths):
    ...     iio.imwrite(path, np.full((6, 8), 10 * i, dtype=np.uint8))
    >>> X = ImageLoader(shape=(4, 4)).fit_transform(paths)
    >>> X.shape, X.dtype, X[:, 0, 0]
    ((3, 4, 4), dtype('uint8'), array([ 0, 10, 20], dtype=uint8))
    >>> folder.cleanup()
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "shape": optional(_check_shape),
        "channels": check_channels,
        "window": check_window,
        "index": check_index,
        "slice_axis": check_slice_axis,
        "spatial_dims": _check_spatial_dims,
        "on_error": one_of(("raise", "fill")),
    }

    def __init__(
        self,
        shape: int | tuple[int, ...] | None = None,
        *,
        channels: int | None = None,
        window: str | tuple[float, float] | None = None,
        index: int | None = None,
        slice_axis: int = 2,
        spatial_dims: int | None = None,
        on_error: str = "raise",
    ) -> None:
        self.shape = shape
        self.channels = channels
        self.window = window
        self.index = index
        self.slice_axis = slice_axis
        self.spatial_dims = spatial_dims
        self.on_error = on_error

    def fit(self, X: ArrayLike, y: Any = None) -> ImageLoader:
        """Check the parameters and the paths; read nothing.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, 1)
            File paths (str or os.PathLike).
        y : None
            Ignored; present for :class:`~sklearn.pipeline.Pipeline`.

        Returns
        -------
        self : object
            The transformer, unchanged.
        """
        check_params(self)
        _check_paths(X)
        return self

    def transform(self, X: ArrayLike) -> NDArray[Any]:
        """Read the files ``X`` into one image array.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, 1)
            File paths (str or os.PathLike): a list, an array, a pandas
            Series or a one-column DataFrame.

        Returns
        -------
        images : ndarray of shape (n_samples, height, width), \
                (n_samples, height, width, channels) or (n_samples, depth, \
                height, width[, channels])
            One image or volume per path, in the order of ``X``.

        Raises
        ------
        ImageReadError
            If a file cannot be read (``on_error="raise"``), or none can.
        ValueError
            If the images differ in size (without ``shape``) or channels
            (without ``channels``), a file holds several images (without
            ``index``, read as images), or ``shape``, ``index``, ``channels``
            or ``window`` do not apply to the files read as volumes.
        """
        check_params(self)
        paths = _check_paths(X)
        spatial_dims = self._spatial_dims_of(paths)
        images, _ = read_images(
            paths,
            shape=self.shape,
            channels=self.channels,
            on_error=self.on_error,
            read_params={
                "index": self.index,
                "slice_axis": self.slice_axis,
                "window": self.window,
            },
            stacklevel=3,
            spatial_dims=spatial_dims,
        )
        return images

    def _spatial_dims_of(self, paths: list[str | os.PathLike[str]]) -> int:
        """Resolve ``spatial_dims`` for ``paths`` and check the options against it."""
        spatial_dims = self.spatial_dims
        if spatial_dims is None:
            spatial_dims = 2 if self.index is not None else _first_dims(paths)
        _check_volume_options(
            spatial_dims, self.shape, self.channels, self.index, self.window
        )
        return spatial_dims

    def set_output(self, *, transform: str | None = None) -> ImageLoader:
        """Accept scikit-learn's output configuration; images stay numpy arrays.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            The requested container; checked, then ignored: images of shape
            ``(n, H, W[, C])`` have no DataFrame form.

        Returns
        -------
        self : object
            The transformer, unchanged.
        """
        one_of(OUTPUT_CONTAINERS)(transform, "transform")
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """Return True: the transformer is stateless and needs no fit."""
        return True

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # it takes a 1-D array of file paths (strings), not numeric arrays
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = []
        return tags
