"""The classifier: a CNN trained on images, with the scikit-learn API."""

from __future__ import annotations

import copy
import logging
import os
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import column_or_1d
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from torch import nn

from .._engine import (
    ModuleCriterion,
    resolve_lr_schedule,
)
from ..losses import FocalLoss
from ..utils._validation import (
    non_negative_float,
    one_of,
)
from ._base import _BaseMedicalCNN
from ._calibration import (
    _TIE_TOLERANCE,
    AUTO_TTA_CANDIDATE,
    fit_temperature,
    held_out_scores,
    log_mean_softmax,
)
from ._params import class_weight_like, classifier_tta_like

logger = logging.getLogger(__name__)

#: ``class_weight="auto"`` balances two classes when the rarer has less than
#: this share of the training samples.
AUTO_CLASS_WEIGHT_SHARE = 0.2


def resolve_class_weight(
    class_weight: str | dict[Any, float] | None,
    y_encoded: NDArray[Any],
    n_classes: int,
    sample_weight: NDArray[np.float64] | None = None,
) -> str | dict[Any, float] | None:
    """Return the class weights a classifier trains with: ``"auto"`` resolved.

    Parameters
    ----------
    class_weight : {"auto", None, "balanced"} or dict
        The classifier's ``class_weight``.
    y_encoded : ndarray of shape (n_samples,)
        Class indices of the training samples, in ``range(n_classes)``.
    n_classes : int
        Number of classes.
    sample_weight : ndarray of shape (n_samples,), default=None
        The samples' weights: samples of weight 0 are not counted. The others
        count once each, so that weights given to favour a class do not
        decide (``"balanced"`` itself then weighs the classes as they are
        weighted).

    Returns
    -------
    class_weight : {None, "balanced"} or dict
        ``class_weight`` itself unless it is ``"auto"``; then ``"balanced"``
        for two classes of which the rarer has less than
        :data:`AUTO_CLASS_WEIGHT_SHARE` of the samples, else None.

    Examples
    --------
    >>> import numpy as np
    >>> resolve_class_weight("auto", np.array([0] * 9 + [1]), 2)
    'balanced'
    >>> print(resolve_class_weight("auto", np.array([0] * 7 + [1] * 3), 2))
    None
    """
    if not (isinstance(class_weight, str) and class_weight == "auto"):
        return class_weight
    if n_classes != 2:
        return None
    share = _rarest_share(y_encoded, n_classes, sample_weight)
    return "balanced" if share < AUTO_CLASS_WEIGHT_SHARE else None


def _rarest_share(
    y_encoded: NDArray[Any],
    n_classes: int,
    sample_weight: NDArray[np.float64] | None,
) -> float:
    """Return the rarest class's share of the samples of positive weight.

    Classes without such samples do not count (they do not train); with fewer
    than two left the share is 1.
    """
    counted = y_encoded if sample_weight is None else y_encoded[sample_weight > 0]
    counts = np.bincount(counted, minlength=n_classes)
    present = counts[counts > 0]
    if len(present) < 2:
        return 1.0
    return float(present.min() / present.sum())


