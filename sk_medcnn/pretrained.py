"""Pretrained weights: read checkpoint files, fit them to a network, fetch them.

The estimators' ``pretrained`` parameter and :class:`sk_medcnn.ImageEmbedder` go
through here. A checkpoint is a state dict in a ``.pth``/``.pt`` file (read with
``torch.load(weights_only=True)``, which unpickles no code) or a
``.safetensors`` file; the architecture family's :class:`~sk_medcnn.registry.
WeightLoader` (:func:`sk_medcnn.register_weight_loader`) renames its keys into
the network's layout, names the output layer (replaced for a new number of
outputs) and the first convolution (adapted to the input's channels).

Nothing here downloads anything except :func:`fetch_weights`, called explicitly
with the file's SHA-256.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from .registry import WeightLoader
from .utils._network import channel_statistics

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "adapt_input_conv",
    "fetch_weights",
    "load_weights",
    "read_weights",
]

#: Channel means of ImageNet pixels in [0, 1] (RGB), which torchvision's and
#: timm's ResNet checkpoints expect subtracted.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
#: Channel standard deviations of ImageNet pixels in [0, 1] (RGB).
IMAGENET_STD = (0.229, 0.224, 0.225)

_TORCH_SUFFIXES = (".pth", ".pt", ".bin")
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
#: Full range of integer pixels, for ImageNet normalisation of pixels in [0, 1].
_PIXEL_RANGE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_LISTED = 8  # keys named in an error message


def read_weights(path: str | PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.pth``/``.pt``/``.bin`` or ``.safetensors`` file.

    Torch files are read with ``torch.load(..., weights_only=True,
    map_location="cpu")``, which refuses pickled code. A checkpoint that
    wraps its weights (``{"state_dict": {...}, "epoch": ...}``, also under
    ``"model"``) is unwrapped, and a ``"module."`` prefix on every key (saved
    from ``DataParallel``) is removed.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        On the CPU, as stored.

    Raises
    ------
    ValueError
        If the file is missing, has another suffix, cannot be read, or does not
        hold a mapping of names to tensors; the message names the file.

    Examples
    --------
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> from sk_medcnn.pretrained import read_weights
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "weights.pth"
    ...     torch.save({"state_dict": {"module.fc.bias": torch.zeros(2)}}, path)
    ...     sorted(read_weights(path))
    ['fc.bias']
    """
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"pretrained weights file {str(file)!r} does not exist.")
    suffix = file.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            loaded: Any = load_file(str(file), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise ValueError(
                f"pretrained weights file {str(file)!r} is not a readable "
                f"safetensors file: {error}"
            ) from error
    elif suffix in _TORCH_SUFFIXES:
        try:
            loaded = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as error:  # zipfile, pickle and torch raise many kinds
            raise ValueError(
                f"pretrained weights file {str(file)!r} cannot be read with "
                f"torch.load(weights_only=True): {type(error).__name__}: {error}"
            ) from error
    else:
        raise ValueError(
            f"pretrained weights file {str(file)!r} must end in .pth, .pt, .bin "
            "or .safetensors (or .skmed for a fitted sk_medcnn model)."
        )
    for _ in range(3):  # unwrap {"state_dict": {...}} and the like
        if isinstance(loaded, Mapping) and not _holds_tensors(loaded):
            inner = [
                key for key in _WRAPPER_KEYS if isinstance(loaded.get(key), Mapping)
            ]
            if not inner:
                break
            loaded = loaded[inner[0]]
    if not isinstance(loaded, Mapping) or not loaded or not _holds_tensors(loaded):
        kind = type(loaded).__name__
        raise ValueError(
            f"pretrained weights file {str(file)!r} does not hold a state dict "
            f"(a mapping of parameter names to tensors); got a {kind}"
            + (
                f" with keys {sorted(map(str, loaded))[:_LISTED]}"
                if isinstance(loaded, Mapping)
                else ""
            )
            + "."
        )
    state = {str(key): tensor for key, tensor in loaded.items()}
    if all(key.startswith("module.") for key in state):
        state = {key.removeprefix("module."): tensor for key, tensor in state.items()}
    return state


def _holds_tensors(mapping: Mapping[Any, Any]) -> bool:
    return all(
        isinstance(key, str) and isinstance(value, torch.Tensor)
        for key, value in mapping.items()
    )


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt a first convolution's weight to ``in_channels`` input channels.

    Parameters
    ----------
    weight : torch.Tensor of shape (out_channels, source_channels, ...)
        The pretrained kernel.
    in_channels : int
        The channels of the new input.

    Returns
    -------
    weight : torch.Tensor of shape (out_channels, in_channels, ...)
        For one channel, the sum of the kernels over the source channels: a
        grayscale image then gives the response the network had to the same
        image repeated in every channel. For other counts, the source kernels
        repeated cyclically (R, G, B, R, ...) up to ``in_channels`` and scaled
        by ``source_channels / in_channels``, which keeps the size of the
        first layer's response (exactly, for an image equal in every channel,
        when ``in_channels`` is a multiple of the source channels). The same
        count returns ``weight``.

    Raises
    ------
    ValueError
        If ``in_channels`` is below 1 or ``weight`` has fewer than 2 dimensions.

    Notes
    -----
    The rule of timm's ``adapt_input_conv`` (Wightman, PyTorch Image Models),
    written for any number of source channels.

    Examples
    --------
    >>> import torch
    >>> from sk_medcnn.pretrained import adapt_input_conv
    >>> rgb = torch.ones(4, 3, 7, 7)
    >>> adapt_input_conv(rgb, 1).shape, float(adapt_input_conv(rgb, 1)[0, 0, 0, 0])
    (torch.Size([4, 1, 7, 7]), 3.0)
    >>> float(adapt_input_conv(rgb, 6).sum() / rgb.sum())
    1.0
    """
    if (
        isinstance(in_channels, bool)
        or not isinstance(in_channels, int)
        or (in_channels < 1)
    ):
        raise ValueError(f"in_channels must be an int >= 1; got {in_channels!r}.")
    if weight.ndim < 2:
        raise ValueError(
            f"weight must be (out_channels, in_channels, ...); got shape "
            f"{tuple(weight.shape)}."
        )
    source = weight.shape[1]
    if in_channels == source:
        return weight
    dtype = weight.dtype
    # half-precision kernels are summed in float32; float64 stays float64
    work = weight.to(torch.promote_types(dtype, torch.float32))
    if in_channels == 1:
        adapted = work.sum(dim=1, keepdim=True)
    else:
        repeats = math.ceil(in_channels / source)
        repeat_dims = [1] * weight.ndim
        repeat_dims[1] = repeats
        adapted = work.repeat(*repeat_dims)[:, :in_channels] * (source / in_channels)
    return adapted.to(dtype)


def adapt_statistics(
    values: Sequence[float] | NDArray[Any], channels: int
) -> NDArray[np.float64]:
    """Adapt per-channel input statistics as :func:`adapt_input_conv` adapts kernels.

    One channel takes the mean over the source channels; other counts repeat
    the source values cyclically.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) == channels:
        return values.copy()
    if channels == 1:
        return np.array([values.mean()])
    return np.resize(values, channels).astype(np.float64)


