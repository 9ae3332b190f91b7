"""The scikit-learn shell the classifier and the regressor share.

``fit`` reads as its steps: check the images (:mod:`._input`), the sample
weights (:mod:`._weights`) and the targets (each estimator's
``_encode_targets``), set up the runtime, split off the held-out rows, build
the network (:mod:`._network`, :mod:`._pretrained`), the augmentation and the
training net (:mod:`sk_medcnn._engine`), train, and store what was learned:
the fitted attributes, the calibration (:mod:`._calibration`) and the
out-of-distribution score (:mod:`._ood`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_consistent_length
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .. import _distributed
from .._card import describe_fit
from .._engine import (
    LR_SCHEDULES,
    resolve_lr_schedule,
    train_net,
)
from .._ood import feature_layer
from ..pretrained import load_weights
from ..utils._batches import ArrayDataset
from ..utils._image_source import ImageSource
from ..utils._inference import predict_raw_with_features, tta_views
from ..utils._network import MEMORY_FORMATS, PRECISIONS
from ..utils._runtime import resolve_device, torch_threads, warn_cpu_fallback
from ..utils._validation import (
    boolean,
    check_params,
    image_shape_like,
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
    spatial_dims_like,
)
from . import _input, _network, _ood, _pretrained, _setup, _weights
from ._layout import resolve_memory_format
from ._network import axes, inference_batch_size, kind
from ._params import (
    MAX_THREADS,
    MAX_WORKERS,
    architecture_like,
    augmentation_like,
    device_like,
    normalization_like,
    optimizer_like,
    path_like,
    pretrained_like,
)


class _BaseMedicalCNN(BaseEstimator):
    """Shared fit / predict machinery; not part of the public API."""

    _is_classifier = False

    #: the parameters both estimators take; each adds its own (``loss``, ``tta``, ...)
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "architecture": architecture_like,
        "architecture_params": optional_dict,
        "pretrained": pretrained_like,
        "input_normalization": normalization_like,
        "freeze_epochs": non_negative_int,
        "body_lr_factor": positive_float,
        "optimizer": optimizer_like,
        "lr": positive_float,
        "weight_decay": non_negative_float,
        "momentum": non_negative_float,
        "batch_size": positive_int,
        "max_epochs": positive_int,
        "lr_schedule": one_of(LR_SCHEDULES),
        "early_stopping": boolean,
        "validation_fraction": open_fraction,
        "patience": positive_int,
        "augmentation": augmentation_like,
        "ood_false_alarm_rate": optional(open_fraction),
        "num_workers": int_in_range(0, MAX_WORKERS),
        "checkpoint_dir": path_like,
        "resume": boolean,
        "image_shape": image_shape_like,
        "spatial_dims": spatial_dims_like,
        "device": device_like,
        "precision": one_of(PRECISIONS),
        "memory_format": one_of(("auto", *MEMORY_FORMATS)),
        "n_threads": optional(int_in_range(1, MAX_THREADS)),
        "distributed": boolean,
        "random_state": random_state_like,
        "verbose": non_negative_int,
    }

    # --- hooks the classifier and the regressor provide -----------------------
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

    def _class_weight_of_rows(
        self,
        y_encoded: NDArray[Any],
        keep: NDArray[np.intp],
        fitted: dict[str, Any],
        sample_weight: NDArray[np.float64],
    ) -> NDArray[np.float64] | float:
        """Return the class weight of every row (1.0 without class weights)."""
        return 1.0

    def _fitted_n_outputs(self) -> int:
        """Return the number of network outputs of a fitted estimator."""
        raise NotImplementedError

    def _needs_validation_split(self) -> bool:
        """Whether anything besides early stopping needs the held-out split."""
        return False

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
        self._check_fit_options()
        data = self._fit_data(X, y, sample_weight)
        device = self._fit_device()
        seeds = _setup.draw_fit_seeds(self)
        train_index, valid_index = _setup.held_out_split(
            self, data.y_encoded[data.keep], seeds.split
        )
        train_index = data.keep[train_index]  # positions among the kept rows -> rows
        if valid_index is not None:
            valid_index = data.keep[valid_index]
        source = _pretrained.pretrained_source(self, data.fitted, data.n_outputs)
        mean, std, normalization = _pretrained.input_statistics(
            self, data.images, train_index, source
        )
        params = _network.fit_architecture_params(
            self, data.spatial_dims, None if source is None else source.params
        )
        body = self._fit_body(data, seeds.init, device, params, source)
        layout = resolve_memory_format(
            self.memory_format,
            body,
            device,
            spatial_dims=data.spatial_dims,
            precision=self.precision,
            distributed=self.distributed,
        )
        augmentation = _setup.resolve_augmentation(
            self, data.image_shape, data.n_outputs, seeds, device
        )
        net, train_dataset, resume_state = _setup.build_training_net(
            self,
            data,
            body,
            (mean, std),
            augmentation,
            device,
            seeds.loader,
            (train_index, valid_index),
            layout,
        )
        best_epoch, interrupted = self._train(
            net, train_dataset, seeds.train, device, resume_state
        )
        for name, value in data.fitted.items():
            setattr(self, name, value)
        self.image_shape_ = data.image_shape
        self.spatial_dims_ = data.spatial_dims
        self.n_features_in_ = math.prod(data.image_shape)
        self.device_ = str(device)
        self.input_mean_, self.input_std_ = mean, std
        self.memory_format_ = layout
        self.input_normalization_ = normalization
        self.architecture_params_ = params  # with the defaults and the checkpoint's
        self.augmentation_ = augmentation.pipeline
        self.net_ = net
        self.history_ = net.history
        self.n_epochs_ = len(net.history)
        self.best_epoch_ = best_epoch
        self._validation_index = valid_index
        images, y_encoded = data.images, data.y_encoded
        self._fit_calibration(images, y_encoded, valid_index, data.weights)
        _ood.fit_ood(self, images, y_encoded, train_index, valid_index, seeds.split)
        self.model_card_ = describe_fit(
            self, images, y_encoded, train_index, valid_index
        )
        if interrupted:
            self._raise_interrupted()
        return self

    def _check_fit_options(self) -> None:
        """Refuse combinations of parameters that cannot train together."""
        if not self.distributed:
            return
        if self.freeze_epochs:
            raise ValueError(
                "freeze_epochs is not supported with distributed=True "
                "(DistributedDataParallel cannot change which parameters train); "
                "use body_lr_factor, or train in one process."
            )
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

    def _fit_data(
        self, X: ArrayLike, y: ArrayLike | None, sample_weight: ArrayLike | None
    ) -> _setup.FitData:
        """Check the images, the sample weights and the targets of ``fit``."""
        name = type(self).__name__
        images, y = _input.fit_images(self, X, y)
        n_samples = images.shape[0]
        check_consistent_length(images, y)
        if n_samples < 2:
            raise ValueError(
                f"{name} needs at least 2 samples to train; got "
                f"{n_samples} sample (n_samples = 1)."
            )
        weights, keep = _weights.check_sample_weight(self, sample_weight, n_samples)
        row_weight = weights  # what the target statistics weigh each row by
        if weights is None and not np.array_equal(keep, np.arange(n_samples)):
            row_weight = np.bincount(keep, minlength=n_samples).astype(np.float64)
        y_encoded, fitted = self._encode_targets(y, sample_weight=row_weight)
        fitted["lr_schedule_"] = resolve_lr_schedule(
            self.lr_schedule, fitted.get("class_weight_")
        )
        data = _setup.FitData(
            images, y_encoded, fitted, fitted.pop("_n_outputs"), weights, keep
        )
        image_shape, spatial_dims = data.image_shape, data.spatial_dims
        if self.spatial_dims in (2, 3) and spatial_dims != self.spatial_dims:
            raise ValueError(
                f"spatial_dims={self.spatial_dims}, but X holds "
                f"{kind(spatial_dims)} of shape {image_shape} "
                f"({axes(spatial_dims)})."
            )
        if 0 in image_shape:
            raise ValueError(
                f"X holds empty {kind(spatial_dims)} of shape {image_shape} "
                f"({axes(spatial_dims)}); every size must be >= 1."
            )
        _network.check_training_memory(self, image_shape, data.n_outputs, len(keep))
        return data

    def _fit_device(self) -> torch.device:
        """Resolve ``device``; join the process group with ``distributed``."""
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
            device = _distributed.init_distributed(device, type(self).__name__)
        return device

    def _fit_body(
        self,
        data: _setup.FitData,
        seed: int,
        device: torch.device,
        params: dict[str, Any],
        source: _pretrained.PretrainedSource | None,
    ) -> nn.Module:
        """Build the network for the data; load ``pretrained`` weights into it."""
        body = _network.build_body(
            self, data.image_shape, data.n_outputs, seed, device, params=params
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
        return body

    def _train(
        self,
        net: Any,
        train_dataset: ArrayDataset,
        seed: int,
        device: torch.device,
        resume_state: dict[str, Any] | None,
    ) -> tuple[int, bool]:
        """Train ``net``; return the best epoch and whether it was interrupted."""
        try:
            return train_net(
                net,
                train_dataset,
                seed=seed,
                device=device,
                resume_state=resume_state,
                distributed=self.distributed,
            )
        except Exception as error:
            if self.distributed and hasattr(error, "add_note"):  # Python >= 3.11
                rank, world_size = _distributed.rank_and_world_size()
                error.add_note(
                    f"{type(self).__name__}(distributed=True): raised on rank "
                    f"{rank} of {world_size}."
                )
            raise

    def _raise_interrupted(self) -> None:
        """Say that ``fit`` stopped early, with the estimator fitted so far."""
        raise KeyboardInterrupt(
            f"{type(self).__name__}.fit was interrupted after {self.n_epochs_} "
            f"epoch(s); the estimator is fitted with the weights of epoch "
            f"{self.best_epoch_} and can predict"
            + (
                f"; fit again with resume=True to continue from "
                f"{self.checkpoint_dir!r}."
                if self.checkpoint_dir is not None
                else "."
            )
        )

    # --- the network ----------------------------------------------------------
    def _factory(self) -> tuple[Any, str]:
        """Return the architecture factory and its name for messages."""
        return _network.architecture_factory(self.architecture)

    def _fitted_architecture_params(self) -> dict[str, Any]:
        """Return the factory's keyword arguments of the fit."""
        return _network.fitted_architecture_params(self)

    def _restore_net(
        self,
        module_state: Mapping[str, torch.Tensor],
        *,
        device: str | torch.device = "cpu",
        history: list[dict[str, Any]] | None = None,
    ) -> None:
        """Rebuild ``net_`` for inference (see :func:`._network.restore_net`)."""
        _network.restore_net(self, module_state, device=device, history=history)

    def __sklearn_clone__(self) -> _BaseMedicalCNN:
        # a fitted estimator given as pretrained stays fitted: it is read only
        if not isinstance(self.pretrained, BaseEstimator):
            return super().__sklearn_clone__()  # type: ignore[no-any-return]
        params = {
            name: value if name == "pretrained" else clone(value, safe=False)
            for name, value in self.get_params(deep=False).items()
        }
        return type(self)(**params)

    # --- the out-of-distribution score ----------------------------------------
    def _has_ood_score(self) -> bool:
        return _ood.has_ood_score(self)

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
        return _ood.penultimate_features(
            self, images, capture, reduce=functools.partial(_ood.mahalanobis, self)
        )

    # --- predict --------------------------------------------------------------
    def _check_predict_images(self, X: Any) -> ImageSource:
        """Check images to predict against the fitted shape and scale."""
        return _input.check_predict_images(self, X)

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
                batch_size=inference_batch_size(self.batch_size, self.image_shape_),
                views=tta_views(tta or None, self.image_shape_),
                capture=capture,
                reduce=functools.partial(_ood.mahalanobis, self),
            )
        if score is not None and len(score):
            _ood.warn_if_out_of_distribution(self, score)
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
            # and before class_weight="auto": trained with class_weight as given
            state.setdefault("class_weight_", state.get("class_weight"))
        if "net_" in state:  # fitted before lr_schedule="auto"
            state.setdefault("lr_schedule_", state.get("lr_schedule"))
        self.__dict__.update(state)
        net = state.get("net_")
        if net is not None and str(net.device) != state.get("device_"):
            warn_cpu_fallback(state.get("device_", "?"))
            self.device_ = str(net.device)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
