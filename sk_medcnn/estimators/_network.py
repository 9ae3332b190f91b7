"""Build, probe, size and restore the network an estimator trains."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from skorch.history import History
from torch import nn

from .._engine import build_inference_net
from ..architectures import build_simple_cnn
from ..registry import (
    check_architecture_dims,
    get_architecture,
    get_weight_loader,
)
from ..utils._memory import check_memory, training_memory, worth_estimating
from ..utils._runtime import resolve_device, seeded_torch

if TYPE_CHECKING:
    from ._base import _BaseMedicalCNN


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


def run_probe(body: nn.Module, probe: torch.Tensor) -> Any:
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


def kind(spatial_dims: int) -> str:
    return "volumes" if spatial_dims == 3 else "images"


def axes(spatial_dims: int) -> str:
    if spatial_dims == 3:
        return "depth, height, width, channels"
    return "height, width, channels"


def inference_batch_size(batch_size: int, image_shape: tuple[int, ...]) -> int:
    """Images per inference batch: at least the training batch size."""
    pixels = max(1, math.prod(image_shape[:-1]))
    return max(
        batch_size, min(_INFERENCE_BATCH_SIZE, _INFERENCE_BATCH_PIXELS // pixels)
    )


def default_architecture_params(
    architecture: str | Any, spatial_dims: int
) -> dict[str, Any]:
    """Return the factory arguments the estimators use unless told otherwise.

    ``{"global_pool": "max"}`` for the reference CNN (``"simple_cnn"``) on
    volumes: its head then takes each channel's global maximum instead of a
    weight per voxel. On VesselMNIST3D it scored a higher cross-validated AUC
    (user guide, "Volumes"). Nothing for images, where the reference CNN stays
    the Keras model, and for every other architecture. ``architecture_params``
    and a checkpoint's implied parameters override these.

    Examples
    --------
    >>> default_architecture_params("simple_cnn", 3)
    {'global_pool': 'max'}
    >>> default_architecture_params("simple_cnn", 2)
    {}
    """
    factory, _ = architecture_factory(architecture)
    if spatial_dims == 3 and factory is build_simple_cnn:
        return {"global_pool": "max"}
    return {}


def fit_architecture_params(
    estimator: _BaseMedicalCNN,
    spatial_dims: int,
    implied: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the factory's keyword arguments for a fit.

    ``architecture_params`` over what a ``pretrained`` checkpoint implies
    (``implied``) or, without one, over :func:`default_architecture_params`:
    a checkpoint's network is what it was trained as, not today's defaults.
    """
    params = (
        dict(implied)
        if implied is not None
        else default_architecture_params(estimator.architecture, spatial_dims)
    )
    params.update(estimator.architecture_params or {})
    return params


def fitted_architecture_params(estimator: _BaseMedicalCNN) -> dict[str, Any]:
    """Return the factory's keyword arguments of the fit.

    Models fitted before ``architecture_params_`` existed used
    ``architecture_params`` as they are.
    """
    fitted = getattr(estimator, "architecture_params_", None)
    if fitted is not None:
        return dict(fitted)
    return dict(estimator.architecture_params or {})


def fitted_memory_format(estimator: _BaseMedicalCNN) -> str:
    """Return the layout the network trained in: contiguous or channels-last.

    ``memory_format_``; models fitted before ``memory_format="auto"`` existed
    lack it and trained in the layout their parameter named.
    """
    layout = str(getattr(estimator, "memory_format_", estimator.memory_format))
    return "contiguous" if layout == "auto" else layout


def training_head(estimator: _BaseMedicalCNN) -> tuple[str, ...] | None:
    """Return the output-layer modules, if the training options need them.

    ``freeze_epochs`` and ``body_lr_factor`` do; None when neither is set.
    """
    if estimator.freeze_epochs == 0 and estimator.body_lr_factor == 1.0:
        return None
    if not isinstance(estimator.architecture, str):
        raise ValueError(
            "freeze_epochs and body_lr_factor need to know the output layer: "
            "use a registered architecture name with a weight loader (see "
            "sk_medcnn.register_weight_loader), not a factory callable."
        )
    return get_weight_loader(estimator.architecture).head


