"""Shared machinery of the explanation maps: estimator, batches, layers, targets."""

from __future__ import annotations

import contextlib
import difflib
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..architectures import ACSConv
from ..estimators import MedicalCNNClassifier
from ..preprocessing import CenterCrop, Pad
from ..utils._image_source import ImageSource
from ..utils._validation import check_images

#: A layer given by name (as in ``named_modules()`` of the architecture), as
#: the module itself, or as a callable returning it from the architecture.
LayerLike = str | nn.Module | Callable[[nn.Module], nn.Module] | None

#: Images explained at once unless the caller says otherwise.
DEFAULT_BATCH_SIZE = 32


@dataclass
class Model:
    """A fitted classifier, the preprocessing before it, and where to run it."""

    classifier: MedicalCNNClassifier
    preprocessing: Pipeline | None
    network: nn.Module  # the fitted ImageNetwork: (n, H, W, C) -> logits
    device: torch.device

    @property
    def architecture(self) -> nn.Module:
        """The registered architecture inside the network, ``(n, C, H, W)`` in."""
        return cast(nn.Module, self.network.body)


def resolve_model(estimator: Any) -> Model:
    """Check ``estimator`` and split a Pipeline into preprocessing and classifier.

    Raises
    ------
    TypeError
        If ``estimator`` is neither a :class:`MedicalCNNClassifier` nor a
        Pipeline ending in one.
    sklearn.exceptions.NotFittedError
        If the classifier is not fitted.
    """
    preprocessing = None
    classifier = estimator
    if isinstance(estimator, Pipeline):
        classifier = estimator.steps[-1][1]
        if len(estimator.steps) > 1:
            preprocessing = estimator[:-1]
    if not isinstance(classifier, MedicalCNNClassifier):
        shown = type(classifier).__name__
        if classifier is not estimator:
            shown = f"a Pipeline ending in {shown}"
        raise TypeError(
            "estimator must be a fitted MedicalCNNClassifier or a Pipeline ending "
            f"in one; got {shown}. Explanation maps need the gradients of a CNN "
            "(for a search object, pass its best_estimator_)."
        )
    check_is_fitted(classifier, "net_")
    if preprocessing is not None:
        changes_view = [
            name
            for name, step in preprocessing.steps
            if isinstance(step, CenterCrop | Pad)
        ]
        if changes_view:
            warnings.warn(
                f"the pipeline's step(s) {changes_view!r} crop or pad the images, "
                "so the model sees another field of view than X: the maps are "
                "stretched over the input images and misplaced by the crop or pad.",
                UserWarning,
                stacklevel=3,
            )
    network = classifier.net_.module_
    return Model(
        classifier, preprocessing, network, torch.device(classifier.net_.device)
    )


def input_size(model: Model, X: Any) -> tuple[int, ...] | None:
    """Return the ``(height, width)`` of the images in ``X`` as given, if any.

    Image arrays ``(n, H, W)`` and ``(n, H, W, C)`` have one (volumes ``(n, D,
    H, W[, C])``: ``(depth, height, width)``); flat rows given
    to a bare classifier take its fitted image shape. Anything else (flat rows
    or file paths before preprocessing) has none: ``None``, and the maps keep
    the size of the images the classifier sees.
    """
    shape = getattr(X, "shape", None)
    if shape is None:
        array = np.asarray(X) if isinstance(X, list | tuple) else None
        shape = None if array is None or array.dtype.kind not in "biuf" else array.shape
    spatial_dims = len(model.classifier.image_shape_) - 1
    if shape is not None and len(shape) in (spatial_dims + 1, spatial_dims + 2):
        return tuple(int(side) for side in shape[1 : 1 + spatial_dims])
    if model.preprocessing is None:
        return tuple(int(side) for side in model.classifier.image_shape_[:-1])
    return None


def n_images(X: Any) -> int:
    """Return the number of images in ``X`` (an array, list or DataFrame)."""
    try:
        return len(X)
    except TypeError:
        raise ValueError(
            "X must be an array of images, a list of them, or of file paths; got "
            f"{type(X).__name__}."
        ) from None