def _under(key: str, modules: Sequence[str]) -> bool:
    return any(key == module or key.startswith(module + ".") for module in modules)


def _listed(keys: Sequence[str]) -> str:
    keys = list(keys)
    more = f" and {len(keys) - _LISTED} more" if len(keys) > _LISTED else ""
    return ", ".join(keys[:_LISTED]) + more


def load_weights(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    loader: WeightLoader,
    *,
    source: str,
    architecture: str,
    keep_head: bool = False,
) -> None:
    """Load a checkpoint into ``module`` through its family's weight loader.

    The keys are renamed with ``loader.map_keys``; the first convolution is
    adapted to the module's input channels (:func:`adapt_input_conv`); the
    checkpoint's output layer is dropped unless ``keep_head`` (the module's
    own, freshly initialised one stays). Every other tensor of the module must
    come from the checkpoint with its shape, and the checkpoint may hold
    nothing else; batch-norm counters (``num_batches_tracked``) may be absent.

    Parameters
    ----------
    module : torch.nn.Module
        The freshly built architecture.
    state_dict : mapping of str to torch.Tensor
        The checkpoint (:func:`read_weights`).
    loader : WeightLoader
        The family's loader (:func:`sk_medcnn.get_weight_loader`).
    source : str
        Where the weights come from, for error messages (the file).
    architecture : str
        The architecture's name, for error messages.
    keep_head : bool, default=False
        Load the output layer too (fine-tuning on the same classes).

    Raises
    ------
    ValueError
        Naming the unmatched, missing and mis-shaped keys and ``source``.

    Examples
    --------
    >>> from sk_medcnn import get_architecture, get_weight_loader
    >>> from sk_medcnn.pretrained import load_weights
    >>> source = get_architecture("resnet18")(3, 1000, (224, 224), width=8)
    >>> target = get_architecture("resnet18")(1, 2, (224, 224), width=8)
    >>> load_weights(target, source.state_dict(), get_weight_loader("resnet18"),
    ...              source="example", architecture="resnet18")
    >>> bool((target.conv1.weight == source.conv1.weight.sum(1, keepdim=True)).all())
    True
    """
    mapped = dict(loader.map_keys(dict(state_dict)))
    expected = module.state_dict()
    if not keep_head:
        mapped = {key: v for key, v in mapped.items() if not _under(key, loader.head)}
    key = loader.input_convolution
    if key is not None and key in mapped and key in expected:
        have, want = mapped[key], expected[key]
        if have.ndim == want.ndim >= 2 and have.shape[1] != want.shape[1]:
            mapped[key] = adapt_input_conv(have, int(want.shape[1]))
    unmatched = sorted(set(mapped) - set(expected))
    missing = sorted(
        name
        for name in set(expected) - set(mapped)
        if (keep_head or not _under(name, loader.head))
        and not name.endswith("num_batches_tracked")
    )
    wrong_shape = [
        f"{name} ({tuple(mapped[name].shape)} in the file, "
        f"{tuple(expected[name].shape)} in the network)"
        for name in sorted(set(mapped) & set(expected))
        if mapped[name].shape != expected[name].shape
    ]
    problems = []
    if unmatched:
        problems.append(f"unmatched keys in the file: {_listed(unmatched)}")
    if missing:
        problems.append(f"keys missing from the file: {_listed(missing)}")
    if wrong_shape:
        problems.append(f"keys of another shape: {_listed(wrong_shape)}")
    if problems:
        raise ValueError(
            f"the pretrained weights in {source} do not fit architecture "
            f"{architecture!r}: {'; '.join(problems)}. A checkpoint must be in "
            "the family's layout (torchvision's or timm's for the built-in "
            "ResNets); set architecture_params to match it (e.g. "
            "{'stem': 'imagenet'} for a 7x7 first convolution)."
        )
    for name, tensor in mapped.items():
        if tensor.is_floating_point() != expected[name].is_floating_point():
            raise ValueError(
                f"the pretrained weights in {source} do not fit architecture "
                f"{architecture!r}: {name} has dtype {tensor.dtype}, the network "
                f"{expected[name].dtype}."
            )
    module.load_state_dict(mapped, strict=False)


