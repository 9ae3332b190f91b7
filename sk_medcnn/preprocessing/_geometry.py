"""Geometric transformers: Resize, CenterCrop and Pad."""

from __future__ import annotations

import functools
import math
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from skimage.transform import resize as skimage_resize
from skimage.util import img_as_float32
from threadpoolctl import ThreadpoolController

from ..utils._arrays import cast_like, float_dtype_for
from ..utils._memory import check_memory
from ..utils._validation import (
    Checker,
    boolean,
    finite_number,
    one_of,
    spatial_dims_like,
)
from ._base import (
    CHUNK_BYTES,
    _ImageTransformer,
    iter_chunks,
    spatial_size,
    spatial_size_like,
    spline_order,
)

__all__ = ["CenterCrop", "Pad", "Resize"]

#: numpy.pad modes that fill deterministically ("empty" leaves memory as it was).
PAD_MODES = (
    "constant",
    "edge",
    "linear_ramp",
    "maximum",
    "mean",
    "median",
    "minimum",
    "reflect",
    "symmetric",
    "wrap",
)


def _images(n: int) -> str:
    """Return ``"1 image"``, ``"2 images"``."""
    return f"{n} image" if n == 1 else f"{n} images"


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """Numpy's BLAS libraries, found once (a fresh lookup costs 0.3 ms a call)."""
    return ThreadpoolController()


@functools.lru_cache(maxsize=64)
def _resize_matrix(
    n_in: int, n_out: int, order: int, anti_aliasing: bool
) -> NDArray[np.float64]:
    """Return the ``(n_out, n_in)`` matrix of 1-D resizing along one axis.

    :func:`skimage.transform.resize` is separable: a Gaussian filter applied
    axis by axis, then a tensor-product spline zoom, both linear with
    per-axis boundary handling. Column ``j`` of this matrix is therefore what
    ``resize`` makes of a unit impulse at position ``j``, and resizing an image
    is ``M_h @ image @ M_w.T`` (before ``resize``'s final clip, which only
    matters for ``order > 1`` and is applied per image by the caller).
    """
    matrix = skimage_resize(
        np.eye(n_in),
        (n_out, n_in),
        order=order,
        mode="reflect",
        anti_aliasing=anti_aliasing,
        preserve_range=True,
        clip=False,
    )
    matrix.setflags(write=False)
    return matrix


def _resize_batch(
    images: NDArray[Any],
    shape: tuple[int, int],
    *,
    order: int,
    anti_aliasing: bool,
    preserve_range: bool,
) -> NDArray[Any]:
    """Resize channels-last images ``(n, H, W, C)`` to ``(n, h, w, C)``.

    Each axis is one matrix product over the whole chunk (a single large
    GEMM), not one small product per image: many small multi-threaded BLAS
    calls slow down by orders of magnitude when other processes share the
    cores (measured: 60 instead of 4,000 images/s for 224 -> 128). The
    products run on one BLAS thread: for these thin matrices that measured
    2.3 times (28 -> 64) and 1.6 times (224 -> 128) faster than two threads
    on two cores.
    """
    n_samples, height, width, channels = images.shape
    out_height, out_width = shape
    rescale = not preserve_range and images.dtype.kind in "iub"
    out_dtype = np.dtype(np.float32) if rescale else images.dtype
    compute = float_dtype_for(images.dtype)
    rows = _resize_matrix(height, out_height, order, anti_aliasing).astype(compute)
    columns = _resize_matrix(width, out_width, order, anti_aliasing).astype(compute)
    out = np.empty((n_samples, out_height, out_width, channels), dtype=out_dtype)
    per_image = _resize_temporaries(images.shape, shape, compute)
    with _blas_controller().limit(limits=1, user_api="blas"):
        for chunk in iter_chunks(n_samples, per_image):
            _resize_chunk(
                images[chunk],
                out[chunk],
                rows,
                columns,
                rescale=rescale,
                order=order,
            )
    return out


def _resize_temporaries(
    image_shape: tuple[int, ...], shape: tuple[int, int], compute: Any
) -> int:
    """Bytes of the temporaries ``_resize_chunk`` makes per image.

    The transposed copy ``(H, C, W)``, the product along the height ``(h, C, W)``,
    the product along the width and its reordered copy, ``(h, C, w)`` each.
    """
    _, height, width, channels = image_shape
    out_height, out_width = shape
    values = height * width + out_height * width + 2 * out_height * out_width
    return channels * values * np.dtype(compute).itemsize


