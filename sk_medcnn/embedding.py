"""A CNN as a scikit-learn transformer: images in, embeddings out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._ood import feature_layer
from .estimators._base import _BaseMedicalCNN
from .estimators._network import inference_batch_size
from .estimators._params import architecture_like, device_like, normalization_like
from .pretrained import load_weights, read_weights, resolve_input_statistics
from .registry import get_architecture, get_weight_loader
from .utils._inference import embed_raw
from .utils._network import ImageNetwork
from .utils._runtime import draw_seeds, resolve_device, seeded_torch, torch_threads
from .utils._validation import (
    check_feature_names,
    check_images,
    check_params,
    image_shape_like,
    optional,
    optional_dict,
    positive_int,
    random_state_like,
)

__all__ = ["ImageEmbedder"]


def _model_like(value: Any, name: str) -> None:
    if value is None or isinstance(value, BaseEstimator):
        return
    raise TypeError(
        f"{name} must be None or a fitted sk_medcnn estimator (or a Pipeline "
        f"ending in one); got {type(value).__name__}."
    )


def _optional_architecture(value: Any, name: str) -> None:
    if value is not None:
        architecture_like(value, name)


def _optional_weights_file(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str | Path):
        raise TypeError(
            f"{name} must be None or a weights file (.pth, .pt, .safetensors); "
            f"got {type(value).__name__}."
        )


def _optional_layer(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"{name} must be None (the input of the output layer) or the name of "
            f"a module of the network, such as 'layer3'; got {value!r}."
        )


def _unwrap(model: Any) -> Any:
    """Return a FrozenEstimator's estimator, and anything else as it is."""
    if isinstance(model, FrozenEstimator):
        return model.estimator
    return model


