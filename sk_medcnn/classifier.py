"""scikit-learn estimators that train a CNN on images: a classifier and a regressor."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, logsumexp, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_consistent_length, column_or_1d
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from skorch.history import History
from torch import nn

from . import _distributed
from ._card import describe_fit
from ._ood import (
    OOD_MAX_FEATURES,
    OOD_MAX_FIT_ROWS,
    feature_layer,
    fit_mahalanobis,
    mahalanobis_score,
    ood_threshold,
    ood_warning,
)
from ._training import (
    CHECKPOINT_NAME,
    LR_SCHEDULES,
    OPTIMIZERS,
    ModuleCriterion,
    TrainingCheckpoint,
    WeightedRegressionLoss,
    augmentation_steps,
    build_net,
    load_checkpoint,
    make_batch_augmenter,
    train_net,
)
from .augmentation import default_augmentation
from .exceptions import OutOfDistributionWarning
from .losses import FocalLoss
from .pretrained import load_weights, read_weights, resolve_input_statistics
from .registry import (
    WeightLoader,
    check_architecture_dims,
    get_architecture,
    get_weight_loader,
)
from .utils._dataset_array import DatasetImages, dataset_targets, is_dataset
from .utils._files_array import ImageFiles, is_path_array
from .utils._image_source import ImageSource
from .utils._memory import check_memory, training_memory, worth_estimating
from .utils._torch import (
    MEMORY_FORMATS,
    PRECISIONS,
    TTA_TOKENS,
    ArrayDataset,
    RowReader,
    draw_seeds,
    predict_raw_with_features,
    resolve_device,
    seeded_torch,
    torch_threads,
    tta_views,
    warn_cpu_fallback,
)
from .utils._validation import (
    boolean,
    check_feature_names,
    check_images,
    check_params,
    image_shape_like,
    infer_spatial_dims,
    int_in_range,
    non_negative_float,
    non_negative_int,
    one_of,
    open_fraction,
    optional,
    optional_dict,
    positive_float,
    positive_int,
    random_state_like,
    resolve_spatial_dims,
    spatial_dims_like,
    warn_user,
)

__all__ = ["MedicalCNNClassifier", "MedicalCNNRegressor"]

#: Upper bounds of the parameters that size resources. Far above any machine's
#: cores, and low enough that a hostile value (in a model file, say) gets a
#: ValueError: torch.set_num_threads(2**31 - 1) ends the process in libgomp.
MAX_THREADS = 1024
MAX_WORKERS = 256

logger = logging.getLogger(__name__)

#: The test-time augmentation ``tta="auto"`` tries on the held-out split.
AUTO_TTA_CANDIDATE = "shifts"
#: Log-loss differences below this count as ties (rounding of the view average).
_TIE_TOLERANCE = 1e-9

#: Images per inference batch (measured fastest on CPU in benchmarks/bench_fit.py),
#: for images of up to _INFERENCE_BATCH_PIXELS / 128 pixels (32x32 and smaller).
_INFERENCE_BATCH_SIZE = 128
#: Pixels per inference batch beyond that: larger images go in smaller batches,
#: so that activation memory does not grow with the image (at 64x64, 32 images).
_INFERENCE_BATCH_PIXELS = 2**17


#: Values of one image above which a new network's shapes are checked on the meta
#: device (no memory, no arithmetic) rather than with a real forward pass: a
#: ResNet-18 probe on one 8192 x 8192 image took 15 s and 2 GB.
_META_PROBE_VALUES = 2**20


def _probe(body: nn.Module, probe: torch.Tensor) -> Any:
    """Run ``body`` on ``probe``; on the meta device for large images.

    Lazy modules need the real pass (it creates their parameters), and so do
    small images, whose pass costs less than the meta one's set-up.
    """
    lazy = any(nn.parameter.is_lazy(tensor) for tensor in body.parameters())
    if lazy or probe.numel() <= _META_PROBE_VALUES:
        return body(probe)
    state = {
        name: tensor.to("meta")
        for name, tensor in [*body.named_parameters(), *body.named_buffers()]
    }
    return torch.func.functional_call(body, state, (probe.to("meta"),))


def _kind(spatial_dims: int) -> str:
    return "volumes" if spatial_dims == 3 else "images"


def _axes(spatial_dims: int) -> str:
    if spatial_dims == 3:
        return "depth, height, width, channels"
    return "height, width, channels"


def _default_augmentation(spatial_dims: int) -> Any:
    """Return ``augmentation="auto"``'s pipeline for images or volumes."""
    return default_augmentation(spatial_dims=spatial_dims)


def _inference_batch_size(batch_size: int, image_shape: tuple[int, ...]) -> int:
    """Images per inference batch: at least the training batch size."""
    pixels = max(1, math.prod(image_shape[:-1]))
    return max(
        batch_size, min(_INFERENCE_BATCH_SIZE, _INFERENCE_BATCH_PIXELS // pixels)
    )


def _architecture_like(value: Any, name: str) -> None:
    if isinstance(value, str) or callable(value):
        return
    raise TypeError(
        f"{name} must be a registered architecture name (see "
        "sk_medcnn.list_architectures()) or a factory callable "
        f"(in_channels, n_outputs, image_shape, **params) -> nn.Module; got {value!r}."
    )


def _optimizer_like(value: Any, name: str) -> None:
    if isinstance(value, type) and issubclass(value, torch.optim.Optimizer):
        return
    one_of(tuple(OPTIMIZERS))(value, name)


def _device_like(value: Any, name: str) -> None:
    if isinstance(value, str | torch.device):
        return
    raise TypeError(f"{name} must be a str or torch.device; got {value!r}.")


#: ``augmentation="auto"`` leaves images smaller than this (pixels on a side,
#: e.g. rows of features seen as one-row images) unaugmented.
AUTO_AUGMENTATION_MIN_SIZE = 8


def _augmentation_like(value: Any, name: str) -> None:
    # the full protocol check happens in augmentation_steps
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(
                f"{name} must be None, 'auto', an augmenter from "
                f"sk_medcnn.augmentation, or a list or Pipeline of them; got {value!r}."
            )
        return
    if isinstance(value, list | tuple):
        for step in value:
            if step is None:
                raise TypeError(
                    f"{name} is a list holding None; leave the step out of the list."
                )
            _augmentation_like(step, name)
        return
    for step in [value]:
        if step is not None and not isinstance(step, BaseEstimator):
            raise TypeError(
                f"{name} must be None, 'auto', an augmenter from "
                "sk_medcnn.augmentation, or a list or Pipeline of them; got "
                f"{type(step).__name__}."
            )


def _tta_like(value: Any, name: str) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be None or a str such as 'hflip' or 'hflip+shifts'; "
            f"got {type(value).__name__}."
        )
    tokens = value.split("+")
    unknown = [token for token in tokens if token not in TTA_TOKENS]
    if unknown or len(set(tokens)) != len(tokens):
        raise ValueError(
            f"{name} must be None or '+'-joined distinct tokens from "
            f"{', '.join(map(repr, TTA_TOKENS))}; got {value!r}."
        )


def _classifier_tta_like(value: Any, name: str) -> None:
    """Check the classifier's ``tta``: ``"auto"`` or what :func:`_tta_like` takes."""
    if isinstance(value, str) and value == "auto":
        return
    try:
        _tta_like(value, name)
    except ValueError:
        raise ValueError(
            f"{name} must be 'auto', None or '+'-joined distinct tokens from "
            f"{', '.join(map(repr, TTA_TOKENS))}; got {value!r}."
        ) from None
    except TypeError:
        raise TypeError(
            f"{name} must be 'auto', None or a str such as 'hflip' or "
            f"'hflip+shifts'; got {type(value).__name__}."
        ) from None


def _pretrained_like(value: Any, name: str) -> None:
    if value is None or isinstance(value, str | os.PathLike):
        return
    if isinstance(value, BaseEstimator):  # checked to be a fitted CNN in fit
        return
    raise TypeError(
        f"{name} must be None, a weights file (.pth, .pt, .safetensors), a .skmed "
        f"model file or a fitted sk_medcnn estimator; got {type(value).__name__}."
    )


_NORMALIZATIONS = ("auto", "data", "imagenet")


def _normalization_like(value: Any, name: str) -> None:
    if isinstance(value, str):
        one_of(_NORMALIZATIONS)(value, name)
        return
    if isinstance(value, tuple | list) and len(value) == 2:
        for part in value:
            values = np.asarray(part, dtype=object).reshape(-1)
            if len(values) < 1 or not all(
                isinstance(item, int | float | np.number)
                and not isinstance(item, bool)
                and math.isfinite(float(item))
                for item in values
            ):
                raise ValueError(
                    f"{name}=(mean, std) must hold finite numbers, one per channel "
                    f"or one for all; got {value!r}."
                )
        if np.any(np.asarray(value[1], dtype=float) <= 0):
            raise ValueError(f"{name}=(mean, std) needs std > 0; got {value!r}.")
        return
    raise TypeError(
        f"{name} must be 'auto', 'data', 'imagenet' or a (mean, std) pair; got "
        f"{value!r}."
    )


def _path_like(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str | os.PathLike):
        raise TypeError(f"{name} must be None or a path; got {type(value).__name__}.")


def _class_weight_like(value: Any, name: str) -> None:
    if value is None or value == "balanced" or isinstance(value, dict):
        return
    error = ValueError if isinstance(value, str) else TypeError
    raise error(f"{name} must be None, 'balanced' or a dict; got {value!r}.")


@dataclass
class _PretrainedSource:
    """What ``pretrained`` resolved to (see ``_BaseMedicalCNN._pretrained_source``).

    ``statistics`` is what ``input_normalization="auto"`` resolves to: a name
    (``"imagenet"``, ``"data"``) or the source model's ``(mean, std)``.
    """

    state: dict[str, torch.Tensor]
    loader: WeightLoader
    origin: str
    keep_head: bool
    params: dict[str, Any]
    statistics: str | tuple[NDArray[np.float64], NDArray[np.float64]]