def _resize_chunk(
    images: NDArray[Any],
    out: NDArray[Any],
    rows: NDArray[np.floating[Any]],
    columns: NDArray[np.floating[Any]],
    *,
    rescale: bool,
    order: int,
) -> None:
    """Resize a chunk of channels-last images ``(m, H, W, C)`` into ``out``."""
    compute = rows.dtype
    n_images, height, width, channels = images.shape
    out_height, out_width = out.shape[1:3]
    source = img_as_float32(images) if rescale else images
    # (H, m, C, W): one copy in the compute dtype, the height first
    block = np.ascontiguousarray(source.transpose(1, 0, 3, 2), dtype=compute)
    # along the height (an unchanged size is the identity whatever the order,
    # so it is skipped): (h, H) @ (H, m * C * W)
    if out_height != height:
        block = rows @ block.reshape(height, -1)
    # along the width: (h * m * C, W) @ (W, w)
    if out_width != width:
        block = block.reshape(-1, width) @ columns.T
    result = np.array(
        block.reshape(out_height, n_images, channels, out_width).transpose(1, 0, 3, 2),
        dtype=compute,
    )
    if order > 1:
        # splines of order > 1 overshoot; resize clips to the image's range
        low = source.min(axis=(1, 2, 3), keepdims=True)
        high = source.max(axis=(1, 2, 3), keepdims=True)
        np.clip(result, low, high, out=result)
    out[...] = cast_like(result, out.dtype)


def _resize_volumes(
    volumes: NDArray[Any],
    shape: tuple[int, int, int],
    *,
    order: int,
    anti_aliasing: bool,
    preserve_range: bool,
) -> NDArray[Any]:
    """Resize channels-last volumes ``(n, D, H, W, C)`` to ``(n, d, h, w, C)``.

    The same separable computation as for images, one axis at a time: each
    axis is a product with the matrix of :func:`_resize_matrix` over a chunk
    of volumes (``np.tensordot``), then splines of order > 1 are clipped to
    each volume's input range, as :func:`skimage.transform.resize` does.
    """
    n_samples, *sizes, channels = volumes.shape
    rescale = not preserve_range and volumes.dtype.kind in "iub"
    out_dtype = np.dtype(np.float32) if rescale else volumes.dtype
    compute = float_dtype_for(volumes.dtype)
    matrices = [
        None
        if size_out == size_in
        else _resize_matrix(size_in, size_out, order, anti_aliasing).astype(compute)
        for size_in, size_out in zip(sizes, shape, strict=True)
    ]
    out = np.empty((n_samples, *shape, channels), dtype=out_dtype)
    largest = max(math.prod(sizes), math.prod(shape)) * 4  # every intermediate shape
    per_volume = 2 * largest * channels * np.dtype(compute).itemsize
    with _blas_controller().limit(limits=1, user_api="blas"):
        for chunk in iter_chunks(n_samples, per_volume):
            source = volumes[chunk]
            if rescale:
                source = img_as_float32(source)
            block = source.astype(compute)
            for axis, matrix in enumerate(matrices, start=1):
                if matrix is not None:
                    product = np.tensordot(matrix, block, ([1], [axis]))
                    block = np.moveaxis(product, 0, axis)
            if order > 1:
                low = source.min(axis=(1, 2, 3, 4), keepdims=True)
                high = source.max(axis=(1, 2, 3, 4), keepdims=True)
                block = np.clip(block, low, high)
            out[chunk] = cast_like(np.array(block, dtype=compute), out_dtype)
    return out