def architecture_factory(architecture: str | Any) -> tuple[Any, str]:
    """Return the factory ``architecture`` names (or is) and its name for messages."""
    if isinstance(architecture, str):
        return get_architecture(architecture), architecture
    return architecture, getattr(architecture, "__name__", repr(architecture))


def check_training_memory(
    estimator: _BaseMedicalCNN,
    image_shape: tuple[int, ...],
    n_outputs: int,
    n_samples: int,
) -> None:
    """Refuse, before any work, a fit whose training step cannot fit in memory.

    See :func:`sk_medcnn.utils._memory.training_memory` for the estimate.
    """
    factory, name = architecture_factory(estimator.architecture)
    batch_size = max(1, min(int(estimator.batch_size), n_samples))
    if not worth_estimating(batch_size * math.prod(image_shape) * 4):
        return  # small images: not worth building the network on meta
    need = training_memory(
        factory,
        # before a checkpoint is read: the defaults (a head's size is small
        # next to the activations the estimate is about)
        fit_architecture_params(estimator, len(image_shape) - 1),
        image_shape,
        n_outputs,
        batch_size,
    )
    if need is not None:
        size = "x".join(str(side) for side in image_shape[:-1])
        unit = "voxels" if len(image_shape) == 4 else "pixels"
        check_memory(
            need,
            f"Training architecture {name!r} on X of {kind(len(image_shape) - 1)} "
            f"of {size} {unit} x {image_shape[-1]} channels with "
            f"batch_size={batch_size}",
            "Resize the images (sk_medcnn.preprocessing.Resize, or image_shape "
            "for image files) or lower batch_size.",
        )


def build_body(
    estimator: _BaseMedicalCNN,
    image_shape: tuple[int, ...],
    n_outputs: int,
    seed: int,
    device: torch.device,
    *,
    params: dict[str, Any] | None = None,
) -> nn.Module:
    factory, name = architecture_factory(estimator.architecture)
    *spatial, channels = image_shape
    check_architecture_dims(factory, len(spatial))
    if params is None:
        params = dict(estimator.architecture_params or {})
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
            output = run_probe(body, probe)
    except RuntimeError as error:
        if "allocat" in str(error):  # torch's CPU and CUDA out-of-memory
            raise ValueError(
                f"{kind(len(spatial))} of shape {image_shape} need more memory "
                f"than is free for one image through architecture {name!r}: "
                f"{error}"
            ) from error
        raise ValueError(
            f"{kind(len(spatial))} of shape {image_shape} do not fit architecture "
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


def restore_net(
    estimator: _BaseMedicalCNN,
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
    body = build_body(
        estimator,
        estimator.image_shape_,
        estimator._fitted_n_outputs(),
        0,
        resolved,
        params=fitted_architecture_params(estimator),
    )
    net = build_inference_net(
        module_params={
            "body": body,
            "mean": estimator.input_mean_,
            "std": estimator.input_std_,
            "precision": estimator.precision,
            "memory_format": fitted_memory_format(estimator),
            "spatial_dims": len(estimator.image_shape_) - 1,
        },
        criterion=nn.CrossEntropyLoss if estimator._is_classifier else nn.MSELoss,
        batch_size=inference_batch_size(estimator.batch_size, estimator.image_shape_),
        device=resolved,
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
            f"the saved weights do not fit architecture {estimator.architecture!r}: "
            f"wrong dtype for {', '.join(wrong_dtype[:5])}"
        )
    try:
        net.module_.load_state_dict(dict(module_state), strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"the saved weights do not fit architecture {estimator.architecture!r}: "
            f"{error}"
        ) from error
    net.module_.eval()
    if resolved.type == "cpu":
        net.module_.to_inference_layout()
    if history is not None:
        net.history = History(history)
    estimator.net_ = net
    estimator.history_ = net.history
    estimator.device_ = str(resolved)