def imagenet_statistics(
    dtype: np.dtype[Any], channels: int, *, name: str = "input_normalization"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """ImageNet's mean and std in the units of images of ``dtype``.

    uint8 and uint16 pixels are taken over their full range (255, 65535);
    float pixels are taken to be in [0, 1] (checked by the caller).
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        scale = 1.0
    elif dtype in _PIXEL_RANGE:
        scale = _PIXEL_RANGE[dtype]
    else:
        raise ValueError(
            f"{name}='imagenet' needs uint8, uint16 or float images in [0, 1] "
            f"(ImageNet's statistics are of pixels in [0, 1]); got {dtype} images. "
            "Scale them to [0, 1], or pass input_normalization='data' or "
            "(mean, std) in the images' units."
        )
    mean = adapt_statistics(IMAGENET_MEAN, channels) * scale
    std = adapt_statistics(IMAGENET_STD, channels) * scale
    return mean, std


def resolve_input_statistics(
    setting: str | tuple[Any, Any] | list[Any],
    images: Any,
    indices: NDArray[np.intp] | None,
    *,
    default: str | tuple[NDArray[np.float64], NDArray[np.float64]],
    name: str = "input_normalization",
) -> tuple[NDArray[np.float64], NDArray[np.float64], str]:
    """Resolve an ``input_normalization`` setting into per-channel mean and std.

    Parameters
    ----------
    setting : {"auto", "data", "imagenet"} or (mean, std)
        The parameter's value.
    images : array-like of shape (n_samples, height, width, channels)
        The training images (read only for ``"data"`` and the range check of
        ``"imagenet"``).
    indices : ndarray of int or None
        The rows that train.
    default : {"data", "imagenet"} or (mean, std)
        What ``"auto"`` stands for: the weights' expectation.
    name : str, default="input_normalization"
        The parameter's name, for messages.

    Returns
    -------
    mean, std : ndarray of shape (channels,)
    source : {"data", "imagenet", "pretrained", "given"}
    """
    channels = int(images.shape[-1])
    if isinstance(setting, str) and setting == "auto":
        if not isinstance(default, str):
            mean, std = default
            return (
                adapt_statistics(mean, channels),
                adapt_statistics(std, channels),
                "pretrained",
            )
        setting = default
    if isinstance(setting, str):
        if setting == "data":
            mean, std = channel_statistics(images, indices=indices)
            return mean, std, "data"
        if setting == "imagenet":
            imagenet = imagenet_statistics(images.dtype, channels, name=name)
            check_unit_range(images, indices, name=name)
            return imagenet[0], imagenet[1], "imagenet"
        raise ValueError(
            f"{name} must be 'auto', 'data', 'imagenet' or (mean, std); got "
            f"{setting!r}."
        )
    given = []
    for values in setting:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
        if len(array) == 1:
            array = np.full(channels, array[0])
        if len(array) != channels:
            raise ValueError(
                f"{name}=(mean, std) must give one value or {channels} (one per "
                f"channel of the images); got {len(array)}."
            )
        given.append(array)
    return given[0], given[1], "given"


def check_unit_range(images: Any, indices: Any, *, name: str) -> None:
    """Refuse float images outside [0, 1] for ImageNet normalisation."""
    if np.dtype(images.dtype).kind != "f":
        return
    rows = np.arange(len(images)) if indices is None else np.asarray(indices)
    low, high = math.inf, -math.inf
    chunk = max(1, 2**16 // max(1, math.prod(images.shape[1:])))
    for start in range(0, len(rows), chunk):
        values = np.asarray(images[rows[start : start + chunk]])
        low, high = min(low, float(values.min())), max(high, float(values.max()))
    tolerance = 1e-3
    if low < -tolerance or high > 1 + tolerance:
        raise ValueError(
            f"{name}='imagenet' expects float images in [0, 1] (uint8 and uint16 "
            f"images are scaled by 255 and 65535), but the training images span "
            f"[{low:.4g}, {high:.4g}]. Scale them to [0, 1] "
            "(sk_medcnn.preprocessing.IntensityNormalizer), or pass "
            "input_normalization='data' or (mean, std) in the images' units."
        )


def fetch_weights(
    url: str,
    sha256: str,
    *,
    folder: str | PathLike[str] | None = None,
    filename: str | None = None,
    progress: bool = False,
) -> Path:
    """Download a weights file once, verify its SHA-256, and return its path.

    The only function of sk_medcnn that uses the network, and only when
    called. A file already in ``folder`` with the right checksum is not
    downloaded again; a download with another checksum is deleted and
    refused. Built on pooch (what SciPy and scikit-image use for their data).

    Parameters
    ----------
    url : str
        Where to download from (``https://``, ``http://``, ``ftp://``, ...).
    sha256 : str
        The file's SHA-256 as 64 hexadecimal digits (e.g. from the model
        card); required, so that nothing unverified is ever loaded.
    folder : str or path-like, default=None
        Where to keep the file; the user cache (``pooch.os_cache("sk_medcnn")``)
        when None.
    filename : str, default=None
        The file's name there; derived from the URL and checksum when None.
        Keep the suffix (``.pth``, ``.safetensors``): ``pretrained=`` reads
        the file by it.
    progress : bool, default=False
        Show a progress bar (needs tqdm).

    Returns
    -------
    path : pathlib.Path
        The verified file, to pass as ``pretrained=``.

    Raises
    ------
    ValueError
        If ``sha256`` is not 64 hexadecimal digits, or the downloaded file has
        another checksum (the file is then removed).

    Examples
    --------
    >>> from sk_medcnn import fetch_weights
    >>> fetch_weights("https://example.org/w.pth", sha256="not-a-checksum")
    Traceback (most recent call last):
    ...
    ValueError: sha256 must be the file's SHA-256 as 64 hexadecimal digits; ...
    """
    import pooch

    if not isinstance(url, str) or not url:
        raise TypeError(f"url must be a non-empty str; got {url!r}.")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(
            "sha256 must be the file's SHA-256 as 64 hexadecimal digits; got "
            f"{sha256!r}."
        )
    path = pooch.os_cache("sk_medcnn") if folder is None else Path(folder)
    try:
        found = pooch.retrieve(
            url,
            known_hash=f"sha256:{sha256.lower()}",
            fname=filename,
            path=path,
            progressbar=progress,
        )
    except ValueError as error:
        raise ValueError(
            f"the file downloaded from {url} does not have the SHA-256 {sha256} "
            f"and was removed: {error}"
        ) from error
    return Path(found)
