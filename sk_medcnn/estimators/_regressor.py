"""The regressor: a CNN trained on images for continuous targets."""

from __future__ import annotations

import copy
import os
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, RegressorMixin
from torch import nn

from .._engine import (
    ModuleCriterion,
)
from ..utils._validation import (
    one_of,
)
from ._base import _BaseMedicalCNN
from ._params import tta_like


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
        Keyword arguments of the factory, over the defaults for the data
        (``simple_cnn`` on volumes: ``{"global_pool": "max"}``).
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
    lr_schedule : {None, "auto", "cosine", "step", "plateau", "onecycle"}, \
            default=None
        Learning-rate schedule, as in :class:`MedicalCNNClassifier`
        (``"auto"`` is ``"cosine"`` here: a regressor has no class weights).
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
    memory_format : {"auto", "contiguous", "channels_last"}, default="auto"
        The training layout (``memory_format_``; CPU prediction is
        channels-last anyway). ``"auto"``: channels-last on the CPU for
        networks made only of layers scanned safe in it (``simple_cnn``; for
        volumes in fp32 only), NCHW otherwise (GPUs, ``distributed``,
        ResNets, plugins): some of torch 2.13's channels-last CPU kernels
        corrupt memory or compute wrong values (the training guide).
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
    memory_format_ : {"contiguous", "channels_last"}
        The layout the network trained in (``memory_format`` resolved).
    lr_schedule_ : str or None
        The learning-rate schedule ``fit`` trained with (``"auto"``
        resolved).
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
        The factory's keyword arguments as used: ``architecture_params`` over
        what a ``pretrained`` checkpoint implies or, without one, over the
        defaults for the data (``simple_cnn`` on volumes:
        ``{"global_pool": "max"}``).
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
        "tta": tta_like,
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
        memory_format: str = "auto",
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
        # with sample weights the net weighs each sample's loss (ImageNet.get_loss)
        params = {} if sample_weight is None else {"reduction": "none"}
        if self.loss == "huber":
            return nn.HuberLoss, params
        return nn.MSELoss, params

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
