"""The training engine: a skorch net customised through its hooks.

Nothing medical lives here: losses, optimizers and schedules (:mod:`._optim`),
callbacks (:mod:`._callbacks`), checkpoints (:mod:`._checkpoint`), batch
augmentation and label mixing (:mod:`._augment`), the net and its builder
(:mod:`._net`) and the training run (:mod:`._train`). The estimators in
:mod:`sk_medcnn.estimators` build on it; it imports nothing from them.
"""

from ._augment import MixingDataLoader, augmentation_steps, make_batch_augmenter
from ._callbacks import EpochTable, show_progress_bar
from ._checkpoint import (
    CHECKPOINT_NAME,
    TrainingCheckpoint,
    check_state_shapes,
    checkpoint_error,
    load_checkpoint,
)
from ._losses import ModuleCriterion, WeightedRegressionLoss
from ._net import ImageNet, build_inference_net, build_net
from ._optim import LR_SCHEDULES, OPTIMIZERS, resolve_lr_schedule
from ._train import train_net

__all__ = [
    "CHECKPOINT_NAME",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "EpochTable",
    "ImageNet",
    "MixingDataLoader",
    "ModuleCriterion",
    "TrainingCheckpoint",
    "WeightedRegressionLoss",
    "augmentation_steps",
    "build_inference_net",
    "build_net",
    "check_state_shapes",
    "checkpoint_error",
    "load_checkpoint",
    "make_batch_augmenter",
    "resolve_lr_schedule",
    "show_progress_bar",
    "train_net",
]