class Resize(_ImageTransformer):
    """Resize images to ``shape`` with scikit-image's interpolation, batched.

    The result equals :func:`skimage.transform.resize` applied to each image
    (``mode="reflect"``, ``clip=True``), to float rounding, but the whole
    batch is resized at once: ``resize`` is separable (a Gaussian
    anti-aliasing filter axis by axis, then a spline zoom), so resizing is
    the product ``M_h @ image @ M_w.T`` of two small matrices that
    ``resize`` itself computes once per shape, and a batch is two matrix
    products. On two cores that measured about 30 times faster than a per-image
    loop for 28 to 64 pixels and about 7 times faster for 224 to 128 pixels
    (``benchmarks/bench_preprocessing.py``); calling ``resize`` once on the
    4-D batch is slower than the loop.

    Parameters
    ----------
    shape : int or tuple of (int, int) or of (int, int, int)
        Output ``(height, width)`` of images or ``(depth, height, width)`` of
        volumes; an int gives a square or a cube. A tuple of the other
        length is an error naming the shape of ``X``.
    anti_aliasing : bool, default=True
        Smooth with a Gaussian of standard deviation ``(factor - 1) / 2``
        along each axis that shrinks, before interpolating, as
        :func:`skimage.transform.resize` does. No effect when enlarging.
    order : int, default=1
        Spline order: 0 nearest neighbour, 1 bilinear, 3 bicubic (0 to 5).
        Orders above 1 are clipped to each image's input range.
    preserve_range : bool, default=True
        Keep the intensities as they are. If False, integer images are
        scaled to [0, 1] (``skimage.util.img_as_float32``) and returned as
        float32; float images are unchanged.
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen in ``fit`` (``height * width * channels``).
    image_shape_ : tuple of int
        ``(height, width, channels)`` of the images seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame of flat pixels given to ``fit``.

    See Also
    --------
    CenterCrop : Cut the centre of each image.
    Pad : Pad each image to a minimum size.
    skimage.transform.resize : The per-image function this batches.

    Notes
    -----
    The transformer is stateless: ``fit`` only checks its input, and
    ``transform`` resizes images of any size, so a pipeline fitted on one
    resolution accepts another. Flat rows are the exception: they must have
    as many values as in ``fit``, since their image shape is inferred.

    The dtype is kept: uint8 stays uint8 (rounded and clipped), float32 stays
    float32. Integers of up to 16 bits and floats up to float32 are computed
    in float32, wider types in float64; no float64 copy of a float32 or
    uint8 batch is made. The one place where results differ from ``resize``
    by more than rounding is ``order=0`` with anti-aliasing on integer
    images: ``resize`` then filters in the integer dtype, rounding after each
    axis, where ``Resize`` filters in float (up to 2 grey levels apart).

    Volumes are resized the same way along their three axes (``resize`` on
    each volume, to float rounding): one matrix product per axis.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.preprocessing import Resize
    >>> X = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    >>> X_big = Resize((64, 64)).fit_transform(X)
    >>> X_big.shape, X_big.dtype
    ((10, 64, 64), dtype('uint8'))
    >>> Resize(2, anti_aliasing=False).fit_transform(np.eye(4)[np.newaxis])
    array([[[0.5, 0. ],
            [0. , 0.5]]])
    >>> volumes = np.zeros((2, 28, 28, 28), dtype=np.uint8)  # (n, D, H, W)
    >>> Resize((14, 32, 32)).fit_transform(volumes).shape
    (2, 14, 32, 32)
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "shape": spatial_size_like,
        "anti_aliasing": boolean,
        "order": spline_order,
        "preserve_range": boolean,
        "spatial_dims": spatial_dims_like,
    }

    def __init__(
        self,
        shape: int | tuple[int, ...],
        *,
        anti_aliasing: bool = True,
        order: int = 1,
        preserve_range: bool = True,
        spatial_dims: int | str = "auto",
    ) -> None:
        self.shape = shape
        self.anti_aliasing = anti_aliasing
        self.order = order
        self.preserve_range = preserve_range
        self.spatial_dims = spatial_dims

    def _transform_images(self, images: NDArray[Any]) -> NDArray[Any]:
        size = spatial_size(self.shape, images, "shape", "Resize")
        if images.ndim == 5:
            return self._transform_volumes(images, size)
        n_samples, height, width, channels = images.shape
        out_height, out_width = size
        rescale = not self.preserve_range and images.dtype.kind in "iub"
        out_itemsize = 4 if rescale else images.dtype.itemsize
        per_image = _resize_temporaries(
            images.shape, (out_height, out_width), float_dtype_for(images.dtype)
        )
        # the output, a chunk's temporaries (CHUNK_BYTES, or one image if more),
        # and the two resizing matrices with the identity matrices they come from
        need = (
            n_samples * out_height * out_width * channels * out_itemsize
            + max(per_image, CHUNK_BYTES)
            + 8 * (height * (height + out_height) + width * (width + out_width))
        )
        check_memory(
            need,
            f"Resize(shape={self.shape!r}) on {_images(n_samples)} of "
            f"{height}x{width}x{channels} {images.dtype}",
            "Ask for a smaller shape, or resize fewer images at a time.",
        )
        return _resize_batch(
            images,
            (out_height, out_width),
            order=int(self.order),
            anti_aliasing=bool(self.anti_aliasing),
            preserve_range=bool(self.preserve_range),
        )

    def _transform_volumes(
        self, volumes: NDArray[Any], size: tuple[int, ...]
    ) -> NDArray[Any]:
        n_samples, *sizes, channels = volumes.shape
        rescale = not self.preserve_range and volumes.dtype.kind in "iub"
        out_itemsize = 4 if rescale else volumes.dtype.itemsize
        check_memory(
            n_samples * math.prod(size) * channels * out_itemsize + CHUNK_BYTES,
            f"Resize(shape={self.shape!r}) on {n_samples} volume(s) of "
            f"{'x'.join(map(str, sizes))}x{channels} {volumes.dtype}",
            "Ask for a smaller shape, or resize fewer volumes at a time.",
        )
        return _resize_volumes(
            volumes,
            (size[0], size[1], size[2]),
            order=int(self.order),
            anti_aliasing=bool(self.anti_aliasing),
            preserve_range=bool(self.preserve_range),
        )


class CenterCrop(_ImageTransformer):
    """Cut the central ``shape`` region out of each image.

    Parameters
    ----------
    shape : int or tuple of (int, int) or of (int, int, int)
        ``(height, width)`` of the crop, or ``(depth, height, width)`` for
        volumes; an int gives a square or a cube. Every image must be at
        least this large (use :class:`Pad` first otherwise).
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen in ``fit`` (``height * width * channels``).
    image_shape_ : tuple of int
        ``(height, width, channels)`` of the images seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame of flat pixels given to ``fit``.

    See Also
    --------
    Pad : Pad each image to a minimum size, centred the same way.
    Resize : Change the size by interpolation.

    Notes
    -----
    When ``height - shape[0]`` is odd, the extra row is cut from the bottom
    (the top offset is ``(height - shape[0]) // 2``), and likewise the extra
    column from the right, so that ``CenterCrop`` undoes :class:`Pad` exactly
    (volumes: the extra slice from the back). The result is a new array of
    the input's dtype, never a view of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.preprocessing import CenterCrop
    >>> X = np.arange(2 * 4 * 4).reshape(2, 4, 4)
    >>> CenterCrop(2).fit_transform(X)[0]
    array([[ 5,  6],
           [ 9, 10]])
    >>> CenterCrop((4, 6, 6)).fit_transform(np.zeros((1, 8, 10, 10))).shape
    (1, 4, 6, 6)
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "shape": spatial_size_like,
        "spatial_dims": spatial_dims_like,
    }

    def __init__(
        self, shape: int | tuple[int, ...], *, spatial_dims: int | str = "auto"
    ) -> None:
        self.shape = shape
        self.spatial_dims = spatial_dims

    def _transform_images(self, images: NDArray[Any]) -> NDArray[Any]:
        size = spatial_size(self.shape, images, "shape", "CenterCrop")
        sizes = images.shape[1:-1]
        if any(have < want for have, want in zip(sizes, size, strict=True)):
            unit = "voxels" if len(sizes) == 3 else "pixels"
            kind = "volumes" if len(sizes) == 3 else "images"
            raise ValueError(
                f"CenterCrop(shape={self.shape!r}) needs {kind} of at least "
                f"{'x'.join(map(str, size))} {unit}; X holds "
                f"{'x'.join(map(str, sizes))} {kind}. "
                "Pad them first (sk_medcnn.preprocessing.Pad) or crop less."
            )
        region = tuple(
            slice((have - want) // 2, (have - want) // 2 + want)
            for have, want in zip(sizes, size, strict=True)
        )
        return images[(slice(None), *region)].copy()


class Pad(_ImageTransformer):
    """Pad each image, centred, to at least ``shape`` pixels.

    Images already that large along an axis are left alone along it, so the
    output is ``(max(height, shape[0]), max(width, shape[1]))`` (volumes
    likewise along their three axes).

    Parameters
    ----------
    shape : int or tuple of (int, int) or of (int, int, int)
        Minimum ``(height, width)``, or ``(depth, height, width)`` for
        volumes; an int gives a square or a cube.
    mode : str, default="constant"
        A :func:`numpy.pad` mode: ``"constant"``, ``"edge"``,
        ``"linear_ramp"``, ``"maximum"``, ``"mean"``, ``"median"``,
        ``"minimum"``, ``"reflect"``, ``"symmetric"`` or ``"wrap"``.
        Statistics (``"mean"``, ...) are taken per image and channel.
    constant_values : float, default=0
        Fill value of ``mode="constant"`` and end value of
        ``mode="linear_ramp"``; it must fit the images' dtype (e.g. -1024
        for CT in HU, but not -1 for uint8 images).
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen in ``fit`` (``height * width * channels``).
    image_shape_ : tuple of int
        ``(height, width, channels)`` of the images seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame of flat pixels given to ``fit``.

    See Also
    --------
    CenterCrop : The inverse: cut the centre out.
    numpy.pad : The function applied (once, to the whole batch).

    Notes
    -----
    An odd number of added rows puts the extra row at the bottom (and an
    extra column at the right), as :class:`CenterCrop` expects. The dtype is
    kept.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.preprocessing import Pad
    >>> X = np.ones((1, 2, 2), dtype=np.uint8)
    >>> Pad((3, 4)).fit_transform(X)[0]
    array([[0, 1, 1, 0],
           [0, 1, 1, 0],
           [0, 0, 0, 0]], dtype=uint8)
    >>> volumes = np.zeros((1, 2, 3, 5))  # (n, D, H, W)
    >>> Pad((4, 4, 4), constant_values=-1024).fit_transform(volumes).shape
    (1, 4, 4, 5)
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "shape": spatial_size_like,
        "mode": one_of(PAD_MODES),
        "constant_values": finite_number,
        "spatial_dims": spatial_dims_like,
    }

    def __init__(
        self,
        shape: int | tuple[int, ...],
        mode: str = "constant",
        constant_values: float = 0,
        *,
        spatial_dims: int | str = "auto",
    ) -> None:
        self.shape = shape
        self.mode = mode
        self.constant_values = constant_values
        self.spatial_dims = spatial_dims

    def _transform_images(self, images: NDArray[Any]) -> NDArray[Any]:
        size = spatial_size(self.shape, images, "shape", "Pad")
        sizes = images.shape[1:-1]
        extra = [max(0, want - have) for have, want in zip(sizes, size, strict=True)]
        if not any(extra):
            return images.copy()
        self._check_fill_value(images.dtype)
        n_samples, channels = images.shape[0], images.shape[-1]
        out_sizes = [have + more for have, more in zip(sizes, extra, strict=True)]
        check_memory(  # the output of numpy.pad
            n_samples * math.prod(out_sizes) * channels * images.dtype.itemsize,
            f"Pad(shape={self.shape!r}) on {_images(n_samples)} of "
            f"{'x'.join(map(str, sizes))}x{channels} {images.dtype}",
            "Ask for a smaller shape, or pad fewer images at a time.",
        )
        widths = (
            (0, 0),
            *((more // 2, more - more // 2) for more in extra),
            (0, 0),
        )
        options: dict[str, Any] = {}
        if self.mode == "constant":
            options["constant_values"] = self.constant_values
        elif self.mode == "linear_ramp":
            options["end_values"] = self.constant_values
        # numpy.pad works axis by axis, so padding the batch once (never along
        # n or channels) is padding every image on its own
        mode: Any = self.mode  # a checked str; numpy's stubs want a Literal
        return np.pad(images, widths, mode=mode, **options)

    def _check_fill_value(self, dtype: np.dtype[Any]) -> None:
        if self.mode not in ("constant", "linear_ramp") or dtype.kind not in "iu":
            return
        value = self.constant_values
        info = np.iinfo(dtype)
        integral = isinstance(value, Integral) or float(value).is_integer()
        if not integral or not info.min <= value <= info.max:
            raise ValueError(
                f"constant_values={value!r} cannot be stored in the images' dtype "
                f"{dtype} (integers from {info.min} to {info.max}); pass a value in "
                "that range, or convert the images to float first."
            )
