"""Losses the engine wraps: a user's loss module, and weighted regression."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ModuleCriterion(nn.Module):
    """Hold a user's loss module so skorch pickles it with the device-mapped state.

    Parameters
    ----------
    loss : torch.nn.Module
        Called as ``loss(outputs, targets)``.
    """

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Return ``loss(outputs, targets)``."""
        return self.loss(outputs, targets)


class WeightedRegressionLoss(nn.Module):
    """Mean squared error or Huber loss, weighted by a last column of the targets.

    The criterion of weighted regressors fitted before sample weights moved to
    ``ImageNet.get_loss``; kept so that their pickles load.

    ``targets`` is ``(n, n_outputs + 1)``: the standardised targets, then the
    loss weights. The loss is the batch mean of ``w_i * l_i``, ``l_i`` the
    sample's loss averaged over the outputs (with weights 1, what
    ``nn.MSELoss`` and ``nn.HuberLoss`` give). The estimators scale the weights
    to mean 1 over the training set, so the epoch's loss is the weighted mean.

    Parameters
    ----------
    loss : {"mse", "huber"}, default="mse"
        The per-sample loss (Huber with ``delta=1``, as ``nn.HuberLoss``).
    """

    def __init__(self, loss: str = "mse") -> None:
        super().__init__()
        if loss not in ("mse", "huber"):
            raise ValueError(f"loss must be 'mse' or 'huber'; got {loss!r}.")
        self.loss = loss

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Return the weighted mean loss of ``outputs`` ``(n, n_outputs)``."""
        values, weights = targets[:, :-1], targets[:, -1]
        outputs = outputs.float()
        if self.loss == "huber":
            per_sample = F.huber_loss(outputs, values, reduction="none")
        else:
            per_sample = F.mse_loss(outputs, values, reduction="none")
        return (per_sample.mean(dim=1) * weights).mean()