def log_mean_softmax(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    """Log of the softmax probabilities averaged over the first axis (the views)."""
    log_proba = log_softmax(logits, axis=-1)
    return logsumexp(log_proba, axis=0) - math.log(len(logits))


def _held_out_scores(
    logits: NDArray[np.float64],
    y_encoded: NDArray[Any],
    sample_weight: NDArray[np.float64] | None,
    calibrate: bool,
) -> dict[str, float]:
    """Log-loss and accuracy on held-out ``logits`` (views first), as predicted.

    With ``calibrate``, the temperature is fitted first (:func:`fit_temperature`)
    and returned with the scores; otherwise it is 1.
    """
    temperature = (
        fit_temperature(logits, y_encoded, sample_weight) if calibrate else 1.0
    )
    log_proba = log_mean_softmax(logits / temperature)
    rows = np.arange(len(y_encoded))
    return {
        "temperature": temperature,
        "log_loss": float(
            -np.average(log_proba[rows, y_encoded], weights=sample_weight)
        ),
        "accuracy": float(
            np.average(log_proba.argmax(axis=1) == y_encoded, weights=sample_weight)
        ),
    }


def _loss_weights(
    weights: NDArray[np.float64],
    train_index: NDArray[np.intp],
    valid_index: NDArray[np.intp] | None,
) -> NDArray[np.float64]:
    """Scale ``weights`` to mean 1 over the training rows and the held-out rows.

    The losses are batch means of weighted sample losses, and skorch averages an
    epoch's batch losses by batch size: with mean-1 weights that average is
    ``sum_i w_i l_i / sum_i w_i`` over the whole set, however it is batched.
    """
    scaled = np.array(weights, dtype=np.float64)
    for index in (train_index, valid_index):
        if index is not None and len(index):
            mean = scaled[index].mean()
            if mean > 0:
                scaled[index] = scaled[index] / mean
    return scaled


def fit_temperature(
    logits: NDArray[np.float64],
    y_encoded: NDArray[Any],
    sample_weight: NDArray[np.float64] | None = None,
) -> float:
    """Find the temperature minimising the log-loss of ``logits / T`` (Guo 2017).

    Parameters
    ----------
    logits : ndarray of shape (n_views, n_samples, n_classes)
        Held-out logits; with several test-time views the loss is that of the
        averaged probabilities, as predicted.
    y_encoded : ndarray of shape (n_samples,)
        Class indices.
    sample_weight : ndarray of shape (n_samples,), default=None
        Positive weights: the log-loss is their weighted mean.

    Returns
    -------
    temperature : float
        In [0.05, 20]; searched on a log scale. When every held-out sample is
        predicted right, the log-loss keeps falling as ``T`` goes to 0, which
        says nothing about the errors to come: the search is then limited to
        ``T >= 1`` (softening only), which gives 1 for a confident network.
    """
    rows = np.arange(len(y_encoded))
    lowest = 0.05
    if np.array_equal(log_mean_softmax(logits).argmax(axis=1), y_encoded):
        lowest = 1.0

    def log_loss(log_t: float) -> float:
        log_proba = log_mean_softmax(logits / math.exp(log_t))
        return float(-np.average(log_proba[rows, y_encoded], weights=sample_weight))

    result = minimize_scalar(
        log_loss, bounds=(math.log(lowest), math.log(20.0)), method="bounded"
    )
    # the bounded search never evaluates the bounds themselves
    best = min((result.x, math.log(lowest)), key=log_loss)
    return float(math.exp(best))


class _BaseMedicalCNN(BaseEstimator):
    """Shared fit / predict machinery; not part of the public API."""

    _is_classifier = False

    #: the parameters both estimators take; each adds its own (``loss``, ``tta``, ...)
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "architecture": _architecture_like,
        "architecture_params": optional_dict,
        "pretrained": _pretrained_like,
        "input_normalization": _normalization_like,
        "freeze_epochs": non_negative_int,
        "body_lr_factor": positive_float,
        "optimizer": _optimizer_like,
        "lr": positive_float,
        "weight_decay": non_negative_float,
        "momentum": non_negative_float,
        "batch_size": positive_int,
        "max_epochs": positive_int,
        "lr_schedule": one_of(LR_SCHEDULES),
        "early_stopping": boolean,
        "validation_fraction": open_fraction,
        "patience": positive_int,
        "augmentation": _augmentation_like,
        "ood_false_alarm_rate": optional(open_fraction),
        "num_workers": int_in_range(0, MAX_WORKERS),
        "checkpoint_dir": _path_like,
        "resume": boolean,
        "image_shape": image_shape_like,
        "spatial_dims": spatial_dims_like,
        "device": _device_like,
        "precision": one_of(PRECISIONS),
        "memory_format": one_of(MEMORY_FORMATS),
        "n_threads": optional(int_in_range(1, MAX_THREADS)),
        "distributed": boolean,
        "random_state": random_state_like,
        "verbose": non_negative_int,
    }

    # --- helpers subclasses provide -------------------------------------------
    def _encode_targets(
        self, y: ArrayLike, *, sample_weight: NDArray[np.float64] | None = None
    ) -> tuple[NDArray[Any], dict[str, Any]]:
        """Validate and encode ``y``; return it and the target's fitted attributes.

        ``sample_weight`` (one per row of ``y``, or None) weighs the statistics
        learned from the targets.
        """
        raise NotImplementedError

    def _make_criterion(
        self,
        y_encoded: NDArray[Any],
        fitted: dict[str, Any],
        sample_weight: NDArray[np.float64] | None,
    ) -> tuple[type[nn.Module], dict[str, Any]]:
        """Return the criterion class and its keyword arguments.

        ``y_encoded`` and ``sample_weight`` hold only the samples that train
        (positive weights); ``sample_weight`` is None for an unweighted fit.
        """
        raise NotImplementedError

    def _training_targets(
        self,
        y_encoded: NDArray[Any],
        loss_weight: NDArray[np.float64],
        fitted: dict[str, Any],
    ) -> NDArray[np.float32]:
        """Return the targets the network trains on, carrying the loss weights.

        ``loss_weight`` (see :func:`_loss_weights`) has mean 1 over the training
        rows and over the held-out rows: a batch's loss is the mean of the
        weighted sample losses, so skorch's epoch loss (the batch losses
        averaged by batch size) is the weighted mean over the whole set.
        """
        raise NotImplementedError

    # --- fit ------------------------------------------------------------------
    def _reset(self) -> None:
        """Forget a previous fit, so a failed refit leaves no stale state."""
        for name in list(vars(self)):
            if name.endswith("_") and not name.startswith("__"):
                delattr(self, name)

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> _BaseMedicalCNN:
        """Train the network on images ``X`` and targets ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width), \
                (n_samples, height, width, channels) or (n_samples, n_pixels)
            Training images in any real dtype (uint8 and uint16 stay as they are
            until a batch is converted to float32), channels last; a 4-D
            ``torch.Tensor`` is read in torch's ``(n, channels, height,
            width)``. A ``numpy.memmap`` is read batch by batch from its file. A
            1-D sequence of image file paths (PNG, JPEG, TIFF, DICOM, NIfTI; see
            :mod:`sk_medcnn.io`) is read lazily, one batch at a time (in
            ``num_workers`` processes); the images must share the first one's
            size unless ``image_shape`` gives the size to resize them to.
            ``predict`` then takes paths too, resized to the fitted image shape.
            A map-style ``torch.utils.data.Dataset`` is read lazily too, item by
            item in batches: an item is an image (a tensor ``(C, H, W)`` or
            ``(H, W)``, or a numpy array ``(H, W, C)`` or ``(H, W)``) or a tuple
            ``(image, target, ...)``; all images of one size.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets. With a dataset ``X`` and ``y=None``, the dataset's
            ``targets`` attribute, or else the second element of every item
            (which reads every item once).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples in the loss: the training loss
            and the held-out loss (early stopping, the learning-rate plateau)
            are weighted means, and so is the log-loss the temperature is
            fitted to; they multiply ``class_weight``. Samples of weight 0 are
            left out of the fit altogether (the held-out split is drawn from
            the others), so they change nothing; weights that are all equal
            give the unweighted fit. A custom ``loss`` module cannot take them.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        check_params(self)
        with torch_threads(self.n_threads):
            return self._fit(X, y, sample_weight)

    def _fit(
        self, X: ArrayLike, y: ArrayLike | None, sample_weight: ArrayLike | None
    ) -> _BaseMedicalCNN:
        self._reset()
        estimator_name = type(self).__name__
        if self.distributed and self.freeze_epochs:
            raise ValueError(
                "freeze_epochs is not supported with distributed=True "
                "(DistributedDataParallel cannot change which parameters train); "
                "use body_lr_factor, or train in one process."
            )
        if y is None and is_dataset(X):
            y = dataset_targets(X, estimator_name)
        if y is None:
            raise ValueError(
                f"{estimator_name} requires y to be passed, but the target y is None."
            )
        check_feature_names(self, X, reset=True)
        images: Any
        if is_dataset(X):
            if self.image_shape is not None:
                raise ValueError(
                    "image_shape reshapes flat rows and resizes image files; a "
                    "dataset's images are used as they are: resize them in the "
                    "dataset, or set image_shape=None."
                )
            images = DatasetImages(
                X,
                estimator_name=estimator_name,
                spatial_dims=self.spatial_dims if self.spatial_dims in (2, 3) else None,
            )
        elif is_path_array(X):
            images = ImageFiles(
                X,
                image_shape=self.image_shape,
                spatial_dims=self.spatial_dims,
                estimator_name=estimator_name,
            )
        else:
            images = check_images(
                X,
                image_shape=self.image_shape,
                estimator_name=estimator_name,
                spatial_dims=resolve_spatial_dims(
                    self.spatial_dims, X, image_shape=self.image_shape
                ),
            )
            wanted = tuple(int(size) for size in self.image_shape or ())
            if wanted and tuple(images.shape[1 : 1 + len(wanted)]) != wanted:
                raise ValueError(
                    f"image_shape={tuple(self.image_shape)} reshapes flat rows and "
                    f"resizes image files, but X holds images of shape "
                    f"{tuple(images.shape[1:])}: resize them first "
                    "(sk_medcnn.preprocessing.Resize), or set image_shape=None."
                )
        n_samples = images.shape[0]
        check_consistent_length(images, y)
        if n_samples < 2:
            raise ValueError(
                f"{estimator_name} needs at least 2 samples to train; got "
                f"{n_samples} sample (n_samples = 1)."
            )
        weights, keep = self._check_sample_weight(sample_weight, n_samples)
        row_weight = weights  # what the target statistics weigh each row by
        if weights is None and not np.array_equal(keep, np.arange(n_samples)):
            row_weight = np.bincount(keep, minlength=n_samples).astype(np.float64)
        y_encoded, fitted = self._encode_targets(y, sample_weight=row_weight)
        n_outputs = fitted.pop("_n_outputs")
        image_shape = tuple(int(size) for size in images.shape[1:])
        spatial_dims = len(image_shape) - 1
        if self.spatial_dims in (2, 3) and spatial_dims != self.spatial_dims:
            raise ValueError(
                f"spatial_dims={self.spatial_dims}, but X holds "
                f"{_kind(spatial_dims)} of shape {image_shape} "
                f"({_axes(spatial_dims)})."
            )
        if 0 in image_shape:
            raise ValueError(
                f"X holds empty {_kind(spatial_dims)} of shape {image_shape} "
                f"({_axes(spatial_dims)}); every size must be >= 1."
            )
        self._check_training_memory(image_shape, n_outputs, len(keep))

        device = resolve_device(self.device)
        if self.precision == "bf16" and (
            device.type not in ("cpu", "cuda")
            or (device.type == "cuda" and not torch.cuda.is_bf16_supported())
        ):
            raise ValueError(
                f"precision='bf16' but {device} does not support bfloat16 autocast "
                "here (CPUs and CUDA GPUs from Ampere on do); use precision='fp32'."
            )
        if self.distributed:
            if self.checkpoint_dir is not None:
                raise ValueError(
                    "checkpoint_dir is not supported with distributed=True (every "
                    "process would write the same file); use one or the other."
                )
            if self.lr_schedule == "plateau" and not self.early_stopping:
                raise ValueError(
                    "lr_schedule='plateau' without early_stopping watches each "
                    "process's own training loss, so with distributed=True the "
                    "processes would lower their learning rates apart; use "
                    "early_stopping=True (the held-out loss is the same on every "
                    "process) or another lr_schedule."
                )
            device = _distributed.init_distributed(device, estimator_name)
        # one draw of six seeds: the first five are what a five-seed draw gives
        seeds = draw_seeds(self.random_state, 6)
        if self.distributed:  # random_state=None draws differently on each rank
            seeds = _distributed.broadcast_from_rank_zero(seeds)
        (init_seed, split_seed, loader_seed, augment_seed, train_seed, mix_seed) = seeds
        if self.distributed:  # the same network and split; each its own draws
            rank = _distributed.rank_and_world_size()[0]
            augment_seed, train_seed, mix_seed = (
                (seed + 7919 * rank) % 2**31
                for seed in (augment_seed, train_seed, mix_seed)
            )
        train_index, valid_index = self._split(y_encoded[keep], split_seed)
        train_index = keep[train_index]  # positions among the kept samples -> rows
        if valid_index is not None:
            valid_index = keep[valid_index]
        source = self._pretrained_source(fitted, n_outputs)
        head = self._training_head()
        mean, std, normalization = self._input_statistics(images, train_index, source)
        params = dict(self.architecture_params or {})
        if source is not None:
            params = {**source.params, **params}
        body = self._build_body(
            image_shape, n_outputs, init_seed, device, params=params
        )
        if source is not None:
            load_weights(
                body,
                source.state,
                source.loader,
                source=source.origin,
                architecture=str(self.architecture),
                keep_head=source.keep_head,
            )
        if isinstance(self.augmentation, str):  # "auto"
            small = min(image_shape[:-1]) < AUTO_AUGMENTATION_MIN_SIZE
            augmentation = None if small else _default_augmentation(spatial_dims)
        elif self.augmentation is None:
            augmentation = None
        else:
            augmentation = clone(self.augmentation)
        augmenters, mixers = augmentation_steps(augmentation)
        if mixers and not self._is_classifier:
            raise ValueError(
                f"augmentation holds {type(mixers[0]).__name__}, which mixes class "
                f"labels; it works with MedicalCNNClassifier, not {estimator_name}."
            )
        generator = torch.Generator(device=device).manual_seed(augment_seed)
        augmenter = make_batch_augmenter(augmenters, generator)
        generators = {"augment": generator}
        mixing = None
        if mixers:
            generators["mix"] = torch.Generator().manual_seed(mix_seed)
            mixing = {
                "mixers": mixers,
                "n_classes": n_outputs,
                "mix_generator": generators["mix"],
            }
        loader_generator = torch.Generator().manual_seed(loader_seed)
        generators["loader"] = loader_generator
        # with sample weights, the targets carry them (see _training_targets)
        targets = y_encoded
        if weights is not None:
            loss_weight = weights * self._class_weight_of_rows(
                y_encoded, keep, fitted, weights
            )
            targets = self._training_targets(
                y_encoded, _loss_weights(loss_weight, train_index, valid_index), fitted
            )
        checkpoint, resume_state = self._checkpoint(
            images, targets, generators, n_train=len(train_index), rows=keep
        )

        # the datasets index into X: no copy of the images, even for the split
        train_dataset = ArrayDataset(images, targets, indices=train_index)
        valid_dataset = (
            None
            if valid_index is None
            else ArrayDataset(images, targets, indices=valid_index)
        )
        sampler: torch.utils.data.DistributedSampler[int] | None = None
        if self.distributed:
            rank, world_size = _distributed.rank_and_world_size()
            sampler = torch.utils.data.DistributedSampler(
                train_dataset,
                num_replicas=world_size,
                rank=rank,
                shuffle=True,
                seed=loader_seed,
            )
        criterion, criterion_params = self._make_criterion(
            y_encoded[keep], fitted, None if weights is None else weights[keep]
        )
        if (
            mixers
            and criterion is nn.CrossEntropyLoss
            and criterion_params.get("weight") is not None
        ):
            # torch's weighted cross-entropy averages soft targets over n, not over
            # the weights; the focal loss at gamma=0 is the same loss, averaged alike
            # for hard and mixed labels
            criterion, criterion_params = FocalLoss, {"gamma": 0.0, **criterion_params}
        net = build_net(
            module_params={
                "body": body,
                "mean": mean,
                "std": std,
                "precision": self.precision,
                "memory_format": self.memory_format,
                "spatial_dims": spatial_dims,
            },
            criterion=criterion,
            criterion_params=criterion_params,
            train_dataset=train_dataset,
            valid_dataset=valid_dataset,
            optimizer=self.optimizer,
            lr=self.lr,
            weight_decay=self.weight_decay,
            momentum=self.momentum,
            batch_size=self.batch_size,
            inference_batch_size=_inference_batch_size(self.batch_size, image_shape),
            max_epochs=self.max_epochs,
            lr_schedule=self.lr_schedule,
            early_stopping=self.early_stopping,
            patience=self.patience,
            device=device,
            loader_generator=loader_generator,
            verbose=self.verbose,
            score_accuracy=self._is_classifier,
            num_workers=self.num_workers,
            mixing=mixing,
            sampler=sampler,
            extra_callbacks=None
            if checkpoint is None
            else [("checkpoint", checkpoint)],
            head=head,
            freeze_epochs=self.freeze_epochs,
            body_lr_factor=self.body_lr_factor,
        )
        try:
            best_epoch, interrupted = train_net(
                net,
                train_dataset,
                augmenter=augmenter,
                seed=train_seed,
                device=device,
                resume_state=resume_state,
                distributed=self.distributed,
            )
        except Exception as error:
            if self.distributed and hasattr(error, "add_note"):  # Python >= 3.11
                rank, world_size = _distributed.rank_and_world_size()
                error.add_note(
                    f"{estimator_name}(distributed=True): raised on rank {rank} of "
                    f"{world_size}."
                )
            raise

        for name, value in fitted.items():
            setattr(self, name, value)
        self.image_shape_ = image_shape
        self.spatial_dims_ = spatial_dims
        self.n_features_in_ = math.prod(image_shape)
        self.device_ = str(device)
        self.input_mean_, self.input_std_ = mean, std
        self.input_normalization_ = normalization
        if source is not None:  # what the checkpoint implied, for rebuilding
            self.architecture_params_ = params
        self.augmentation_ = augmentation
        self.net_ = net
        self.history_ = net.history
        self.n_epochs_ = len(net.history)
        self.best_epoch_ = best_epoch
        self._validation_index = valid_index
        self._fit_calibration(images, y_encoded, valid_index, weights)
        self._fit_ood(images, y_encoded, train_index, valid_index, split_seed)
        self.model_card_ = describe_fit(
            self, images, y_encoded, train_index, valid_index
        )
        if interrupted:
            raise KeyboardInterrupt(
                f"{estimator_name}.fit was interrupted after {self.n_epochs_} "
                f"epoch(s); the estimator is fitted with the weights of epoch "
                f"{self.best_epoch_} and can predict"
                + (
                    f"; fit again with resume=True to continue from "
                    f"{self.checkpoint_dir!r}."
                    if self.checkpoint_dir is not None
                    else "."
                )
            )
        return self

    def _fit_calibration(
        self,
        images: NDArray[Any],
        y_encoded: NDArray[Any],
        valid_index: NDArray[np.intp] | None,
        sample_weight: NDArray[np.float64] | None = None,
    ) -> None:
        """Fit post-hoc calibration on the held-out split (classifier only)."""

    def _ood_groups(self, y_encoded: NDArray[Any]) -> NDArray[np.intp]:
        """Group of each row for the out-of-distribution means: one group."""
        return np.zeros(len(y_encoded), dtype=np.intp)

    def _fit_ood(
        self,
        images: NDArray[Any],
        y_encoded: NDArray[Any],
        train_index: NDArray[np.intp],
        valid_index: NDArray[np.intp] | None,
        seed: int,
    ) -> None:
        """Learn the out-of-distribution score and set its threshold.

        The class means and covariance of the penultimate features come from
        (at most :data:`OOD_MAX_FIT_ROWS` of) the training rows; the
        threshold from the held-out rows, which the network never trained on.
        """
        self.ood_location_ = self.ood_precision_ = self.ood_threshold_ = None
        self.ood_false_alarm_rate_ = None
        self.ood_n_held_out_ = 0
        rate = self.ood_false_alarm_rate
        if rate is None:
            return
        try:
            capture = feature_layer(self.net_.module_.body, self.architecture)
        except ValueError as error:
            warn_user(
                f"no out-of-distribution score was learned ({error}); set "
                "ood_false_alarm_rate=None to silence this."
            )
            return
        rng = np.random.default_rng(seed)
        fit_rows = train_index
        if len(fit_rows) > OOD_MAX_FIT_ROWS:
            fit_rows = np.sort(rng.choice(fit_rows, OOD_MAX_FIT_ROWS, replace=False))
        features = self._features(images, capture, fit_rows)
        if features.shape[1] > OOD_MAX_FEATURES:
            warn_user(
                f"no out-of-distribution score was learned: the network's features "
                f"have {features.shape[1]} values (more than {OOD_MAX_FEATURES}); "
                "set ood_false_alarm_rate=None to silence this."
            )
            return
        groups = self._ood_groups(y_encoded[fit_rows])
        location, precision = fit_mahalanobis(features, groups)
        if valid_index is not None and len(valid_index):
            held_out = self._features(images, capture, valid_index)
            self.ood_n_held_out_ = len(valid_index)
        else:
            held_out = features
            logger.info(
                "ood_false_alarm_rate=%s: no held-out split (calibration=None and "
                "early_stopping=False), so the threshold is set on training rows, "
                "and flags more new images than stated",
                rate,
            )
        scores = mahalanobis_score(held_out, location, precision)
        self.ood_location_ = location
        self.ood_precision_ = precision
        self.ood_threshold_ = ood_threshold(scores, rate)
        self.ood_false_alarm_rate_ = float(rate)

    def _features(
        self,
        images: ImageSource,
        capture: tuple[nn.Module, str],
        rows: NDArray[np.intp] | None = None,
        reduce: Any = None,
    ) -> NDArray[Any]:
        """Penultimate features of checked images (one pass, no TTA).

        With ``rows``, of those rows only, read a batch at a time (no copy of
        the selected images); with ``reduce``, what it makes of each batch's
        features (as :func:`predict_raw_with_features`).
        """
        batch_size = _inference_batch_size(self.batch_size, self.image_shape_)
        chunks: list[Any] = [None]
        if rows is not None:  # a training batch of rows at a time
            chunks = np.array_split(
                rows, max(1, math.ceil(len(rows) / self.batch_size))
            )
            read = RowReader(images)
        collected = []
        with torch_threads(getattr(self, "n_threads", None)):
            for chunk in chunks:
                _, features = predict_raw_with_features(
                    self.net_.module_,
                    images if chunk is None else read(chunk),
                    device=torch.device(self.net_.device),
                    batch_size=batch_size,
                    capture=capture,
                    reduce=reduce,
                )
                assert features is not None
                collected.append(features)
        return np.concatenate(collected)

    def _has_ood_score(self) -> bool:
        return getattr(self, "ood_threshold_", None) is not None

    def ood_score(self, X: ArrayLike) -> NDArray[np.float64]:
        """Out-of-distribution score: how unlike the training images each image is.

        The Mahalanobis distance of the image's penultimate features (the
        input of the network's output layer) to the nearest class mean of the
        training images, under their shared covariance (Lee et al., 2018).
        Higher is more unusual; images scoring above ``ood_threshold_`` are
        out of distribution at the false-alarm rate ``ood_false_alarm_rate``
        set in ``fit``. Cheap: one network pass, without test-time
        augmentation.

        Parameters
        ----------
        X : array-like of images
            As in :meth:`fit`, of the fitted image shape.

        Returns
        -------
        score : ndarray of shape (n_samples,)
            Non-negative; ``inf`` for an image whose features are not finite.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        AttributeError
            If no score was learned (``ood_false_alarm_rate=None``, a network
            without a linear output layer, or a model fitted before 0.2).
        """
        check_is_fitted(self, "net_")
        if not self._has_ood_score():
            raise AttributeError(
                f"this {type(self).__name__} has no out-of-distribution score: it "
                "was fitted with ood_false_alarm_rate=None, its network has no "
                "linear output layer, or it was fitted before the score existed. "
                "Fit it again with ood_false_alarm_rate=0.05 (the default)."
            )
        images = self._check_predict_images(X)
        capture = feature_layer(self.net_.module_.body, self.architecture)
        return self._features(images, capture, reduce=self._mahalanobis)

    def _mahalanobis(self, features: NDArray[np.float32]) -> NDArray[np.float64]:
        """Score features for being unlike the training images (:meth:`ood_score`)."""
        # only called with a learned score: fit sets (and the loader checks)
        # ood_location_, ood_precision_ and ood_threshold_ together
        location, precision = self.ood_location_, self.ood_precision_
        assert location is not None
        assert precision is not None
        return mahalanobis_score(features, location, precision)

    def _warn_if_out_of_distribution(self, score: NDArray[np.float64]) -> None:
        """Warn when ``predict`` meets images unlike the training images."""
        threshold, rate = self.ood_threshold_, self.ood_false_alarm_rate_
        assert threshold is not None  # as in _mahalanobis
        assert rate is not None
        message = ood_warning(score, float(threshold), float(rate))
        if message is not None:
            warn_user(message, OutOfDistributionWarning)

    def _check_sample_weight(
        self, sample_weight: ArrayLike | None, n_samples: int
    ) -> tuple[NDArray[np.float64] | None, NDArray[np.intp]]:
        """Validate ``sample_weight``; return it and the rows that train.

        The weights come back as None when they do not weigh anything: absent,
        or equal on every sample that trains (the losses are weighted means, so
        a common factor cancels). The rows that train are those of positive
        weight.
        """
        everything = np.arange(n_samples)
        if sample_weight is None:
            return None, everything
        try:
            weights = _check_sample_weight(
                sample_weight,
                np.empty((n_samples, 0)),
                dtype=np.float64,
                ensure_non_negative=True,
            )
        except (TypeError, ValueError) as error:
            if "sample_weight" in str(error):
                raise
            raise ValueError(
                f"sample_weight must be {n_samples} non-negative numbers, one per "
                f"sample: {error}"
            ) from error
        keep = np.flatnonzero(weights > 0)
        if len(keep) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples of positive "
                f"sample_weight to train; got {len(keep)}."
            )
        if np.all(weights[keep] == weights[keep[0]]):
            return None, keep
        if isinstance(self.loss, nn.Module):
            # A module called as loss(outputs, targets) cannot weigh; whole
            # counts (BaggingClassifier's bootstrap) become repeated rows.
            if np.array_equal(weights, np.round(weights)):
                counts = weights.astype(np.int64)
                return None, np.repeat(np.arange(n_samples), counts)
            raise ValueError(
                f"sample_weight cannot weigh a custom loss module ({self.loss!r}): "
                "it is called as loss(outputs, targets). Use one of the named "
                "losses, or weigh inside your module (weights of 0, which leave "
                "samples out, equal weights and whole counts, which repeat "
                "samples, work with any loss)."
            )
        return weights, keep

    def _class_weight_of_rows(
        self,
        y_encoded: NDArray[Any],
        keep: NDArray[np.intp],
        fitted: dict[str, Any],
        sample_weight: NDArray[np.float64],
    ) -> NDArray[np.float64] | float:
        """Return the class weight of every row (1.0 without class weights)."""
        return 1.0

    def _checkpoint(
        self,
        images: NDArray[Any],
        y_encoded: NDArray[Any],
        generators: dict[str, torch.Generator],
        *,
        n_train: int,
        rows: NDArray[np.intp] | None = None,
    ) -> tuple[TrainingCheckpoint | None, dict[str, Any] | None]:
        """Make the checkpoint callback and load the state to resume, if any."""
        if self.checkpoint_dir is None:
            if self.resume:
                raise ValueError(
                    "resume=True needs checkpoint_dir, the folder the interrupted "
                    "fit saved its checkpoints to."
                )
            return None, None
        folder = Path(self.checkpoint_dir)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"checkpoint_dir={str(folder)!r} is a file, not a folder.")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # a parent is a file, or no permission
            reason = error.strerror or str(error)
            raise ValueError(
                f"checkpoint_dir={str(folder)!r} cannot be created ({reason})."
            ) from error
        path = folder / CHECKPOINT_NAME
        fingerprint = self._fingerprint(images, y_encoded, n_train)
        if rows is not None and not np.array_equal(rows, np.arange(len(images))):
            # which samples train (weights of 0 leave some out, counts repeat)
            fingerprint["rows_crc32"] = zlib.crc32(
                np.ascontiguousarray(rows, dtype=np.int64).tobytes()
            )
        resume_state = load_checkpoint(path, fingerprint) if self.resume else None
        return TrainingCheckpoint(path, fingerprint, generators, resume_state), (
            resume_state
        )

    def _fingerprint(
        self, images: NDArray[Any], y_encoded: NDArray[Any], n_train: int
    ) -> dict[str, Any]:
        """Describe the data and the settings a checkpoint belongs to."""
        ignored = {
            "verbose",
            "checkpoint_dir",
            "resume",
            "device",
            "tta",
            "ood_false_alarm_rate",
            "num_workers",
            "n_threads",
        }
        params = {}
        for name, value in self.get_params(deep=False).items():
            if name in ignored:
                continue
            params[name] = (
                value
                if value is None or isinstance(value, bool | int | float | str)
                else repr(value)
            )
        step = max(1, len(images) // 64)
        sample = np.ascontiguousarray(images[::step])
        return {
            **json.loads(json.dumps(params, default=str)),
            "n_samples": len(images),
            "n_train": int(n_train),
            "image_shape": list(images.shape[1:]),
            "dtype": str(images.dtype),
            "y_crc32": zlib.crc32(np.ascontiguousarray(y_encoded).tobytes()),
            "X_sample_crc32": zlib.crc32(sample.tobytes()),
        }

    def _fitted_n_outputs(self) -> int:
        """Return the number of network outputs of a fitted estimator."""
        raise NotImplementedError

    def _needs_validation_split(self) -> bool:
        """Whether anything besides early stopping needs the held-out split."""
        return False

    def _restore_net(
        self,
        module_state: Mapping[str, torch.Tensor],
        *,
        device: str | torch.device = "cpu",
        history: list[dict[str, Any]] | None = None,
    ) -> None:
        """Rebuild ``net_`` for inference from fitted attributes and weights.

        The loader of the safe format (:func:`sk_medcnn.load_model`) sets the
        parameters and fitted attributes (``image_shape_``, ``input_mean_``,
        ``input_std_``, ``classes_`` or ``target_mean_``), then calls this: the
        architecture is built again from the registry, never unpickled, and
        ``module_state`` (the ``state_dict`` of ``net_.module_``) is loaded into it
        strictly, so missing, unexpected or mis-shaped weights are an error.

        Parameters
        ----------
        module_state : mapping of str to torch.Tensor
            The weights and buffers of the fitted :class:`ImageNetwork`.
        device : str or torch.device, default="cpu"
            Where to place the network (``"auto"`` picks CUDA when available).
        history : list of dict, optional
            The training history to attach as ``net_.history``.

        Raises
        ------
        ValueError
            If the weights do not match the architecture.
        """
        resolved = resolve_device(device)
        body = self._build_body(
            self.image_shape_,
            self._fitted_n_outputs(),
            0,
            resolved,
            params=self._fitted_architecture_params(),
        )
        empty = np.zeros((0, *self.image_shape_), dtype=np.float32)
        net = build_net(
            module_params={
                "body": body,
                "mean": self.input_mean_,
                "std": self.input_std_,
                "precision": self.precision,
                "memory_format": self.memory_format,
                "spatial_dims": len(self.image_shape_) - 1,
            },
            criterion=nn.CrossEntropyLoss if self._is_classifier else nn.MSELoss,
            criterion_params={},
            train_dataset=ArrayDataset(empty, np.zeros(0, dtype=np.int64)),
            valid_dataset=None,
            optimizer=self.optimizer,
            lr=self.lr,
            weight_decay=self.weight_decay,
            momentum=self.momentum,
            batch_size=self.batch_size,
            inference_batch_size=_inference_batch_size(
                self.batch_size, self.image_shape_
            ),
            max_epochs=self.max_epochs,
            lr_schedule=None,
            early_stopping=False,
            patience=self.patience,
            device=resolved,
            loader_generator=torch.Generator().manual_seed(0),
            verbose=0,
            score_accuracy=False,
        )
        net.initialize()
        expected = net.module_.state_dict()
        wrong_dtype = [
            f"{name} ({tensor.dtype}, expected {expected[name].dtype})"
            for name, tensor in module_state.items()
            if name in expected and tensor.dtype != expected[name].dtype
        ]
        if wrong_dtype:
            # load_state_dict would cast them silently
            raise ValueError(
                f"the saved weights do not fit architecture {self.architecture!r}: "
                f"wrong dtype for {', '.join(wrong_dtype[:5])}"
            )
        try:
            net.module_.load_state_dict(dict(module_state), strict=True)
        except RuntimeError as error:
            raise ValueError(
                f"the saved weights do not fit architecture {self.architecture!r}: "
                f"{error}"
            ) from error
        net.module_.eval()
        if resolved.type == "cpu":
            net.module_.to_inference_layout()
        if history is not None:
            net.history = History(history)
        self.net_ = net
        self.history_ = net.history
        self.device_ = str(resolved)

    def _split(
        self, y_encoded: NDArray[Any], seed: int
    ) -> tuple[NDArray[np.intp], NDArray[np.intp] | None]:
        n_samples = len(y_encoded)
        indices = np.arange(n_samples)
        if not (self.early_stopping or self._needs_validation_split()):
            return indices, None
        n_valid = math.ceil(self.validation_fraction * n_samples)
        n_needed = len(np.unique(y_encoded)) if self._is_classifier else 1
        if n_valid < 1 or n_samples - n_valid < n_needed:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves too few "
                f"training or validation samples out of {n_samples}; early_stopping "
                "and calibration need more samples or another validation_fraction "
                "(calibration=None and early_stopping=False train on all of them)."
            )
        stratify = None
        if self._is_classifier:
            counts = np.bincount(y_encoded)
            n_classes = np.count_nonzero(counts)
            if counts[counts > 0].min() >= 2 and n_valid >= n_classes:
                stratify = y_encoded
            else:
                warn_user(
                    "the held-out validation split cannot be stratified "
                    "(a class has fewer than 2 samples, or the split is smaller than "
                    "the number of classes); it is drawn at random."
                )
        train_index, valid_index = train_test_split(
            indices, test_size=n_valid, random_state=seed, stratify=stratify
        )
        return np.sort(train_index), np.sort(valid_index)

    def _fitted_architecture_params(self) -> dict[str, Any]:
        """Return the factory's keyword arguments of the fit.

        Models fitted before ``architecture_params_`` existed used
        ``architecture_params`` as they are.
        """
        fitted = getattr(self, "architecture_params_", None)
        if fitted is not None:
            return dict(fitted)
        return dict(self.architecture_params or {})

    def _training_head(self) -> tuple[str, ...] | None:
        """Return the output-layer modules, if the training options need them.

        ``freeze_epochs`` and ``body_lr_factor`` do; None when neither is set.
        """
        if self.freeze_epochs == 0 and self.body_lr_factor == 1.0:
            return None
        if not isinstance(self.architecture, str):
            raise ValueError(
                "freeze_epochs and body_lr_factor need to know the output layer: "
                "use a registered architecture name with a weight loader (see "
                "sk_medcnn.register_weight_loader), not a factory callable."
            )
        return get_weight_loader(self.architecture).head

    def _pretrained_source(
        self, fitted: dict[str, Any], n_outputs: int
    ) -> _PretrainedSource | None:
        """Read ``pretrained``: the weights, their loader and what they expect."""
        if self.pretrained is None:
            return None
        if not isinstance(self.architecture, str):
            raise ValueError(
                "pretrained needs a registered architecture name (its weight "
                "loader maps the checkpoint onto the network); got a factory "
                "callable for architecture."
            )
        loader = get_weight_loader(self.architecture)
        model = self.pretrained
        origin = "the fitted estimator given as pretrained"
        if not isinstance(model, BaseEstimator):
            path = Path(model)
            if path.suffix.lower() != ".skmed":
                state = read_weights(path)
                implied = {}
                if loader.architecture_params is not None:
                    implied = dict(loader.architecture_params(loader.map_keys(state)))
                return _PretrainedSource(
                    state=state,
                    loader=loader,
                    origin=f"the file {str(path)!r}",
                    keep_head=False,
                    params=implied,
                    statistics=loader.normalization or "data",
                )
            from .persistence import load_model  # persistence imports this module

            if not path.is_file():
                raise ValueError(f"pretrained model file {str(path)!r} does not exist.")
            model = load_model(path)
            origin = f"the model file {str(path)!r}"
        if hasattr(model, "steps"):  # a Pipeline: its network is the last step
            model = model.steps[-1][1]
        if not isinstance(model, _BaseMedicalCNN) or not hasattr(model, "net_"):
            raise ValueError(
                f"pretrained must be a fitted sk_medcnn estimator (or a Pipeline "
                f"ending in one) when it is not a weights file; {origin} is "
                f"{'an unfitted' if isinstance(model, _BaseMedicalCNN) else 'a'} "
                f"{type(model).__name__}."
            )
        if model.architecture != self.architecture:
            raise ValueError(
                f"pretrained: {origin} has architecture {model.architecture!r}, "
                f"but this estimator has {self.architecture!r}; fine-tuning keeps "
                "the architecture."
            )
        state = {
            name.removeprefix("body."): tensor.detach().cpu()
            for name, tensor in model.net_.module_.state_dict().items()
            if name.startswith("body.")
        }
        if self._is_classifier != model._is_classifier:
            keep_head = False
        elif self._is_classifier:
            classes = model.classes_
            keep_head = len(classes) == len(fitted["classes_"]) and bool(
                np.all(classes == fitted["classes_"])
            )
        else:
            keep_head = model._fitted_n_outputs() == n_outputs
        return _PretrainedSource(
            state=state,
            loader=loader,
            origin=origin,
            keep_head=keep_head,
            params=model._fitted_architecture_params(),
            statistics=(
                np.asarray(model.input_mean_, dtype=np.float64),
                np.asarray(model.input_std_, dtype=np.float64),
            ),
        )

    def _input_statistics(
        self,
        images: Any,
        train_index: NDArray[np.intp],
        source: _PretrainedSource | None,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], str]:
        """Resolve ``input_normalization`` into per-channel mean and std."""
        return resolve_input_statistics(
            self.input_normalization,
            images,
            train_index,
            default="data" if source is None else source.statistics,
        )

    def __sklearn_clone__(self) -> _BaseMedicalCNN:
        # a fitted estimator given as pretrained stays fitted: it is read only
        if not isinstance(self.pretrained, BaseEstimator):
            return super().__sklearn_clone__()  # type: ignore[no-any-return]
        params = {
            name: value if name == "pretrained" else clone(value, safe=False)
            for name, value in self.get_params(deep=False).items()
        }
        return type(self)(**params)

    def _factory(self) -> tuple[Any, str]:
        """Return the architecture factory and its name for messages."""
        factory = (
            get_architecture(self.architecture)
            if isinstance(self.architecture, str)
            else self.architecture
        )
        name = (
            self.architecture
            if isinstance(self.architecture, str)
            else getattr(self.architecture, "__name__", repr(self.architecture))
        )
        return factory, name

    def _check_training_memory(
        self, image_shape: tuple[int, ...], n_outputs: int, n_samples: int
    ) -> None:
        """Refuse, before any work, a fit whose training step cannot fit in memory.

        See :func:`sk_medcnn.utils._memory.training_memory` for the estimate.
        """
        factory, name = self._factory()
        batch_size = max(1, min(int(self.batch_size), n_samples))
        if not worth_estimating(batch_size * math.prod(image_shape) * 4):
            return  # small images: not worth building the network on meta
        need = training_memory(
            factory,
            dict(self.architecture_params or {}),
            image_shape,
            n_outputs,
            batch_size,
        )
        if need is not None:
            size = "x".join(str(side) for side in image_shape[:-1])
            unit = "voxels" if len(image_shape) == 4 else "pixels"
            check_memory(
                need,
                f"Training architecture {name!r} on X of {_kind(len(image_shape) - 1)} "
                f"of {size} {unit} x {image_shape[-1]} channels with "
                f"batch_size={batch_size}",
                "Resize the images (sk_medcnn.preprocessing.Resize, or image_shape "
                "for image files) or lower batch_size.",
            )

    def _build_body(
        self,
        image_shape: tuple[int, ...],
        n_outputs: int,
        seed: int,
        device: torch.device,
        *,
        params: dict[str, Any] | None = None,
    ) -> nn.Module:
        factory, name = self._factory()
        *spatial, channels = image_shape
        check_architecture_dims(factory, len(spatial))
        if params is None:
            params = dict(self.architecture_params or {})
        with seeded_torch(seed, torch.device("cpu")):
            try:
                body = factory(channels, n_outputs, tuple(spatial), **params)
            except TypeError as error:
                if not params:
                    raise
                raise TypeError(
                    f"architecture {name!r} did not accept architecture_params="
                    f"{params!r}: {error}"
                ) from error
        if not isinstance(body, nn.Module):
            raise TypeError(
                f"architecture {name!r} returned {type(body).__name__}, not a "
                "torch.nn.Module."
            )
        body = body.to(device)
        probe = torch.zeros((1, channels, *spatial), device=device)
        was_training = body.training
        body.eval()
        try:
            # no_grad, not inference_mode: lazy modules create (and randomly
            # initialise) their parameters here, so seed this too
            with torch.no_grad(), seeded_torch(seed, device):
                output = _probe(body, probe)
        except RuntimeError as error:
            if "allocat" in str(error):  # torch's CPU and CUDA out-of-memory
                raise ValueError(
                    f"{_kind(len(spatial))} of shape {image_shape} need more memory "
                    f"than is free for one image through architecture {name!r}: "
                    f"{error}"
                ) from error
            raise ValueError(
                f"{_kind(len(spatial))} of shape {image_shape} do not fit architecture "
                f"{name!r} (too small, or the wrong number of channels): {error}"
            ) from error
        finally:
            body.train(was_training)
        if tuple(output.shape) != (1, n_outputs):
            raise ValueError(
                f"architecture {name!r} returned outputs of shape "
                f"{tuple(output.shape)} for one image; expected (1, {n_outputs})."
            )
        return body

    # --- predict --------------------------------------------------------------
    def _check_predict_images(self, X: Any) -> ImageSource:
        # X: an array, memmap or tensor, file paths, or a torch Dataset
        check_is_fitted(self, "net_")
        name = type(self).__name__
        if is_path_array(X):
            # files are read batch by batch, resized to the fitted image shape
            files = ImageFiles(
                X,
                image_shape=self.image_shape_,
                spatial_dims=len(self.image_shape_) - 1,
                estimator_name=name,
            )
            self._warn_if_other_intensity_scale(files, n_check=8)
            return files
        images: ImageSource
        if is_dataset(X):
            images = DatasetImages(
                X, estimator_name=name, spatial_dims=len(self.image_shape_) - 1
            )
        else:
            shape = tuple(getattr(X, "shape", ()))
            if len(shape) == 2 and shape == self.image_shape_[:2] != (1, shape[1]):
                raise ValueError(
                    f"X has {shape[1]} features, but {name} is expecting "
                    f"{self.n_features_in_} features as input: X looks like one "
                    f"image of shape {shape}; pass a batch of one, X[np.newaxis]."
                )
            check_feature_names(self, X, reset=False)
            spatial_dims = len(self.image_shape_) - 1
            ndim = getattr(X, "ndim", None)
            if ndim is not None and ndim > 2 and ndim - spatial_dims not in (1, 2):
                raise ValueError(
                    f"X has shape {tuple(shape)}, but {name} was fitted on "
                    f"{_kind(spatial_dims)} of shape {self.image_shape_} "
                    f"({_axes(spatial_dims)}): pass X of shape (n_samples, "
                    f"{', '.join(str(side) for side in self.image_shape_)})."
                )
            images = check_images(
                X,
                image_shape=self.image_shape_,
                estimator_name=name,
                expected_n_features=self.n_features_in_,
                spatial_dims=spatial_dims,
            )
        if tuple(images.shape[1:]) != self.image_shape_:
            n_features = math.prod(images.shape[1:])
            prefix = ""
            if n_features != self.n_features_in_:  # scikit-learn's wording first
                prefix = (
                    f"X has {n_features} features, but {name} is expecting "
                    f"{self.n_features_in_} features as input: "
                )
            spatial_dims = len(self.image_shape_) - 1
            advice = "resize them first (sk_medcnn.preprocessing.Resize)."
            if getattr(X, "ndim", 0) > 2 and infer_spatial_dims(X) != spatial_dims:
                advice = (
                    f"X of shape {tuple(X.shape)} looks like "  # type: ignore[union-attr]
                    f"{_kind(infer_spatial_dims(X))}: a model of "
                    f"{_kind(spatial_dims)} cannot predict them."
                )
            raise ValueError(
                f"{prefix}X holds {_kind(spatial_dims)} of shape "
                f"{tuple(images.shape[1:])}, but {name} was fitted on "
                f"{_kind(spatial_dims)} of shape {self.image_shape_} "
                f"({_axes(spatial_dims)}); {advice}"
            )
        if not is_dataset(X):
            self._warn_if_other_intensity_scale(images, n_check=64)
        return images

    def _warn_if_other_intensity_scale(self, images: Any, *, n_check: int) -> None:
        """Warn when the first images are on another scale than the training ones.

        A network trained on 0-255 pixels predicts nonsense on 0-1 or 16-bit
        ones, without any error. Both the spread (standard deviation) and the
        magnitude (largest absolute value, against the training images' |mean|
        + 3 std) must differ by a factor of 10 the same way: a blank or flat
        image (an air-only CT slice, an even exposure) has a small spread but
        values of the usual magnitude, and does not warn.
        """
        mean = np.abs(np.asarray(getattr(self, "input_mean_", 0.0), dtype=float))
        std = np.asarray(getattr(self, "input_std_", 0.0), dtype=float)
        fitted_spread = float(std.mean())
        fitted_magnitude = float((mean + 3 * std).mean())
        # at most 2**16 pixel values: a small, fixed cost whatever the image size
        per_image = math.prod(images.shape[1:])
        n_check = min(len(images), n_check, max(1, 2**16 // per_image))
        sample = np.asarray(images[:n_check], dtype=np.float32)
        spatial = tuple(range(sample.ndim - 1))
        spread = float(sample.std(axis=spatial, dtype=np.float64).mean())
        magnitude = float(np.abs(sample).max())
        if min(fitted_spread, fitted_magnitude, spread, magnitude) <= 0:
            return
        ratios = (spread / fitted_spread, magnitude / fitted_magnitude)
        if not (max(ratios) < 0.1 or min(ratios) > 10):
            return
        warn_user(
            f"the intensities of X spread {spread:.3g} and reach {magnitude:.3g} "
            f"(the first {len(sample)} images), but those of the training images "
            f"spread {fitted_spread:.3g} around {float(mean.mean()):.3g}: were "
            "they scaled differently (0-255 against 0-1, 8 against 16 bits)? "
            "Preprocess the images as for fit, or predictions are meaningless."
        )

    def _prediction_tta(self) -> str | None:
        """Return the test-time augmentation that predictions use.

        An explicit ``tta`` is read at prediction time (as before ``"auto"``
        existed, so ``set_params(tta=...)`` after ``fit`` takes effect);
        ``"auto"`` uses the choice ``fit`` made, ``tta_``.
        """
        tta = getattr(self, "tta", None)
        if isinstance(tta, str) and tta == "auto":
            return getattr(self, "tta_", None)
        return tta

    def _raw_outputs(
        self, X: ArrayLike, *, checked: bool = False, tta: str | bool | None = True
    ) -> NDArray[np.float32]:
        """Network outputs for each test-time view: ``(n_views, n_samples, k)``.

        ``tta`` gives the views; True (the default) means those predictions
        use, and then, with an out-of-distribution score, the features of the
        same passes are scored and ``predict`` warns about unusual images.
        """
        images = np.asarray(X) if checked else self._check_predict_images(X)
        capture = None
        if tta is True:
            tta = self._prediction_tta()
            if self._has_ood_score():
                capture = feature_layer(self.net_.module_.body, self.architecture)
        with torch_threads(getattr(self, "n_threads", None)):
            outputs, score = predict_raw_with_features(
                self.net_.module_,
                images,
                device=torch.device(self.net_.device),
                batch_size=_inference_batch_size(self.batch_size, self.image_shape_),
                views=tta_views(tta or None, self.image_shape_),
                capture=capture,
                reduce=self._mahalanobis,
            )
        if score is not None and len(score):
            self._warn_if_out_of_distribution(score)
        return outputs

    def __setstate__(self, state: dict[str, Any]) -> None:
        # estimators pickled before these parameters existed
        for name, default in (
            ("precision", "fp32"),
            ("memory_format", "contiguous"),
            ("n_threads", None),
            ("distributed", False),
            ("pretrained", None),
            ("input_normalization", "auto"),
            ("freeze_epochs", 0),
            ("body_lr_factor", 1.0),
            ("ood_false_alarm_rate", None),  # fitted without the score
        ):
            state.setdefault(name, default)
        if self._is_classifier and "net_" in state:  # fitted before tta="auto"
            state.setdefault("tta_", state.get("tta"))
            state.setdefault("tta_scores_", None)
        self.__dict__.update(state)
        net = state.get("net_")
        if net is not None and str(net.device) != state.get("device_"):
            warn_cpu_fallback(state.get("device_", "?"))
            self.device_ = str(net.device)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


class MedicalCNNClassifier(ClassifierMixin, _BaseMedicalCNN):
    """A convolutional network image classifier with the scikit-learn API.

    ``fit`` builds the network from the architecture registry and trains it
    with skorch: mini-batches, the chosen optimizer, learning-rate schedule and
    loss, optional early stopping with best-weight restore, and optional
    on-the-fly augmentation of every training batch. Images are standardised
    with per-channel statistics learned in ``fit`` (kept in the network, so the
    same scaling applies at predict time).

    The defaults (Adam at 1e-3, batches of 32, 20 epochs of cosine annealing
    without early stopping, a temperature fitted on 10% of the training data
    held out, predictions averaged over the image and four copies shifted by
    5% of its size where that held-out split shows it helps) were chosen by
    5-fold cross-validation on PneumoniaMNIST over 3 seeds; the default
    augmentation (small affine maps, intensity changes and noise,
    :func:`sk_medcnn.augmentation.default_augmentation`) was chosen for
    robustness to acquisition shifts on PneumoniaMNIST and RetinaMNIST and on
    small subsets of them (user guide, "Defaults and a recipe" and "Defaults
    under acquisition shifts"). ``predict`` returns the most probable class;
    for another operating point wrap the estimator in
    :class:`sklearn.model_selection.TunedThresholdClassifierCV`.

    Parameters
    ----------
    architecture : str or callable, default="simple_cnn"
        A name from :func:`sk_medcnn.list_architectures` (``"simple_cnn"``,
        ``"resnet18"``, ``"resnet34"`` or a plugin's), or a factory
        ``factory(in_channels, n_outputs, image_shape, **params) -> nn.Module``.
    architecture_params : dict, default=None
        Keyword arguments of the factory, e.g. ``{"dropout": 0.3}``.
    pretrained : str, path-like, fitted estimator or None, default=None
        Start from pretrained weights instead of a random initialisation (see
        the user guide, "Pretrained weights"): a state dict in a ``.pth``,
        ``.pt`` or ``.safetensors`` file, in torchvision's or timm's layout
        for the built-in ResNets (or the layout a plugin's weight loader
        declares); or a fitted sk_medcnn model, as a ``.skmed`` file or an
        estimator (a Pipeline's last step), of the same architecture, to
        fine-tune on new data. The first convolution is adapted to the
        images' channels (one channel: the sum of the RGB kernels), the output
        layer is replaced (kept when a fitted source has the same classes),
        and factory parameters the checkpoint implies (the ResNets' ``stem``
        and ``width``) are used where ``architecture_params`` does not set
        them. The file is read in ``fit`` only: a model loaded with
        :func:`sk_medcnn.load_model` holds its weights and never opens it.
        ``clone`` keeps a fitted estimator given here as it is.
    input_normalization : {"auto", "data", "imagenet"} or (mean, std), \
            default="auto"
        How images are standardised before the network: ``"data"`` with the
        per-channel mean and standard deviation of the training images;
        ``"imagenet"`` with ImageNet's (uint8 and uint16 pixels are taken over
        their full range, float images must lie in [0, 1]); a ``(mean, std)``
        pair, per channel or one for all, in the images' units. ``"auto"``
        is what the weights expect: ``"imagenet"`` for ResNet checkpoint
        files, the source model's statistics for a fitted sk_medcnn model,
        ``"data"`` without ``pretrained``.
    freeze_epochs : int, default=0
        Train only the output layer for this many first epochs (the body's
        parameters get no gradient; its batch-normalisation statistics still
        adapt), then everything. Needs an architecture with a weight loader
        (the built-in ones); not with ``distributed=True``.
    body_lr_factor : float, default=1.0
        The body's learning rate is ``lr * body_lr_factor`` (the output layer
        keeps ``lr``; an optimizer parameter group each, so every schedule
        scales both alike). Below 1 fine-tunes pretrained features gently.
    loss : {"cross_entropy", "focal"} or torch.nn.Module, default="cross_entropy"
        Training loss on the logits; a module instance is copied in ``fit``
        and gets no class weights.
    gamma : float, default=2.0
        Focusing parameter of ``loss="focal"``.
    optimizer : {"sgd", "adam", "adamw"} or torch.optim.Optimizer subclass, \
            default="adam"
        The optimizer.
    lr : float, default=1e-3
        Learning rate (the peak rate for ``lr_schedule="onecycle"``).
    weight_decay : float, default=0.0
        L2 penalty (decoupled for ``"adamw"``).
    momentum : float, default=0.9
        Momentum of ``"sgd"``; ignored by the other optimizers.
    batch_size : int, default=32
        Training images per batch.
    max_epochs : int, default=20
        Passes over the training data.
    lr_schedule : {None, "cosine", "step", "plateau", "onecycle"}, \
            default="cosine"
        Learning-rate schedule: cosine annealing over ``max_epochs``; a step
        decay by 10 every third of the epochs; a decay by 10 when the monitored
        loss stops improving for ``patience // 2`` epochs (validation loss with
        early stopping, else training loss: a split held out for
        ``calibration`` only stays out of training decisions); or the
        one-cycle policy.
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the training data,
        stop when its loss has not improved for ``patience`` epochs, and
        restore the weights of the best epoch.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping and for
        ``calibration`` (never trained on).
    patience : int, default=5
        Epochs without improvement before early stopping.
    class_weight : {None, "balanced"} or dict, default=None
        Weights of the classes in the loss: ``"balanced"`` uses
        ``n_samples / (n_classes * count)``; a dict maps class labels to
        weights (missing classes weigh 1).
    augmentation : "auto", estimator, list, Pipeline or None, default="auto"
        Random augmenters from :mod:`sk_medcnn.augmentation`, applied in order
        to each training batch, fresh every epoch, on the training device;
        never to validation or prediction data. Label mixers (``MixUp``) mix
        each training batch as it is drawn, before the other augmenters.
        ``"auto"`` trains with a new
        :func:`~sk_medcnn.augmentation.default_augmentation` pipeline: half
        the images shifted, rotated and zoomed a little, every image's
        brightness, contrast and gamma changed, noise on half of them; no
        flips. Images smaller than 8 pixels in height or width (such as rows
        of features seen as one-row images) get none. None trains on the
        images as they are (the former default).
    calibration : {None, "temperature"}, default="temperature"
        ``"temperature"`` holds out ``validation_fraction`` of the training
        data (the early-stopping split when ``early_stopping=True``) and, after
        training, fits one temperature that divides the logits to minimise the
        log-loss there (Guo et al. 2017): better calibrated probabilities, the
        same ranking and predictions for two classes. None trains on all the
        data and leaves the logits as they are.
    tta : "auto", str or None, default="auto"
        Test-time augmentation of ``predict``, ``predict_proba`` and
        ``decision_function``: None, or ``"+"``-joined tokens from ``"hflip"``,
        ``"vflip"`` and ``"shifts"`` (e.g. ``"hflip+shifts"``). The network
        sees each image and its horizontally and/or vertically flipped copies
        and, with ``"shifts"``, four copies shifted by 5% of the image size
        (border replicated); the outputs are averaged (probabilities for the
        classifier). Deterministic. Use views the task is invariant to;
        prediction takes one network pass per view (5 with ``"shifts"``).
        ``"auto"`` decides in ``fit``, on the held-out ``validation_fraction``
        (the split the temperature is fitted on, never trained on): it keeps
        ``"shifts"`` unless that makes the held-out log-loss of the
        predictions worse (each with its own fitted temperature), and then
        predicts without TTA. Without a held-out split (``calibration=None``
        and ``early_stopping=False``) ``"auto"`` means no TTA. The choice is
        ``tta_``, the scores behind it ``tta_scores_``; with ``verbose > 0``
        ``fit`` prints them. An explicit value is used as given.
    ood_false_alarm_rate : float or None, default=0.05
        ``fit`` learns an out-of-distribution score (:meth:`ood_score`: the
        Mahalanobis distance of an image's penultimate features to the
        nearest class mean of the training images) and sets its threshold,
        ``ood_threshold_``, on the held-out ``validation_fraction`` so that
        this share of images like the training ones score above it. The
        score costs one network pass over the training rows in ``fit`` and
        nothing in ``predict``, which warns
        (:class:`~sk_medcnn.exceptions.OutOfDistributionWarning`) when an
        image scores far above the threshold. Without a held-out split
        (``calibration=None`` and ``early_stopping=False``) the threshold is
        set on the training rows and flags more new images than stated. None
        learns no score.
    num_workers : int, default=0
        Processes of the training data loader that read batches in parallel
        (torch's ``DataLoader``); useful when ``X`` is a list of image files,
        which ``fit`` then reads batch by batch instead of all at once. At most
        256.
    checkpoint_dir : str or path-like, default=None
        A folder where ``fit`` saves the training state after every epoch
        (``checkpoint.pt``, written atomically: the last epoch's state, the
        best weights so far and the random generators), so that an
        interrupted fit can continue with ``resume=True``.
    resume : bool, default=False
        Continue the fit saved in ``checkpoint_dir`` (same data and settings)
        up to ``max_epochs`` epochs; the result equals an uninterrupted fit.
        Without a checkpoint there, the fit starts afresh.
    image_shape : tuple of int, default=None
        ``(height, width[, channels])`` of flat ``X`` of shape ``(n_samples,
        n_pixels)``, or ``(depth, height, width[, channels])`` of flat volumes.
        Without it, flat rows are taken as square images, or one-row images
        when ``n_pixels`` is not a square. For image files, the size to
        resize them to.
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes (CT, MRI). ``"auto"`` reads it from the
        shape of ``X`` in ``fit``: 5-D arrays are volumes ``(n, D, H, W,
        C)``; a 4-D array is colour or grey images ``(n, H, W, C)`` when
        its last axis has 1, 3 or 4 entries, and volumes ``(n, D, H, W)``
        otherwise; 3-D arrays are grey images; a 4-D ``torch.Tensor`` is
        images ``(n, C, H, W)``. Pass 2 for 2-D images with another number of
        channels, 3 for volumes of depth 1, 3 or 4 given without a channel
        axis.
    device : str or torch.device, default="auto"
        Where to train and predict: ``"auto"`` (CUDA, then Apple MPS, then
        CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
    precision : {"fp32", "bf16"}, default="fp32"
        ``"bf16"`` trains and predicts under bfloat16 autocast (convolutions
        and matrix products in bfloat16; weights, optimizer and returned
        scores in float32): faster on CPUs with AVX-512 BF16 or AMX and on
        GPUs from NVIDIA Ampere on (see the benchmarks page for the measured
        effect). Float16 needs loss scaling and is not offered.
    memory_format : {"contiguous", "channels_last"}, default="contiguous"
        Memory layout of the network's weights and activations.
        ``"channels_last"`` is faster for some networks on CPUs (oneDNN) and
        on GPUs with tensor cores; ``"contiguous"`` is torch's usual NCHW.
    n_threads : int or None, default=None
        Torch intra-op threads while fitting and predicting (set with
        :func:`torch.set_num_threads` and restored afterwards), at most 1024.
        None keeps the process's setting, which is right in most cases: joblib's
        process workers (``GridSearchCV(n_jobs=k)``) start with
        ``OMP_NUM_THREADS`` = cores // k unless it is set, and Dask's nanny
        starts workers with 1; torch reads it. The setting belongs to the
        process: estimators that fit at the same time in threads of one
        process must not set it differently.
    distributed : bool, default=False
        Train one model in several processes started by ``torchrun`` (data
        parallel, torch's ``DistributedDataParallel``; gloo on CPUs, NCCL on
        GPUs, each process on the GPU of its ``LOCAL_RANK``). Every process
        runs the same script on the same data with the same ``random_state``
        (rank 0's seeds are used when it is None); each trains on its own
        shard of every epoch with its own augmentation and dropout draws, so
        ``batch_size`` is per process, and the gradients are averaged at every
        step: all processes end with the same model. ``checkpoint_dir`` is not
        supported with it, nor ``lr_schedule="plateau"`` without
        ``early_stopping``.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, the validation split, the batch order,
        dropout and augmentation. With an int, two fits on the CPU give
        identical predictions.
    verbose : int, default=0
        0 is silent, as scikit-learn estimators are (so ``GridSearchCV`` and
        ``cross_val_score`` stay quiet); 1 prints a line of the epoch table as
        each epoch ends (flushed, so it shows at once in a pipe or a log file)
        and, when standard error is a terminal, a progress bar of the batches;
        2 always shows the progress bar. Use ``verbose=1`` for a long fit.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Values per image (``height * width * channels``).
    image_shape_ : tuple of int
        ``(height, width, channels)`` of the training images, or ``(depth,
        height, width, channels)`` of training volumes.
    spatial_dims_ : int
        2 for a model of images, 3 for a model of volumes.
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the torch module.
    history_ : skorch.callbacks.History
        Per-epoch training loss, durations and, with ``early_stopping``, the
        loss and accuracy on the held-out ``validation_fraction`` of the
        training data (``valid_loss``, ``valid_acc``).
    n_epochs_ : int
        Epochs trained (fewer than ``max_epochs`` after early stopping).
    best_epoch_ : int
        The epoch whose weights the model holds: with ``early_stopping``, the
        one of lowest loss on the held-out split; otherwise the last.
    device_ : str
        The resolved device.
    input_mean_, input_std_ : ndarray of shape (channels,)
        Per-channel statistics used to standardise the images (the training
        images' own, or those ``input_normalization`` resolved to).
    input_normalization_ : str
        Where they come from: ``"data"``, ``"imagenet"``, ``"pretrained"``
        (the fitted source model's) or ``"given"``.
    architecture_params_ : dict
        With ``pretrained`` only: the factory's keyword arguments as used,
        ``architecture_params`` and what the checkpoint implies.
    augmentation_ : estimator or None
        The augmentation used in ``fit``: a clone of ``augmentation``, or what
        ``"auto"`` resolved to.
    temperature_ : float
        The temperature dividing the logits: fitted with
        ``calibration="temperature"``, else 1.0.
    tta_ : str or None
        The test-time augmentation chosen in ``fit``: for ``tta="auto"``,
        ``"shifts"`` or None; otherwise ``tta`` itself. Predictions use it
        while ``tta="auto"``; an explicit ``tta`` set after ``fit`` is used
        as given.
    tta_scores_ : dict or None
        With ``tta="auto"`` and a held-out split, what the choice rests on:
        ``"candidate"`` (``"shifts"``), ``"n_samples"`` (held-out samples),
        and the held-out ``"log_loss_with"``, ``"log_loss_without"``,
        ``"accuracy_with"`` and ``"accuracy_without"`` (weighted by
        ``sample_weight``). None otherwise.

    ood_threshold_ : float or None
        The out-of-distribution score above which an image is unlike the
        training images (None when no score was learned); with
        ``ood_location_`` (the class means of the features),
        ``ood_precision_`` (their shared inverse covariance),
        ``ood_false_alarm_rate_`` (the rate it was set for) and
        ``ood_n_held_out_`` (held-out images it was set on; 0 when set on the
        training rows).
    model_card_ : dict
        What :func:`sk_medcnn.model_card` renders and :func:`~sk_medcnn.save_model`
        stores: the training data (samples, class counts, image shape, a
        fingerprint), held-out validation figures with 95% intervals, the
        calibration, the versions, and ``"intended_use"`` and
        ``"limitations"``, which you may edit before saving.

    See Also
    --------
    MedicalCNNRegressor : The same network trained for continuous targets.
    sk_medcnn.list_architectures : Available architectures.

    Notes
    -----
    The network is held by composition: the estimator is a plain scikit-learn
    estimator and skorch is its training engine. Two classes get two output
    units and a softmax, like more classes; ``decision_function`` then returns
    the difference of the two logits.

    Examples
    --------
    >>> from sk_medcnn import MedicalCNNClassifier
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> X, y = make_lesion_phantoms(64, image_size=16, random_state=0)
    >>> clf = MedicalCNNClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:3]).shape
    (3, 2)
    """

    _is_classifier = True

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **_BaseMedicalCNN._parameter_constraints,
        "loss": one_of(("cross_entropy", "focal"), allow=(nn.Module,)),
        "gamma": non_negative_float,
        "class_weight": _class_weight_like,
        "calibration": one_of((None, "temperature")),
        "tta": _classifier_tta_like,
    }

    def __init__(
        self,
        architecture: str | Any = "simple_cnn",
        *,
        architecture_params: dict[str, Any] | None = None,
        pretrained: str | os.PathLike[str] | BaseEstimator | None = None,
        input_normalization: str | tuple[Any, Any] = "auto",
        freeze_epochs: int = 0,
        body_lr_factor: float = 1.0,
        loss: str | nn.Module = "cross_entropy",
        gamma: float = 2.0,
        optimizer: str | type[torch.optim.Optimizer] = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        batch_size: int = 32,
        max_epochs: int = 20,
        lr_schedule: str | None = "cosine",
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        patience: int = 5,
        class_weight: str | dict[Any, float] | None = None,
        augmentation: Any = "auto",
        calibration: str | None = "temperature",
        tta: str | None = "auto",
        ood_false_alarm_rate: float | None = 0.05,
        num_workers: int = 0,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        image_shape: tuple[int, ...] | None = None,
        spatial_dims: int | str = "auto",
        device: str | torch.device = "auto",
        precision: str = "fp32",
        memory_format: str = "contiguous",
        n_threads: int | None = None,
        distributed: bool = False,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.architecture = architecture
        self.architecture_params = architecture_params
        self.pretrained = pretrained
        self.input_normalization = input_normalization
        self.freeze_epochs = freeze_epochs
        self.body_lr_factor = body_lr_factor
        self.loss = loss
        self.gamma = gamma
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr_schedule = lr_schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.class_weight = class_weight
        self.augmentation = augmentation
        self.calibration = calibration
        self.tta = tta
        self.ood_false_alarm_rate = ood_false_alarm_rate
        self.num_workers = num_workers
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.image_shape = image_shape
        self.spatial_dims = spatial_dims
        self.device = device
        self.precision = precision
        self.memory_format = memory_format
        self.n_threads = n_threads
        self.distributed = distributed
        self.random_state = random_state
        self.verbose = verbose

    def _encode_targets(
        self, y: ArrayLike, *, sample_weight: NDArray[np.float64] | None = None
    ) -> tuple[NDArray[Any], dict[str, Any]]:
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        encoder = LabelEncoder()
        y_encoded = encoder.fit_transform(y).astype(np.int64)
        classes = encoder.classes_
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; "
                f"got 1 class ({classes.tolist()[0]!r})."
            )
        return y_encoded, {"classes_": classes, "_n_outputs": len(classes)}

    def _fitted_n_outputs(self) -> int:
        return len(self.classes_)

    def _ood_groups(self, y_encoded: NDArray[Any]) -> NDArray[np.intp]:
        """One group per class: the score is the distance to the nearest class."""
        return np.asarray(y_encoded, dtype=np.intp)

    def _class_weights(
        self,
        y_encoded: NDArray[Any],
        classes: NDArray[Any],
        sample_weight: NDArray[np.float64] | None = None,
    ) -> torch.Tensor | None:
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, dict):
            known = set(classes.tolist())
            unknown = [key for key in self.class_weight if key not in known]
            if unknown:
                raise ValueError(
                    f"class_weight names classes {unknown!r} that are not in y; "
                    f"classes are {classes.tolist()!r}."
                )
            weights = np.array(
                [float(self.class_weight.get(label, 1.0)) for label in classes]
            )
            if not np.all(np.isfinite(weights)) or np.any(weights < 0):
                raise ValueError(
                    f"class_weight values must be finite and >= 0; got "
                    f"{self.class_weight!r}."
                )
        else:
            # "balanced" over the samples that train, weighted as they are; a
            # class seen only in samples of weight 0 has none to balance
            present = np.unique(y_encoded)
            weights = np.zeros(len(classes))
            weights[present] = compute_class_weight(
                "balanced", classes=present, y=y_encoded, sample_weight=sample_weight
            )
        return torch.as_tensor(weights, dtype=torch.float32)

    def _make_criterion(
        self,
        y_encoded: NDArray[Any],
        fitted: dict[str, Any],
        sample_weight: NDArray[np.float64] | None,
    ) -> tuple[type[nn.Module], dict[str, Any]]:
        if isinstance(self.loss, nn.Module):
            return ModuleCriterion, {"loss": copy.deepcopy(self.loss)}
        if sample_weight is not None:
            # The targets are one-hot rows scaled by the loss weights (sample
            # times class weight, see _training_targets); the focal loss of such
            # rows without class weights is the batch mean of the weighted sample
            # losses (at gamma=0 the cross-entropy).
            gamma = self.gamma if self.loss == "focal" else 0.0
            return FocalLoss, {"gamma": gamma, "weight": None}
        weight = self._class_weights(y_encoded, fitted["classes_"], sample_weight)
        if self.loss == "focal":
            return FocalLoss, {"gamma": self.gamma, "weight": weight}
        return nn.CrossEntropyLoss, {"weight": weight}

    def _class_weight_of_rows(
        self,
        y_encoded: NDArray[Any],
        keep: NDArray[np.intp],
        fitted: dict[str, Any],
        sample_weight: NDArray[np.float64],
    ) -> NDArray[np.float64] | float:
        # "balanced" counts the samples as they are weighted
        weight = self._class_weights(
            y_encoded[keep], fitted["classes_"], sample_weight[keep]
        )
        if weight is None:
            return 1.0
        return weight.numpy().astype(np.float64)[y_encoded]

    def _training_targets(
        self,
        y_encoded: NDArray[Any],
        loss_weight: NDArray[np.float64],
        fitted: dict[str, Any],
    ) -> NDArray[np.float32]:
        # one-hot rows scaled by the weights: the losses of probability targets
        # are linear in the targets, and MixUp mixes the weights with the labels
        rows = np.zeros((len(y_encoded), len(fitted["classes_"])), dtype=np.float32)
        rows[np.arange(len(y_encoded)), y_encoded] = loss_weight
        return rows

    def _needs_validation_split(self) -> bool:
        return self.calibration is not None

    def _fit_calibration(
        self,
        images: NDArray[Any],
        y_encoded: NDArray[Any],
        valid_index: NDArray[np.intp] | None,
        sample_weight: NDArray[np.float64] | None = None,
    ) -> None:
        """Fit the temperature and, for ``tta="auto"``, choose the TTA.

        Both on the held-out split only: the rows the network never trained on.
        """
        self.temperature_ = 1.0
        self.tta_ = self.tta
        self.tta_scores_ = None
        auto = isinstance(self.tta, str) and self.tta == "auto"
        if valid_index is None:
            if auto:
                self.tta_ = None
                logger.info(
                    "tta='auto': no held-out split (calibration=None and "
                    "early_stopping=False), so no test-time augmentation"
                )
            return
        if not auto and self.calibration != "temperature":
            return
        weights = None if sample_weight is None else sample_weight[valid_index]
        held_out = y_encoded[valid_index]
        logits = self._raw_outputs(
            images[valid_index],
            checked=True,
            tta=AUTO_TTA_CANDIDATE if auto else self.tta,
        ).astype(np.float64)
        if not auto:
            self.temperature_ = fit_temperature(logits, held_out, weights)
            return
        # identity view first: without TTA is the first slice
        scores = {
            None: _held_out_scores(
                logits[:1], held_out, weights, self.calibration == "temperature"
            ),
            AUTO_TTA_CANDIDATE: _held_out_scores(
                logits, held_out, weights, self.calibration == "temperature"
            ),
        }
        without, with_tta = scores[None], scores[AUTO_TTA_CANDIDATE]
        # kept unless it raises the held-out log-loss (the tolerance absorbs
        # rounding when the views agree, as for a shift-invariant network)
        keep = with_tta["log_loss"] <= without["log_loss"] + _TIE_TOLERANCE
        self.tta_ = AUTO_TTA_CANDIDATE if keep else None
        self.temperature_ = scores[self.tta_]["temperature"]
        self.tta_scores_ = {
            "candidate": AUTO_TTA_CANDIDATE,
            "n_samples": len(valid_index),
            "log_loss_without": without["log_loss"],
            "log_loss_with": with_tta["log_loss"],
            "accuracy_without": without["accuracy"],
            "accuracy_with": with_tta["accuracy"],
        }
        message = (
            "tta='auto': held-out log-loss %.4f with tta=%r, %.4f without "
            "(accuracy %.3f, %.3f; %d samples): %s"
        )
        arguments = (
            with_tta["log_loss"],
            AUTO_TTA_CANDIDATE,
            without["log_loss"],
            with_tta["accuracy"],
            without["accuracy"],
            len(valid_index),
            f"tta_={self.tta_!r}",
        )
        if self.verbose > 0:  # beside skorch's epoch table
            print(message % arguments, flush=True)
        else:
            logger.info(message, *arguments)

    def _scores(self, X: ArrayLike) -> NDArray[np.float64]:
        """Calibrated logits, or log mean probabilities over test-time views."""
        logits = self._raw_outputs(X).astype(np.float64)
        logits /= getattr(self, "temperature_", 1.0)
        if len(logits) == 1:
            return logits[0]
        return log_mean_softmax(logits)

    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]:
        """Scores: the logit difference for two classes, the logits otherwise.

        Logits are divided by ``temperature_``. With ``tta``, the logits are
        replaced by the logarithms of the probabilities averaged over the
        views, so that the scores, ``predict_proba`` and ``predict`` agree.

        Parameters
        ----------
        X : array-like of images
            As in :meth:`fit`, of the fitted image shape.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, positive scores favour ``classes_[1]``.
        """
        scores = self._scores(X)
        if len(self.classes_) == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Class probabilities (softmax of the calibrated logits, mean over ``tta``).

        Parameters
        ----------
        X : array-like of images
            As in :meth:`fit`, of the fitted image shape.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            positive = expit(scores)
            return np.column_stack([1.0 - positive, positive])
        return softmax(scores, axis=1)

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of images
            As in :meth:`fit`, of the fitted image shape.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(np.intp)]
        return self.classes_[np.argmax(scores, axis=1)]


class MedicalCNNRegressor(RegressorMixin, _BaseMedicalCNN):
    """A convolutional network regressor on images with the scikit-learn API.

    The engine of :class:`MedicalCNNClassifier` trained with a regression loss
    for continuous targets (bone age, a severity score, ...). Targets are
    standardised with their training mean and standard deviation inside
    ``fit`` and mapped back in ``predict``, so their unit does not matter.

    Parameters
    ----------
    architecture : str or callable, default="simple_cnn"
        A name from :func:`sk_medcnn.list_architectures` or a factory.
    architecture_params : dict, default=None
        Keyword arguments of the factory.
    pretrained : str, path-like, fitted estimator or None, default=None
        Start from pretrained weights instead of a random initialisation (see
        the user guide, "Pretrained weights"): a state dict in a ``.pth``,
        ``.pt`` or ``.safetensors`` file, in torchvision's or timm's layout
        for the built-in ResNets (or the layout a plugin's weight loader
        declares); or a fitted sk_medcnn model, as a ``.skmed`` file or an
        estimator (a Pipeline's last step), of the same architecture, to
        fine-tune on new data. The first convolution is adapted to the
        images' channels (one channel: the sum of the RGB kernels), the output
        layer is replaced (kept when a fitted source has the same classes),
        and factory parameters the checkpoint implies (the ResNets' ``stem``
        and ``width``) are used where ``architecture_params`` does not set
        them. The file is read in ``fit`` only: a model loaded with
        :func:`sk_medcnn.load_model` holds its weights and never opens it.
        ``clone`` keeps a fitted estimator given here as it is.
    input_normalization : {"auto", "data", "imagenet"} or (mean, std), \
            default="auto"
        How images are standardised before the network: ``"data"`` with the
        per-channel mean and standard deviation of the training images;
        ``"imagenet"`` with ImageNet's (uint8 and uint16 pixels are taken over
        their full range, float images must lie in [0, 1]); a ``(mean, std)``
        pair, per channel or one for all, in the images' units. ``"auto"``
        is what the weights expect: ``"imagenet"`` for ResNet checkpoint
        files, the source model's statistics for a fitted sk_medcnn model,
        ``"data"`` without ``pretrained``.
    freeze_epochs : int, default=0
        Train only the output layer for this many first epochs (the body's
        parameters get no gradient; its batch-normalisation statistics still
        adapt), then everything. Needs an architecture with a weight loader
        (the built-in ones); not with ``distributed=True``.
    body_lr_factor : float, default=1.0
        The body's learning rate is ``lr * body_lr_factor`` (the output layer
        keeps ``lr``; an optimizer parameter group each, so every schedule
        scales both alike). Below 1 fine-tunes pretrained features gently.
    loss : {"mse", "huber"} or torch.nn.Module, default="mse"
        Mean squared error, or the Huber loss (delta 1 on standardised targets).
    optimizer : {"sgd", "adam", "adamw"} or torch.optim.Optimizer subclass, \
            default="adam"
        The optimizer.
    lr : float, default=1e-3
        Learning rate.
    weight_decay : float, default=0.0
        L2 penalty (decoupled for ``"adamw"``).
    momentum : float, default=0.9
        Momentum of ``"sgd"``.
    batch_size : int, default=32
        Training images per batch.
    max_epochs : int, default=10
        Passes over the training data.
    lr_schedule : {None, "cosine", "step", "plateau", "onecycle"}, default=None
        Learning-rate schedule, as in :class:`MedicalCNNClassifier`.
    early_stopping : bool, default=False
        Hold out a random ``validation_fraction``, stop after ``patience``
        epochs without improvement and restore the best weights.
    validation_fraction : float, default=0.1
        Share held out when ``early_stopping=True``.
    patience : int, default=5
        Epochs without improvement before early stopping.
    augmentation : estimator, list, Pipeline, "auto" or None, default=None
        Augmenters applied to each training batch (see the classifier);
        ``"auto"`` stands for
        :func:`~sk_medcnn.augmentation.default_augmentation` (none for images
        smaller than 8 pixels on a side), which was chosen on classification
        tasks.
    tta : str, default=None
        Test-time augmentation of ``predict``, ``predict_proba`` and
        ``decision_function``: None, or ``"+"``-joined tokens from ``"hflip"``,
        ``"vflip"`` and ``"shifts"`` (e.g. ``"hflip+shifts"``). The network
        sees each image and its horizontally and/or vertically flipped copies
        and, with ``"shifts"``, four copies shifted by 5% of the image size
        (border replicated); the outputs are averaged (probabilities for the
        classifier). Deterministic. Use views the task is invariant to.
    ood_false_alarm_rate : float or None, default=0.05
        ``fit`` learns an out-of-distribution score (:meth:`ood_score`: the
        Mahalanobis distance of an image's penultimate features to the
        mean of the training images) and sets its threshold,
        ``ood_threshold_``, on the held-out ``validation_fraction`` (with
        ``early_stopping``) so that this share of images like the training
        ones score above it. The score costs one network pass over the
        training rows in ``fit`` and nothing in ``predict``, which warns
        (:class:`~sk_medcnn.exceptions.OutOfDistributionWarning`) when an
        image scores far above the threshold. Without a held-out split
        (``early_stopping=False``, the default) the threshold is set on the
        training rows and flags more new images than stated. None learns no
        score.
    num_workers : int, default=0
        Processes of the training data loader that read batches in parallel
        (torch's ``DataLoader``); useful when ``X`` is a list of image files,
        which ``fit`` then reads batch by batch instead of all at once. At most
        256.
    checkpoint_dir : str or path-like, default=None
        A folder where ``fit`` saves the training state after every epoch
        (``checkpoint.pt``, written atomically: the last epoch's state, the
        best weights so far and the random generators), so that an
        interrupted fit can continue with ``resume=True``.
    resume : bool, default=False
        Continue the fit saved in ``checkpoint_dir`` (same data and settings)
        up to ``max_epochs`` epochs; the result equals an uninterrupted fit.
        Without a checkpoint there, the fit starts afresh.
    image_shape : tuple of int, default=None
        Image shape of flat ``X``: ``(height, width[, channels])`` or
        ``(depth, height, width[, channels])``.
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` reads it from the shape of
        ``X``, as :class:`MedicalCNNClassifier` documents.
    device : str or torch.device, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    precision : {"fp32", "bf16"}, default="fp32"
        ``"bf16"`` trains and predicts under bfloat16 autocast (convolutions
        and matrix products in bfloat16; weights, optimizer and returned
        scores in float32): faster on CPUs with AVX-512 BF16 or AMX and on
        GPUs from NVIDIA Ampere on (see the benchmarks page for the measured
        effect). Float16 needs loss scaling and is not offered.
    memory_format : {"contiguous", "channels_last"}, default="contiguous"
        Memory layout of the network's weights and activations.
        ``"channels_last"`` is faster for some networks on CPUs (oneDNN) and
        on GPUs with tensor cores; ``"contiguous"`` is torch's usual NCHW.
    n_threads : int or None, default=None
        Torch intra-op threads while fitting and predicting (set with
        :func:`torch.set_num_threads` and restored afterwards), at most 1024.
        None keeps the process's setting, which is right in most cases: joblib's
        process workers (``GridSearchCV(n_jobs=k)``) start with
        ``OMP_NUM_THREADS`` = cores // k unless it is set, and Dask's nanny
        starts workers with 1; torch reads it. The setting belongs to the
        process: estimators that fit at the same time in threads of one
        process must not set it differently.
    distributed : bool, default=False
        Train one model in several processes started by ``torchrun`` (data
        parallel, torch's ``DistributedDataParallel``; gloo on CPUs, NCCL on
        GPUs, each process on the GPU of its ``LOCAL_RANK``). Every process
        runs the same script on the same data with the same ``random_state``
        (rank 0's seeds are used when it is None); each trains on its own
        shard of every epoch with its own augmentation and dropout draws, so
        ``batch_size`` is per process, and the gradients are averaged at every
        step: all processes end with the same model. ``checkpoint_dir`` is not
        supported with it, nor ``lr_schedule="plateau"`` without
        ``early_stopping``.
    random_state : int, RandomState instance or None, default=None
        Seeds everything random in ``fit``.
    verbose : int, default=0
        0 silent; 1 an epoch line as each epoch ends (flushed) and, on a
        terminal, a progress bar of the batches; 2 always the progress bar.

    Attributes
    ----------
    n_features_in_ : int
        Values per image.
    image_shape_ : tuple of int
        ``(height, width, channels)`` of the training images, or ``(depth,
        height, width, channels)`` of training volumes.
    spatial_dims_ : int
        2 for a model of images, 3 for a model of volumes.
    net_ : skorch.NeuralNet
        The trained skorch net.
    history_ : skorch.callbacks.History
        Per-epoch losses and durations.
    n_epochs_ : int
        Epochs trained.
    best_epoch_ : int
        The epoch whose weights the model holds.
    device_ : str
        The resolved device.
    input_mean_, input_std_ : ndarray of shape (channels,)
        Per-channel image statistics (see ``input_normalization``).
    input_normalization_ : str
        ``"data"``, ``"imagenet"``, ``"pretrained"`` or ``"given"``.
    architecture_params_ : dict
        With ``pretrained`` only: the factory's keyword arguments as used.
    target_mean_, target_scale_ : ndarray of shape (n_outputs,)
        Statistics used to standardise the targets.
    augmentation_ : estimator or None
        The augmentation used in ``fit``: a clone of ``augmentation``, or what
        ``"auto"`` resolved to.

    ood_threshold_ : float or None
        The out-of-distribution score above which an image is unlike the
        training images (None when no score was learned); with
        ``ood_location_`` (the mean of the features),
        ``ood_precision_`` (their shared inverse covariance),
        ``ood_false_alarm_rate_`` (the rate it was set for) and
        ``ood_n_held_out_`` (held-out images it was set on; 0 when set on the
        training rows).
    model_card_ : dict
        What :func:`sk_medcnn.model_card` renders and :func:`~sk_medcnn.save_model`
        stores: the training data (samples, class counts, image shape, a
        fingerprint), held-out validation figures with 95% intervals, the
        calibration, the versions, and ``"intended_use"`` and
        ``"limitations"``, which you may edit before saving.

    See Also
    --------
    MedicalCNNClassifier : The classifier on the same engine.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn import MedicalCNNRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((32, 12, 12), dtype=np.float32)
    >>> y = X.mean(axis=(1, 2))
    >>> reg = MedicalCNNRegressor(max_epochs=2, random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **_BaseMedicalCNN._parameter_constraints,
        "loss": one_of(("mse", "huber"), allow=(nn.Module,)),
        "tta": _tta_like,
    }

    def __init__(
        self,
        architecture: str | Any = "simple_cnn",
        *,
        architecture_params: dict[str, Any] | None = None,
        pretrained: str | os.PathLike[str] | BaseEstimator | None = None,
        input_normalization: str | tuple[Any, Any] = "auto",
        freeze_epochs: int = 0,
        body_lr_factor: float = 1.0,
        loss: str | nn.Module = "mse",
        optimizer: str | type[torch.optim.Optimizer] = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        batch_size: int = 32,
        max_epochs: int = 10,
        lr_schedule: str | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        patience: int = 5,
        augmentation: Any = None,
        tta: str | None = None,
        ood_false_alarm_rate: float | None = 0.05,
        num_workers: int = 0,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        image_shape: tuple[int, ...] | None = None,
        spatial_dims: int | str = "auto",
        device: str | torch.device = "auto",
        precision: str = "fp32",
        memory_format: str = "contiguous",
        n_threads: int | None = None,
        distributed: bool = False,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.architecture = architecture
        self.architecture_params = architecture_params
        self.pretrained = pretrained
        self.input_normalization = input_normalization
        self.freeze_epochs = freeze_epochs
        self.body_lr_factor = body_lr_factor
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr_schedule = lr_schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.augmentation = augmentation
        self.tta = tta
        self.ood_false_alarm_rate = ood_false_alarm_rate
        self.num_workers = num_workers
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.image_shape = image_shape
        self.spatial_dims = spatial_dims
        self.device = device
        self.precision = precision
        self.memory_format = memory_format
        self.n_threads = n_threads
        self.distributed = distributed
        self.random_state = random_state
        self.verbose = verbose

    def _encode_targets(
        self, y: ArrayLike, *, sample_weight: NDArray[np.float64] | None = None
    ) -> tuple[NDArray[Any], dict[str, Any]]:
        y = np.asarray(y)
        if y.dtype.kind == "c":
            raise ValueError("y must hold real numbers; got complex values.")
        if y.dtype.kind not in "biuf":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError) as error:
                raise ValueError(
                    f"y must hold numbers for {type(self).__name__}; got dtype "
                    f"{y.dtype}."
                ) from error
        if y.ndim not in (1, 2):
            raise ValueError(
                "y must be (n_samples,) or (n_samples, n_outputs); got shape "
                f"{y.shape}."
            )
        if y.ndim == 2 and y.shape[1] == 0:
            raise ValueError(
                f"y has shape {y.shape}: no target column to learn; "
                f"{type(self).__name__} needs at least one (y of shape (n_samples,) "
                "or (n_samples, n_outputs) with n_outputs >= 1)."
            )
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity.")
        targets = y.reshape(len(y), -1).astype(np.float64)
        # weighted as the samples weigh (rows of weight 0 do not count)
        mean = np.average(targets, axis=0, weights=sample_weight)
        scale = np.sqrt(
            np.average((targets - mean) ** 2, axis=0, weights=sample_weight)
        )
        scale[scale == 0] = 1.0
        standardised = ((targets - mean) / scale).astype(np.float32)
        fitted = {
            "target_mean_": mean,
            "target_scale_": scale,
            "_y_ndim": y.ndim,
            "_n_outputs": targets.shape[1],
        }
        return standardised, fitted

    def _fitted_n_outputs(self) -> int:
        return len(np.atleast_1d(self.target_mean_))

    def _make_criterion(
        self,
        y_encoded: NDArray[Any],
        fitted: dict[str, Any],
        sample_weight: NDArray[np.float64] | None,
    ) -> tuple[type[nn.Module], dict[str, Any]]:
        if isinstance(self.loss, nn.Module):
            return ModuleCriterion, {"loss": copy.deepcopy(self.loss)}
        if sample_weight is not None:
            return WeightedRegressionLoss, {"loss": self.loss}
        if self.loss == "huber":
            return nn.HuberLoss, {}
        return nn.MSELoss, {}

    def _training_targets(
        self,
        y_encoded: NDArray[Any],
        loss_weight: NDArray[np.float64],
        fitted: dict[str, Any],
    ) -> NDArray[np.float32]:
        # the weight rides along as a last column (see WeightedRegressionLoss)
        column = loss_weight.astype(np.float32)[:, None]
        return np.concatenate([y_encoded, column], axis=1)

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Predicted targets.

        Parameters
        ----------
        X : array-like of images
            As in :meth:`fit`, of the fitted image shape.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            In the unit of the training targets.
        """
        outputs = self._raw_outputs(X).astype(np.float64).mean(axis=0)
        predictions = outputs * self.target_scale_ + self.target_mean_
        if self._y_ndim == 1:
            return predictions[:, 0]
        return predictions

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        return tags