class MedicalCNNClassifier(ClassifierMixin, _BaseMedicalCNN):
    """A convolutional network image classifier with the scikit-learn API.

    ``fit`` builds the network from the architecture registry and trains it
    with skorch: mini-batches, the chosen optimizer, learning-rate schedule and
    loss, optional early stopping with best-weight restore, and optional
    on-the-fly augmentation of every training batch. Images are standardised
    with per-channel statistics learned in ``fit`` (kept in the network, so the
    same scaling applies at predict time).

    The defaults (Adam at 1e-3, batches of 32, 20 epochs of cosine annealing
    without early stopping and without class weights, but for two classes of
    which the rarer has under 20% of the samples balanced class weights with a
    one-cycle warm-up, a temperature fitted on 10% of the training data
    held out, predictions averaged over the image and four copies shifted by
    5% of its size where that held-out split shows it helps) were chosen by
    5-fold cross-validation on PneumoniaMNIST over 3 seeds (the class weights
    for a rare class on VesselMNIST3D's validation split); the default
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
        Keyword arguments of the factory, e.g. ``{"dropout": 0.3}``. They
        override the defaults for the data: ``simple_cnn`` on volumes pools
        its last feature maps globally (``{"global_pool": "max"}``; pass
        ``{"global_pool": None}`` for the Keras model's flattened head).
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
        and gets no class weights (``class_weight_`` is None).
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
        Momentum of ``"sgd"``; ignored by the other optimizers. The one-cycle
        schedule cycles it between 0.95 and 0.85 (unless it is 0).
    batch_size : int, default=32
        Training images per batch.
    max_epochs : int, default=20
        Passes over the training data.
    lr_schedule : {"auto", None, "cosine", "step", "plateau", "onecycle"}, \
            default="auto"
        Learning-rate schedule. ``"auto"`` is ``"onecycle"`` where the loss is
        class-weighted (``class_weight_`` not None) and ``"cosine"``
        otherwise: class weights multiply the rare class's gradients, and
        without a warm-up a class-weighted fit on VesselMNIST3D stalled at the
        loss of constant predictions; the choice is ``lr_schedule_``. The
        others: cosine annealing over ``max_epochs``; a step
        decay by 10 every third of the epochs; a decay by 10 when the monitored
        loss stops improving for ``patience // 2`` epochs (validation loss with
        early stopping, else training loss: a split held out for
        ``calibration`` only stays out of training decisions); or the
        one-cycle policy (a warm-up from ``lr / 25`` over the first 30% of
        the steps, then annealing; as torch's ``OneCycleLR`` it also cycles
        SGD's ``momentum`` or Adam's first beta between 0.95 and 0.85, where
        the optimizer has one).
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the training data,
        stop when its loss has not improved for ``patience`` epochs, and
        restore the weights of the best epoch.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping and for
        ``calibration`` (never trained on).
    patience : int, default=5
        Epochs without improvement before early stopping.
    class_weight : {"auto", None, "balanced"} or dict, default="auto"
        Weights of the classes in the loss: ``"balanced"`` uses
        ``n_samples / (n_classes * count)``; a dict maps class labels to
        weights (missing classes weigh 1); None weighs every sample alike.
        ``"auto"`` is ``"balanced"`` for two classes of which the rarer has
        less than 20% of the training samples (those of positive
        ``sample_weight``, counted once each), and None otherwise: a rare
        finding then counts as much as the rest in the loss, so that the
        network learns it rather than the prior, and ``predict`` favours
        balanced accuracy over plain accuracy; ``lr_schedule="auto"`` then
        warms up. User guide, "Defaults under acquisition shifts": on 300
        VesselMNIST3D volumes (11% aneurysms; validation split, six seeds)
        validation AUC 0.873 against 0.777 unweighted, balanced accuracy 0.80
        against 0.53, accuracy 0.87 against 0.89. The choice is
        ``class_weight_``.
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
    memory_format_ : {"contiguous", "channels_last"}
        The layout the network trained in (``memory_format`` resolved).
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
        The factory's keyword arguments as used: ``architecture_params`` over
        what a ``pretrained`` checkpoint implies or, without one, over the
        defaults for the data (``simple_cnn`` on volumes:
        ``{"global_pool": "max"}``).
    augmentation_ : estimator or None
        The augmentation used in ``fit``: a clone of ``augmentation``, or what
        ``"auto"`` resolved to.
    temperature_ : float
        The temperature dividing the logits: fitted with
        ``calibration="temperature"``, else 1.0.
    class_weight_ : {None, "balanced"} or dict
        The class weights ``fit`` trained with: what ``"auto"`` resolved to,
        otherwise ``class_weight`` itself.
    lr_schedule_ : str or None
        The learning-rate schedule ``fit`` trained with: what ``"auto"``
        resolved to, otherwise ``lr_schedule`` itself.
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
        "class_weight": class_weight_like,
        "calibration": one_of((None, "temperature")),
        "tta": classifier_tta_like,
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
        lr_schedule: str | None = "auto",
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        patience: int = 5,
        class_weight: str | dict[Any, float] | None = "auto",
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
        auto = isinstance(self.class_weight, str) and self.class_weight == "auto"
        module_loss = isinstance(self.loss, nn.Module)
        class_weight = (
            None  # a loss module gets no class weights, given or "auto"
            if module_loss
            else resolve_class_weight(
                self.class_weight, y_encoded, len(classes), sample_weight
            )
        )
        if auto:
            message = (
                "class_weight='auto' (balanced for two classes when the rarer has "
                f"under {AUTO_CLASS_WEIGHT_SHARE:.0%}% of the samples; none with a "
                "loss module): %d classes with samples, the rarest with %.1f%% of "
                "them: %s"
            )
            chosen = f"class_weight_={class_weight!r}"
            if self.lr_schedule == "auto":
                schedule = resolve_lr_schedule(self.lr_schedule, class_weight)
                chosen += f", lr_schedule_={schedule!r}"
            counted = y_encoded
            if sample_weight is not None:
                counted = y_encoded[sample_weight > 0]
            arguments = (
                len(np.unique(counted)),
                100 * _rarest_share(y_encoded, len(classes), sample_weight),
                chosen,
            )
            if self.verbose > 0:
                print(message % arguments, flush=True)
            else:
                logger.info(message, *arguments)
        return y_encoded, {
            "classes_": classes,
            "_n_outputs": len(classes),
            "class_weight_": class_weight,
        }

    def _fitted_n_outputs(self) -> int:
        return len(self.classes_)

    def _ood_groups(self, y_encoded: NDArray[Any]) -> NDArray[np.intp]:
        """One group per class: the score is the distance to the nearest class."""
        return np.asarray(y_encoded, dtype=np.intp)

    def _class_weights(
        self,
        y_encoded: NDArray[Any],
        fitted: dict[str, Any],
        sample_weight: NDArray[np.float64] | None = None,
    ) -> torch.Tensor | None:
        classes = fitted["classes_"]
        class_weight = fitted["class_weight_"]  # "auto" resolved
        if class_weight is None:
            return None
        if isinstance(class_weight, dict):
            known = set(classes.tolist())
            unknown = [key for key in class_weight if key not in known]
            if unknown:
                raise ValueError(
                    f"class_weight names classes {unknown!r} that are not in y; "
                    f"classes are {classes.tolist()!r}."
                )
            weights = np.array(
                [float(class_weight.get(label, 1.0)) for label in classes]
            )
            if not np.all(np.isfinite(weights)) or np.any(weights < 0):
                raise ValueError(
                    f"class_weight values must be finite and >= 0; got "
                    f"{class_weight!r}."
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
            # The net weighs each sample's loss (sample times class weight, see
            # ImageNet.get_loss): the focal loss per sample, at gamma=0 the
            # cross-entropy.
            gamma = self.gamma if self.loss == "focal" else 0.0
            return FocalLoss, {"gamma": gamma, "weight": None, "reduction": "none"}
        weight = self._class_weights(y_encoded, fitted, sample_weight)
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
        weight = self._class_weights(y_encoded[keep], fitted, sample_weight[keep])
        if weight is None:
            return 1.0
        return weight.numpy().astype(np.float64)[y_encoded]

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
            None: held_out_scores(
                logits[:1], held_out, weights, self.calibration == "temperature"
            ),
            AUTO_TTA_CANDIDATE: held_out_scores(
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

    def predict_log_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Logarithms of the class probabilities, computed without underflow.

        The log-softmax of the scores :meth:`predict_proba` exponentiates, so
        a probability that rounds to 0 still has a finite logarithm.

        Parameters
        ----------
        X : array-like of images
            As in :meth:`fit`, of the fitted image shape.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return log_softmax(self._scores(X), axis=1)

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
