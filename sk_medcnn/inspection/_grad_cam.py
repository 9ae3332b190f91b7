"""Grad-CAM: where in the image the last convolutional features favour a class."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn

from ..utils._validation import one_of, positive_int, warn_user
from ._base import (
    DEFAULT_BATCH_SIZE,
    LayerLike,
    batch_targets,
    class_scores,
    explaining,
    input_size,
    iter_batches,
    n_images,
    normalise_maps,
    resize_maps,
    resolve_layer,
    resolve_model,
    target_indices,
)

__all__ = ["grad_cam"]

_VARIANTS = ("hires_cam", "grad_cam")


def _layer_output_hook(
    layer: nn.Module, kept: list[torch.Tensor]
) -> torch.utils.hooks.RemovableHandle:
    """Keep the layer's output; pass a copy on to the rest of the network.

    The copy protects the kept activation from an in-place operation after
    the layer (``nn.ReLU(inplace=True)``), without changing that layer's flag.
    """

    def keep(module: nn.Module, inputs: Any, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor) or output.ndim not in (4, 5):
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
            raise ValueError(
                f"Grad-CAM needs a layer whose output is a feature map (n, channels, "
                f"[depth,] height, width); layer {type(module).__name__} gives "
                f"{shape or type(output).__name__}."
            )
        kept.append(output)
        return output.clone()

    return layer.register_forward_hook(keep)


def grad_cam(
    estimator: Any,
    X: ArrayLike,
    *,
    target: Any = None,
    layer: LayerLike = None,
    variant: str = "hires_cam",
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> NDArray[np.float32]:
    """Compute Grad-CAM maps: the image regions whose features raise a class score.

    The gradient of the class score (the logit) with respect to a
    convolutional layer's feature maps, averaged over each map, weights the
    maps; their weighted sum, rectified, marks the regions that raise the
    class score (Selvaraju et al., 2017). With ``variant="hires_cam"``, the
    default, each position keeps its own gradient instead of the map's average
    (HiResCAM, Draelos and Carin, 2020): the same maps for networks that
    average their feature maps globally, and maps that follow the model where
    the head flattens them (``simple_cnn``).

    Parameters
    ----------
    estimator : MedicalCNNClassifier or Pipeline
        A fitted :class:`~sk_medcnn.MedicalCNNClassifier`, or a fitted
        Pipeline ending in one; the earlier steps are applied to ``X`` with
        ``transform``.
    X : array-like of shape (n_samples, height, width), \
            (n_samples, height, width, channels) or (n_samples, n_pixels)
        Images, as given to the estimator's ``predict`` (file paths too,
        when the Pipeline starts with a loader).
    target : label or array-like of shape (n_samples,), default=None
        The class to explain: a label of ``classes_``, or one per image.
        None explains the predicted class of each image.
    layer : str, torch.nn.Module or callable, default=None
        The layer whose output feature maps are explained: a name from
        ``named_modules()`` of the architecture
        (``estimator.net_.module_.body``), e.g. ``"features.6"`` for
        ``simple_cnn`` or ``"layer3"`` for ``resnet18``; the module itself; or
        a callable taking the architecture and returning the module. None
        picks the last convolutional feature maps, for any registered
        architecture, plugins included: running the network once, it finds
        the ``torch.nn.Conv2d`` that runs last, then follows the modules after
        it that keep its output's height and width (activation, batch
        normalisation, residual addition, the enclosing block and stage) up
        to where the maps are pooled or flattened. That is ``"features.7"``
        (the ReLU after the last convolution) for ``simple_cnn`` and
        ``"layer4"`` for ``resnet18`` and ``resnet34``.
    variant : {"hires_cam", "grad_cam"}, default="hires_cam"
        ``"hires_cam"`` multiplies gradient and feature map position by
        position; ``"grad_cam"`` weights each feature map by its average
        gradient. They agree for architectures that average the maps
        globally (the ResNets); for a head that flattens the maps into a
        dense layer (``simple_cnn``, the default architecture), HiResCAM
        follows what the model computes and Grad-CAM's averaged gradients
        can cancel, leaving all-zero maps (see Notes).
    batch_size : int, default=32
        Images processed at once (bounds memory; the result does not depend
        on it).

    Returns
    -------
    maps : ndarray of shape (n_samples, height, width), dtype float32
        One map per image in [0, 1], 1 at the most important place: each map
        is divided by its own maximum, so maps show where, not how strongly,
        across images; a map is all 0 where no region raises the class
        score; a warning says how many are all 0 (no positive evidence for
        the class). The maps have the size of the images in ``X`` as given: the
        layer's coarse map is upsampled with bilinear interpolation straight
        to that size, even when a ``Resize`` step changed the size the model
        sees. Flat rows or file paths before a Pipeline's preprocessing have
        no size of their own: their maps have the size the classifier sees.

    Raises
    ------
    TypeError
        If ``estimator`` is not a MedicalCNNClassifier or a Pipeline ending in
        one, or ``layer`` has the wrong type.
    sklearn.exceptions.NotFittedError
        If the classifier is not fitted.
    ValueError
        If ``target`` is not a class, ``layer`` is not a module of the
        architecture or gives no feature map, or ``X`` does not fit the model.

    See Also
    --------
    saliency_map : Pixel-level gradient maps.
    plot_explanations : Maps drawn over the images.

    Notes
    -----
    The network runs in eval mode (batch normalisation uses its running
    statistics, dropout is off), and every module's train/eval mode is
    restored afterwards. The layer's output is captured with a forward hook
    that is always removed; the gradient is taken with
    :func:`torch.autograd.grad` with respect to that output only, so no
    ``.grad`` is left on the parameters and no layer's ``inplace`` flag is
    touched. The result is deterministic.

    The default layer is the stage output rather than the last
    ``nn.Conv2d`` itself because in a residual block the last convolution
    only feeds the residual branch: on lesion phantoms (28x28 pixels,
    ``resnet18`` with ``width=8``) Grad-CAM of ``layer4.1.conv2`` put no more
    of its mass inside the lesions than chance (ratio 0.97), against 3.5
    times chance for ``layer4``. Grad-CAM's averaging assumes that a feature
    means the same wherever it is, as global average pooling makes it; a
    flatten-and-dense head breaks that, and on 24x24 phantoms
    ``simple_cnn``'s Grad-CAM put 2.4 times the chance share of its mass
    inside the lesions, HiResCAM 4.9 times: hence HiResCAM is the default.

    The score differentiated is the target class's logit, before the
    softmax, as in the paper. A fitted temperature (``calibration=
    "temperature"``) only rescales the logits, which the per-map scaling
    cancels. With test-time augmentation (``tta``) the maps still explain the
    network on each image as given, and ``target=None`` takes the network's
    arg-max on it, which can differ from ``predict`` on borderline images.

    Written by hand in plain torch, following [1]_ and [2]_, rather than with
    Captum's ``LayerGradCam``, to keep the dependencies to torch.
    Maps follow the default of pytorch-grad-cam and Captum's ``LayerGradCam``
    (ReLU of the weighted sum), but are scaled by their maximum rather
    than min-max, so that 0 keeps meaning "no evidence". Grad-CAM passes
    the model-randomisation sanity check of Adebayo et al. [3]_: its maps
    change when the weights are randomised (on lesion phantoms, the rank
    correlation with the trained model's maps falls to 0.07).

    References
    ----------
    .. [1] R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh and
       D. Batra, "Grad-CAM: Visual Explanations from Deep Networks via
       Gradient-based Localization", ICCV 2017, pp. 618-626.
    .. [2] R. L. Draelos and L. Carin, "Use HiResCAM instead of Grad-CAM for
       faithful explanations of convolutional neural networks",
       arXiv:2011.08891, 2020.
    .. [3] J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt and
       B. Kim, "Sanity Checks for Saliency Maps", NeurIPS 2018.

    Examples
    --------
    >>> from sk_medcnn import MedicalCNNClassifier
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> from sk_medcnn.inspection import grad_cam
    >>> X, y = make_lesion_phantoms(32, image_size=16, random_state=0)
    >>> clf = MedicalCNNClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> maps = grad_cam(clf, X[:4], target=1)
    >>> maps.shape, bool(maps.min() >= 0), bool(maps.max() <= 1)
    ((4, 16, 16), True, True)
    """
    one_of(_VARIANTS)(variant, "variant")
    positive_int(batch_size, "batch_size")
    model = resolve_model(estimator)
    targets = target_indices(model, target, n_images(X))
    module = resolve_layer(model, layer)
    size = input_size(model, X)
    parts = []
    with explaining(model.network):
        for rows, images in iter_batches(model, X, batch_size):
            kept: list[torch.Tensor] = []
            handle = _layer_output_hook(module, kept)
            try:
                logits = model.network(images.requires_grad_(True))
            finally:
                handle.remove()
            if len(kept) != 1:
                raise ValueError(
                    f"layer {type(module).__name__} ran {len(kept)} times in one "
                    "forward pass; Grad-CAM needs a layer that runs exactly once."
                )
            score, _ = class_scores(logits, batch_targets(targets, rows, model.device))
            (gradient,) = torch.autograd.grad(score, kept[0])
            activation = kept[0].detach()
            if variant == "grad_cam":
                spatial = tuple(range(2, gradient.ndim))
                gradient = gradient.mean(dim=spatial, keepdim=True)
            cam = torch.relu((gradient * activation).sum(dim=1))
            out_size = size or tuple(images.shape[1:-1])
            parts.append(normalise_maps(resize_maps(cam.float(), out_size)))
    maps = np.concatenate(parts)
    _warn_if_blank(maps, variant)
    return maps


def _warn_if_blank(maps: NDArray[np.float32], variant: str) -> None:
    """Warn when maps are all zero: they show no evidence, not an explanation."""
    n_blank = int(np.count_nonzero(maps.reshape(len(maps), -1).max(axis=1) <= 0))
    if n_blank == 0:
        return
    name = "Grad-CAM" if variant == "grad_cam" else "HiResCAM"
    hint = " variant='hires_cam' or" if variant == "grad_cam" else ""
    warn_user(
        f"{n_blank} of {len(maps)} {name} maps are all zero: no region raises the "
        "score of the explained class in those images (no positive evidence), so "
        f"the maps explain nothing there. Try{hint} another target class; "
        "find them with maps.max(axis=(1, 2)) == 0."
    )
