"""The training engine's former module: the engine lives in :mod:`sk_medcnn._engine`.

Models pickled before the move name the classes below by this module (the
callbacks and losses inside a fitted net), so it keeps them importable here.
"""

from ._engine import (
    CHECKPOINT_NAME,
    LR_SCHEDULES,
    OPTIMIZERS,
    EpochTable,
    MixingDataLoader,
    ModuleCriterion,
    TrainingCheckpoint,
    WeightedRegressionLoss,
    augmentation_steps,
    build_net,
    load_checkpoint,
    make_batch_augmenter,
    show_progress_bar,
    train_net,
)

__all__ = [
    "CHECKPOINT_NAME",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "EpochTable",
    "MixingDataLoader",
    "ModuleCriterion",
    "TrainingCheckpoint",
    "WeightedRegressionLoss",
    "augmentation_steps",
    "build_net",
    "load_checkpoint",
    "make_batch_augmenter",
    "show_progress_bar",
    "train_net",
]