def iter_batches(
    model: Model, X: Any, batch_size: int
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield ``(rows, images)``: the model's input tensor ``(n, H, W, C)`` by batch.

    The preprocessing runs on one batch at a time, so memory grows with the
    batch, not with a transformed copy of ``X``.
    """
    n_samples = n_images(X)
    if n_samples == 0:
        raise ValueError("X holds no images; pass at least one.")
    source: ImageSource | None = None
    images: NDArray[Any] | ImageSource
    if model.preprocessing is None:
        # checked once; arrays, file paths and datasets (indexed by item, not
        # by a slice of rows) are then read a batch of rows at a time
        source = model.classifier._check_predict_images(X)
    for start in range(0, n_samples, batch_size):
        rows = slice(start, min(start + batch_size, n_samples))
        if source is not None:
            images = source[rows]
        else:
            batch = _safe_indexing(X, rows)
            if model.preprocessing is not None:
                batch = model.preprocessing.transform(batch)
            images = model.classifier._check_predict_images(batch)
        array = np.array(images, dtype=np.float32)  # a writeable float copy
        yield rows, torch.from_numpy(array).to(model.device)


def model_inputs(model: Model, X: Any) -> NDArray[Any]:
    """Return the images ``(n, H, W, C)`` the classifier sees for ``X``."""
    if model.preprocessing is not None:
        X = model.preprocessing.transform(X)
    # file paths and datasets come back as a source read by rows: read them
    return np.asarray(model.classifier._check_predict_images(X))


def display_images(model: Model, X: Any) -> NDArray[Any]:
    """Images ``(n, H, W, C)`` to draw the maps over: X itself where it has a size."""
    if input_size(model, X) is not None and model.preprocessing is not None:
        return check_images(
            X,
            estimator_name="plot_explanations",
            spatial_dims=len(model.classifier.image_shape_) - 1,
        )
    return model_inputs(model, X)


def target_indices(
    model: Model, target: Any, n_samples: int
) -> NDArray[np.intp] | None:
    """Turn ``target`` (None, a label, or one label per image) into class indices.

    Raises
    ------
    ValueError
        If a label is not in ``classes_`` or the number of labels is wrong.
    """
    if target is None:
        return None
    classes = model.classifier.classes_
    index_of = {label: index for index, label in enumerate(classes.tolist())}
    labels = np.asarray(target)
    if labels.ndim > 1:
        raise ValueError(
            f"target must be a class label or one label per image; got shape "
            f"{labels.shape}."
        )
    flat = labels.reshape(-1).tolist()
    if labels.ndim == 1 and len(flat) != n_samples:
        raise ValueError(
            f"target holds {len(flat)} labels but X holds {n_samples} images; pass "
            "one label, or one per image."
        )
    indices = []
    for label in flat:
        try:
            indices.append(index_of[label])
        except (KeyError, TypeError):
            raise ValueError(
                f"target {label!r} is not a class of the classifier; classes_ are "
                f"{classes.tolist()!r}."
            ) from None
    result = np.asarray(indices, dtype=np.intp)
    return np.full(n_samples, result[0]) if labels.ndim == 0 else result


def batch_targets(
    targets: NDArray[np.intp] | None, rows: slice, device: torch.device
) -> torch.Tensor | None:
    """Return one batch's target class indices as a tensor (None: predicted)."""
    if targets is None:
        return None
    return torch.as_tensor(targets[rows], dtype=torch.int64, device=device)


@contextlib.contextmanager
def explaining(network: nn.Module) -> Iterator[None]:
    """Run the block in eval mode with gradients on; restore every module's mode.

    Each submodule's own ``training`` flag is restored (not one flag for all),
    so a user's frozen batch-norm layers stay as they were.
    """
    modes = [(module, module.training) for module in network.modules()]
    network.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        for module, mode in modes:
            module.training = mode


def class_scores(
    logits: torch.Tensor, targets: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the summed target logits to differentiate, and the targets used.

    ``targets=None`` explains the predicted class (the arg-max logit, as
    ``predict`` decides). The logit before the softmax is used, as in the
    Grad-CAM paper: the softmax would couple the classes' gradients.
    """
    if targets is None:
        targets = logits.detach().argmax(dim=1)
    return logits.gather(1, targets[:, None]).sum(), targets


def _conv_layers(architecture: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, module)
        for name, module in architecture.named_modules()
        if _is_convolution(module)
    ]


def _is_convolution(module: nn.Module) -> bool:
    """Tell whether ``module`` is a 2-D, 3-D or ACS convolution."""
    return isinstance(module, nn.Conv2d | nn.Conv3d | ACSConv)


def default_layer(model: Model) -> nn.Module:
    """Return the module giving the last convolutional feature maps.

    One blank image runs through the architecture with a forward hook on
    every module, recording the modules in the order they finish. From the
    ``nn.Conv2d`` that finishes last (the order of execution, not of
    registration: in a ResNet block the projection shortcut is registered
    after the block's convolutions but runs before them), the search moves on
    through the modules that follow while their output is a feature map of
    the same height and width (the activation, batch normalisation, residual
    addition, and the block and stage holding the convolution) and stops
    where the maps are pooled or flattened. The last of those modules that
    runs once per forward pass is returned: ``features.7``, the ReLU after the
    last convolution, for ``simple_cnn``; ``layer4``, the last stage's output,
    for the ResNets.
    """
    architecture = model.architecture
    if not any(_is_convolution(module) for module in architecture.modules()):
        raise ValueError(
            "the architecture has no convolution (torch.nn.Conv2d or Conv3d), so "
            "no layer can be "
            "picked by default; pass layer= (a module name, the module, or a "
            "callable)."
        )
    calls: list[tuple[nn.Module, tuple[int, ...] | None]] = []

    def record(module: nn.Module, inputs: Any, output: Any) -> None:
        spatial = None
        if isinstance(output, torch.Tensor) and output.ndim in (4, 5):
            spatial = tuple(output.shape[2:])
        calls.append((module, spatial))

    handles = [
        module.register_forward_hook(record) for module in architecture.modules()
    ]
    probe = torch.zeros(
        (1, *model.classifier.image_shape_), dtype=torch.float32, device=model.device
    )
    try:
        with explaining(model.network), torch.no_grad():
            model.network(probe)
    finally:
        for handle in handles:
            handle.remove()
    conv_calls = [
        index for index, (module, _) in enumerate(calls) if _is_convolution(module)
    ]
    if not conv_calls:
        raise ValueError(
            "no convolution of the architecture ran in a forward pass; "
            "pass layer= (a module name, the module, or a callable)."
        )
    n_calls = Counter(id(module) for module, _ in calls)
    chosen, size = calls[conv_calls[-1]]
    for module, spatial in calls[conv_calls[-1] + 1 :]:
        if spatial != size:
            break
        if n_calls[id(module)] == 1:
            chosen = module
    return chosen


def resolve_layer(model: Model, layer: LayerLike) -> nn.Module:
    """Find the layer to explain; None picks the last convolutional feature maps.

    Raises
    ------
    ValueError
        If a name is not a module of the architecture (the message lists
        convolutional layers to choose from), or a module or callable gives a
        module outside it.
    TypeError
        If ``layer`` is of another type.
    """
    architecture = model.architecture
    if layer is None:
        return default_layer(model)
    if isinstance(layer, str):
        modules = dict(architecture.named_modules())
        if layer and layer in modules:
            return modules[layer]
        conv_names = [name for name, _ in _conv_layers(architecture)]
        shown = conv_names[-8:] or [name for name in modules if name][-8:]
        message = (
            f"layer {layer!r} is not a module of the architecture; its "
            f"convolutional layers include {shown!r} (see "
            "estimator.net_.module_.body.named_modules())."
        )
        close = difflib.get_close_matches(layer, [n for n in modules if n], n=1)
        if close:
            message += f" Did you mean {close[0]!r}?"
        raise ValueError(message)
    if isinstance(layer, nn.Module):
        module = layer
    elif callable(layer):
        module = layer(architecture)
        if not isinstance(module, nn.Module):
            raise TypeError(
                "layer, when a callable, must return a torch.nn.Module of the "
                f"architecture; it returned {type(module).__name__}."
            )
    else:
        raise TypeError(
            "layer must be None, a module name (str), a torch.nn.Module or a "
            f"callable; got {type(layer).__name__}."
        )
    if not any(module is candidate for candidate in architecture.modules()):
        raise ValueError(
            f"layer {type(module).__name__} is not a module of the fitted "
            "architecture (estimator.net_.module_.body)."
        )
    return module


def resize_maps(maps: torch.Tensor, size: tuple[int, ...] | None) -> torch.Tensor:
    """Resize ``(n, h, w)`` maps bilinearly to ``size`` (anti-aliased to shrink).

    Volume maps ``(n, d, h, w)`` are resized trilinearly, or by area averaging
    where any side shrinks (torch anti-aliases only 2-D interpolation).
    """
    if size is None or tuple(maps.shape[1:]) == tuple(size):
        return maps
    shrinking = any(new < old for new, old in zip(size, maps.shape[1:], strict=True))
    if maps.ndim == 4:
        mode = "area" if shrinking else "trilinear"
        options = {} if shrinking else {"align_corners": False}
        return F.interpolate(maps[:, None], size=size, mode=mode, **options)[:, 0]
    resized = F.interpolate(
        maps[:, None],
        size=size,
        mode="bilinear",
        align_corners=False,
        antialias=shrinking,
    )
    return resized[:, 0]


def normalise_maps(maps: torch.Tensor) -> NDArray[np.float32]:
    """Divide each non-negative map by its maximum; an all-zero map stays 0."""
    maps = maps.clamp(min=0)
    peak = maps.amax(dim=tuple(range(1, maps.ndim)), keepdim=True)
    scaled = torch.where(
        peak > 0, maps / peak.clamp(min=torch.finfo(maps.dtype).tiny), 0.0
    )
    return scaled.detach().cpu().numpy().astype(np.float32, copy=False)