class ImageEmbedder(TransformerMixin, BaseEstimator):
    """Turn images into CNN features: a fitted network's or a pretrained backbone's.

    ``transform`` returns, for each image, the features the network computes
    just before its output layer (the globally pooled activations of a
    ResNet, the hidden layer of ``simple_cnn``), or the globally averaged
    output of another ``layer``. Fit a linear model or any other scikit-learn
    estimator on them: ``make_pipeline(ImageEmbedder(model),
    LogisticRegression())``.

    Two sources:

    - ``ImageEmbedder(model)``: a fitted :class:`MedicalCNNClassifier` or
      :class:`MedicalCNNRegressor`, or a Pipeline ending in one (its earlier
      steps transform the images first). ``fit`` trains nothing; the model
      is used as it is, and ``clone`` keeps it fitted (as scikit-learn's
      ``FrozenEstimator`` would, which is accepted too).
    - ``ImageEmbedder(architecture="resnet18", pretrained=PATH)``: a backbone
      from the registry with weights from a checkpoint file (see the
      estimators' ``pretrained``). ``fit`` only records the image shape and
      the input normalisation; without ``pretrained`` the backbone keeps its
      random initialisation (seeded by ``random_state``): a baseline.

    Inference runs as the estimators' ``predict`` does: batches, eval mode,
    ``torch.inference_mode()``, the channels-last layout on the CPU.

    Parameters
    ----------
    model : estimator, default=None
        A fitted sk_medcnn estimator or a Pipeline ending in one.
    architecture : str or callable, default=None
        A registry name or a factory, when ``model`` is None.
    pretrained : str or path-like, default=None
        A weights file for ``architecture`` (``.pth``, ``.pt`` or
        ``.safetensors``; ``.skmed`` models go through ``model``, e.g.
        ``ImageEmbedder(sk_medcnn.load_model(path))``).
    architecture_params : dict, default=None
        Keyword arguments of the factory; a checkpoint's implied ones (the
        ResNets' ``stem``, ``width``) fill the rest.
    layer : str, default=None
        The module whose output is the embedding, by its name in the network
        (``"layer3"``, ``"features.6"``); 4-D outputs are averaged over height
        and width. None takes the input of the output layer (the architecture's
        weight loader names it; else its last ``torch.nn.Linear``).
    input_normalization : {"auto", "data", "imagenet"} or (mean, std), \
            default="auto"
        For ``architecture``: as in the estimators (``"auto"`` is
        ``"imagenet"`` for ResNet checkpoints and ``"data"`` without
        ``pretrained``). A ``model`` keeps its own.
    image_shape : tuple of int, default=None
        Image shape of flat ``X`` of shape ``(n_samples, n_pixels)``.
    batch_size : int, default=None
        Images per inference batch; None picks it from the image size, as the
        estimators do.
    device : str or torch.device, default="auto"
        For ``architecture``; a ``model`` runs where it was fitted.
    n_threads : int, default=None
        Torch intra-op threads while transforming (None keeps the process's).
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation of weights not in ``pretrained`` (all of them
        without it; the output layer, unused, otherwise).

    Attributes
    ----------
    n_features_in_ : int
        Values per input image.
    image_shape_ : tuple of int
        ``(height, width, channels)`` of the images the network takes.
    n_embedding_ : int
        Features per image (the number of output columns).
    input_normalization_ : str
        For ``architecture``: ``"data"``, ``"imagenet"`` or ``"given"``.
    network_ : torch.nn.Module
        For ``architecture``: the network (an input adapter holding the
        normalisation, around the backbone).

    See Also
    --------
    MedicalCNNClassifier : Trains the networks a ``model`` embedder uses.

    Notes
    -----
    Linear probes on frozen features are the usual way to reuse a network on a
    small data set (Doerrich et al., "Rethinking model prototyping through the
    MedMNIST+ dataset collection", Scientific Reports 15, 2025). This is
    skorch's long-standing request #482 (a fitted net as a transformer).

    Examples
    --------
    >>> from sk_medcnn import ImageEmbedder
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> X, y = make_lesion_phantoms(16, image_size=16, random_state=0)
    >>> embedder = ImageEmbedder(architecture="resnet18", random_state=0,
    ...                          architecture_params={"width": 8}).fit(X)
    >>> embedder.transform(X).shape
    (16, 64)
    >>> embedder.get_feature_names_out()[:2]
    array(['embedding0', 'embedding1'], dtype=object)
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "model": _model_like,
        "architecture": _optional_architecture,
        "pretrained": _optional_weights_file,
        "architecture_params": optional_dict,
        "layer": _optional_layer,
        "input_normalization": normalization_like,
        "image_shape": image_shape_like,
        "batch_size": optional(positive_int),
        "device": device_like,
        "n_threads": optional(positive_int),
        "random_state": random_state_like,
    }

    def __init__(
        self,
        model: Any = None,
        *,
        architecture: str | Any = None,
        pretrained: str | Path | None = None,
        architecture_params: dict[str, Any] | None = None,
        layer: str | None = None,
        input_normalization: str | tuple[Any, Any] = "auto",
        image_shape: tuple[int, ...] | None = None,
        batch_size: int | None = None,
        device: str | torch.device = "auto",
        n_threads: int | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.model = model
        self.architecture = architecture
        self.pretrained = pretrained
        self.architecture_params = architecture_params
        self.layer = layer
        self.input_normalization = input_normalization
        self.image_shape = image_shape
        self.batch_size = batch_size
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    def __sklearn_clone__(self) -> ImageEmbedder:
        # the model is used, never trained: a clone shares it, fitted
        if self.model is None:
            return super().__sklearn_clone__()  # type: ignore[no-any-return]
        params = {
            name: value if name == "model" else clone(value, safe=False)
            for name, value in self.get_params(deep=False).items()
        }
        return type(self)(**params)

    # --- fit --------------------------------------------------------------------
    def fit(self, X: ArrayLike, y: Any = None) -> ImageEmbedder:
        """Record the image shape and prepare the network; nothing is trained.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width), \
                (n_samples, height, width, channels) or (n_samples, n_pixels)
            Images (for ``architecture``: their shape, and their statistics
            for ``input_normalization="data"``).
        y : None
            Ignored.

        Returns
        -------
        self : ImageEmbedder
        """
        check_params(self)
        for name in list(vars(self)):
            if name.endswith("_") and not name.startswith("__"):
                delattr(self, name)
        if self.model is not None:
            self._fit_model()
        else:
            self._fit_backbone(X)
        return self

    def _network(self) -> tuple[Any, _BaseMedicalCNN]:
        """Return the preprocessing steps (or None) and the fitted estimator."""
        model = _unwrap(self.model)
        steps = None
        if hasattr(model, "steps"):
            steps = model[:-1] if len(model.steps) > 1 else None
            model = _unwrap(model.steps[-1][1])
        if not isinstance(model, _BaseMedicalCNN):
            raise TypeError(
                "model must be a fitted MedicalCNNClassifier or MedicalCNNRegressor, "
                f"or a Pipeline ending in one; got {type(model).__name__}."
            )
        check_is_fitted(model, "net_")
        return steps, model

    def _fit_model(self) -> None:
        unused = [
            name
            for name in ("architecture", "pretrained", "architecture_params")
            if getattr(self, name) is not None
        ]
        if unused:
            raise ValueError(
                f"{', '.join(unused)} describe a backbone; with model given, the "
                "model's network is used. Set them to None, or model=None."
            )
        _, network = self._network()
        body = network.net_.module_.body
        architecture = network.architecture
        target, capture = self._target(body, architecture)
        self.image_shape_ = tuple(network.image_shape_)
        self.n_features_in_ = int(
            getattr(self.model, "n_features_in_", network.n_features_in_)
        )
        self.n_embedding_ = self._probe(network.net_.module_, target, capture)

    def _fit_backbone(self, X: ArrayLike) -> None:
        if self.architecture is None:
            raise ValueError(
                "ImageEmbedder needs a fitted model, or an architecture (and "
                "usually pretrained weights for it)."
            )
        check_feature_names(self, X, reset=True)
        images = check_images(
            X, image_shape=self.image_shape, estimator_name=type(self).__name__
        )
        height, width, channels = (int(size) for size in images.shape[1:])
        name = (
            self.architecture
            if isinstance(self.architecture, str)
            else getattr(self.architecture, "__name__", repr(self.architecture))
        )
        factory = (
            get_architecture(self.architecture)
            if isinstance(self.architecture, str)
            else self.architecture
        )
        params = dict(self.architecture_params or {})
        state = loader = None
        default: str = "data"
        if self.pretrained is not None:
            if not isinstance(self.architecture, str):
                raise ValueError(
                    "pretrained needs a registered architecture name (its weight "
                    "loader maps the checkpoint onto the network)."
                )
            if Path(self.pretrained).suffix.lower() == ".skmed":
                raise ValueError(
                    "pretrained is a .skmed model file: pass the model instead, "
                    "ImageEmbedder(sk_medcnn.load_model(path))."
                )
            loader = get_weight_loader(self.architecture)
            state = read_weights(self.pretrained)
            if loader.architecture_params is not None:
                implied = loader.architecture_params(loader.map_keys(state))
                params = {**implied, **params}
            default = loader.normalization or "data"
        device = resolve_device(self.device)
        seed = draw_seeds(self.random_state, 1)[0]
        with seeded_torch(seed, torch.device("cpu")):
            body = factory(channels, 1, (height, width), **params)
        if not isinstance(body, nn.Module):
            raise TypeError(
                f"architecture {name!r} returned {type(body).__name__}, not a "
                "torch.nn.Module."
            )
        if state is not None and loader is not None:
            load_weights(
                body,
                state,
                loader,
                source=f"the file {str(self.pretrained)!r}",
                architecture=str(name),
            )
        mean, std, normalization = resolve_input_statistics(
            self.input_normalization, images, None, default=default
        )
        network = ImageNetwork(body, mean, std).to(device)
        network.eval()
        if device.type == "cpu":
            network.to_inference_layout()
        target, capture = self._target(body, name)
        self.image_shape_ = (height, width, channels)
        self.n_features_in_ = height * width * channels
        self.input_normalization_ = normalization
        self.network_ = network
        self.n_embedding_ = self._probe(network, target, capture)

    def _target(self, body: nn.Module, architecture: Any) -> tuple[nn.Module, str]:
        """Find the module whose input or output is the embedding."""
        return feature_layer(body, architecture, self.layer)

    def _probe(self, network: nn.Module, target: nn.Module, capture: str) -> int:
        device = next(iter(network.parameters()), torch.zeros(0)).device
        blank = np.zeros((1, *self.image_shape_), dtype=np.float32)
        features = embed_raw(
            network,
            blank,
            target=target,
            capture=capture,
            device=device,
            batch_size=1,
        )
        return int(features.shape[1])

    # --- transform --------------------------------------------------------------
    def transform(self, X: ArrayLike) -> NDArray[np.float32]:
        """Embed images.

        Parameters
        ----------
        X : array-like of images
            As for ``fit``: for a ``model``, what the model's ``predict`` takes.

        Returns
        -------
        embedding : ndarray of shape (n_samples, n_embedding), dtype float32
        """
        check_is_fitted(self, "n_embedding_")
        if self.model is not None:
            steps, network = self._network()
            if steps is not None:
                X = steps.transform(X)
            images = network._check_predict_images(X)
            module = network.net_.module_
            target, capture = self._target(module.body, network.architecture)
            device = torch.device(network.net_.device)
            batch_size = self.batch_size or inference_batch_size(
                network.batch_size, network.image_shape_
            )
            n_threads = self.n_threads or getattr(network, "n_threads", None)
        else:
            check_feature_names(self, X, reset=False)
            images = check_images(
                X,
                image_shape=self.image_shape_,
                estimator_name=type(self).__name__,
                expected_n_features=self.n_features_in_,
            )
            if tuple(images.shape[1:]) != self.image_shape_:
                raise ValueError(
                    f"X holds images of shape {tuple(images.shape[1:])}, but "
                    f"ImageEmbedder was fitted on images of shape "
                    f"{self.image_shape_} (height, width, channels)."
                )
            module = self.network_
            target, capture = self._target(module.body, self.architecture)
            device = next(iter(module.parameters())).device
            batch_size = self.batch_size or inference_batch_size(1, self.image_shape_)
            n_threads = self.n_threads
        with torch_threads(n_threads):
            return embed_raw(
                module,
                images,
                target=target,
                capture=capture,
                device=device,
                batch_size=batch_size,
            )

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[Any]:
        """Name the embedding's columns ``embedding0``, ``embedding1``, ...

        Parameters
        ----------
        input_features : None
            Ignored (the columns do not derive from input features one by one).

        Returns
        -------
        names : ndarray of str objects, shape (n_embedding,)
        """
        check_is_fitted(self, "n_embedding_")
        return np.asarray(
            [f"embedding{index}" for index in range(self.n_embedding_)], dtype=object
        )

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
