"""Loss functions beyond those torch ships."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FocalLoss"]


class FocalLoss(nn.Module):
    """Multi-class focal loss on logits, with optional class weights.

    ``FL = -w[y] * (1 - p_y) ** gamma * log(p_y)``, averaged with the weights
    as :class:`torch.nn.CrossEntropyLoss` averages (divided by the sum of the
    weights of the batch's targets). With ``gamma=0`` it equals the weighted
    cross-entropy.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter, >= 0: the larger, the less well-classified samples
        count.
    weight : torch.Tensor of shape (n_classes,), default=None
        Per-class weights (the ``alpha`` of the paper).
    reduction : {"mean", "none"}, default="mean"
        ``"none"`` returns each sample's loss (times its class weight), as
        :class:`torch.nn.CrossEntropyLoss` does: for weighing samples outside.

    Notes
    -----
    Lin, Goyal, Girshick, He and Dollar, "Focal Loss for Dense Object
    Detection", ICCV 2017.

    Examples
    --------
    >>> import torch
    >>> loss = FocalLoss(gamma=0.0)
    >>> logits, target = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    >>> bool(torch.isclose(loss(logits, target), nn.CrossEntropyLoss()(logits, target)))
    True
    """

    weight: torch.Tensor | None
    reduction = "mean"  # losses pickled before the option existed

    def __init__(
        self,
        gamma: float = 2.0,
        weight: torch.Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0; got {gamma}.")
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none'; got {reduction!r}.")
        self.gamma = float(gamma)
        self.reduction = reduction
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the mean focal loss of ``logits`` (n, C).

        ``target`` holds class indices ``(n,)`` or class probabilities
        ``(n, C)`` (mixed labels, as MixUp makes). With probabilities the loss
        is summed over the classes and averaged over the samples with the
        weights ``sum_c w[c] * target[:, c]``, so one-hot probabilities give
        exactly the loss of the class indices. (:class:`torch.nn.CrossEntropyLoss`
        divides by ``n`` instead of the sum of the weights for probabilities,
        which changes the loss scale with class weights.)
        """
        log_p = F.log_softmax(logits.float(), dim=1)
        if target.is_floating_point() and target.ndim == 2:
            focal_all = -((1.0 - log_p.exp()) ** self.gamma) * log_p * target
            if self.reduction == "none":
                if self.weight is not None:
                    focal_all = focal_all * self.weight
                return focal_all.sum(dim=1)
            if self.weight is None:
                return focal_all.sum(dim=1).mean()
            return (focal_all * self.weight).sum() / (target * self.weight).sum()
        log_p_target = log_p.gather(1, target.long().unsqueeze(1)).squeeze(1)
        focal = -((1.0 - log_p_target.exp()) ** self.gamma) * log_p_target
        if self.reduction == "none":
            return focal if self.weight is None else self.weight[target.long()] * focal
        if self.weight is None:
            return focal.mean()
        weights = self.weight[target.long()]
        return (weights * focal).sum() / weights.sum()
