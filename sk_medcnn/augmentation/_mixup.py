"""MixUp: convex combinations of pairs of training images and of their labels."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from numpy.typing import ArrayLike
from scipy.special import betaincinv

from ..utils._validation import check_params, non_negative_float
from ._base import Checker, ImageTransformerMixin

__all__ = ["MixUp"]


def sample_beta(alpha: float, generator: torch.Generator, device: Any) -> float:
    """Draw one ``Beta(alpha, alpha)`` value from ``generator``.

    By inverse transform sampling: one uniform ``u`` from the generator, then
    the inverse of the regularised incomplete beta function,
    ``betaincinv(alpha, alpha, u)``. This is exact (to the precision of
    SciPy's inverse), needs one draw and no rejection loop; ``torch``'s
    ``Beta`` takes no generator.

    Parameters
    ----------
    alpha : float
        Both shape parameters, > 0.
    generator : torch.Generator
        Source of the uniform draw.
    device : torch.device or str
        The generator's device.

    Returns
    -------
    value : float
        In [0, 1].
    """
    uniform = torch.rand(1, generator=generator, device=device, dtype=torch.float64)
    return float(betaincinv(alpha, alpha, float(uniform.item())))


class MixUp(ImageTransformerMixin):
    """Train on convex combinations of pairs of images and of their labels.

    Each training batch is mixed with a random permutation of itself:
    ``lam * x + (1 - lam) * x[perm]``, and the one-hot (or probability)
    labels likewise, with ``lam ~ Beta(alpha, alpha)`` drawn once per batch.
    MixUp needs the labels, so it only works inside
    ``MedicalCNNClassifier(augmentation=...)``; its :meth:`fit_transform`
    raises, and :meth:`transform` returns its input unchanged.

    Parameters
    ----------
    alpha : float, default=0.2
        Shape of the symmetric Beta distribution of the mixing weight, >= 0.
        Small values (0.1-0.4, the paper's range on ImageNet) keep most mixes
        close to one of the two images; ``alpha=0`` switches mixing off.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen by :meth:`fit`.

    See Also
    --------
    RandomErasing : Occlusion by random rectangles.

    Notes
    -----
    The mixing weight is drawn by inverse transform sampling from the
    generator that the classifier owns, so a fit is reproducible; the pairs
    come from ``torch.randperm`` on the same generator. Mixing in raw
    intensity units before standardisation is the same as mixing after it,
    as standardisation is affine. Inside :class:`~sk_medcnn.MedicalCNNClassifier`
    label mixers run before the other augmenters of ``augmentation``, whatever
    their place in it: they mix each batch in the data loader, on the CPU, and
    the batch augmenters then run on the mixed images on the training device.

    References
    ----------
    H. Zhang, M. Cisse, Y. N. Dauphin and D. Lopez-Paz, "mixup: Beyond
    empirical risk minimization", ICLR 2018.

    Examples
    --------
    >>> import torch
    >>> from sk_medcnn.augmentation import MixUp
    >>> images = torch.arange(4.0).reshape(4, 1, 1, 1)
    >>> targets = torch.eye(2)[[0, 1, 0, 1]]
    >>> generator = torch.Generator().manual_seed(0)
    >>> mixed, soft = MixUp(alpha=0.4).mix_batch(images, targets, generator)
    >>> mixed.shape, soft.shape
    (torch.Size([4, 1, 1, 1]), torch.Size([4, 2]))
    >>> bool(torch.allclose(soft.sum(dim=1), torch.ones(4)))
    True
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "alpha": non_negative_float,
    }

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = alpha

    def mix_batch(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix a batch with a random permutation of itself, images and targets.

        Parameters
        ----------
        images : torch.Tensor of shape (n_samples, ...)
            Floating-point images, in any layout (``(n, C, H, W)`` or
            ``(n, H, W, C)``); they are not modified.
        targets : torch.Tensor of shape (n_samples, n_classes)
            Floating-point one-hot rows or class probabilities.
        generator : torch.Generator
            Source of the mixing weight and the pairing, on the device of
            ``images``.

        Returns
        -------
        mixed_images : torch.Tensor of the shape and dtype of ``images``
        mixed_targets : torch.Tensor of the shape and dtype of ``targets``
            Rows still sum to 1 when the input rows do.
        """
        check_params(self)
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise TypeError(
                "images must be a floating-point torch.Tensor; got "
                f"{getattr(images, 'dtype', type(images).__name__)}."
            )
        if not isinstance(targets, torch.Tensor) or not targets.is_floating_point():
            raise TypeError(
                "targets must be a floating-point torch.Tensor of one-hot rows or "
                "class probabilities, shape (n_samples, n_classes); got "
                f"{getattr(targets, 'dtype', type(targets).__name__)}. Convert "
                "class indices with torch.nn.functional.one_hot(y, n_classes)"
                ".float()."
            )
        if targets.ndim != 2 or images.ndim < 1 or len(targets) != len(images):
            raise ValueError(
                "targets must have shape (n_samples, n_classes) with the n_samples "
                f"of images; got images {tuple(images.shape)} and targets "
                f"{tuple(targets.shape)}."
            )
        if not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator; got {type(generator).__name__}."
            )
        if self.alpha == 0 or len(images) < 2:
            return images, targets
        with torch.no_grad():
            weight = sample_beta(float(self.alpha), generator, images.device)
            order = torch.randperm(
                len(images), generator=generator, device=images.device
            )
            mixed_images = images * weight + images[order] * (1 - weight)
            mixed_targets = targets * weight + targets[order] * (1 - weight)
        return mixed_images, mixed_targets

    def fit_transform(self, X: ArrayLike, y: Any = None, **fit_params: Any) -> Any:
        """Refuse: MixUp mixes labels too, so it cannot run as a transformer.

        Parameters
        ----------
        X : array-like of images
            Ignored.
        y : array-like, default=None
            Ignored.
        **fit_params : dict
            Ignored.

        Raises
        ------
        TypeError
            Always: a transformer returns images only, and MixUp's mixed images
            are only right with their mixed labels.
        """
        raise TypeError(
            "MixUp mixes pairs of images and their labels, so it cannot run as a "
            "standalone transformer (fit_transform returns no labels). Use it only "
            "inside MedicalCNNClassifier(augmentation=MixUp(...)) or in a Pipeline "
            "passed as that augmentation."
        )
