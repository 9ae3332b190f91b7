"""Export a fitted model to ONNX, to run without PyTorch (e.g. with onnxruntime).

The exported graph takes what the estimator's ``predict_proba`` (or the
regressor's ``predict``) takes, float32 images ``(n, height, width,
channels)``, and returns what it returns without test-time augmentation: the
class probabilities (the network's logits divided by the fitted temperature,
then softmax) or the predictions in the unit of the targets. The input
standardisation is inside the graph, and so are the Pipeline steps that have
an exact ONNX form (:class:`~sk_medcnn.preprocessing.IntensityWindow`,
:class:`~sk_medcnn.preprocessing.CenterCrop`,
:class:`~sk_medcnn.preprocessing.IntensityNormalizer` with ``"zscore"`` or
``"minmax"``); any other step is refused with its name.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._version import __version__
from .estimators._base import _BaseMedicalCNN
from .preprocessing import CenterCrop, IntensityNormalizer, IntensityWindow
from .utils._files import atomic_path, check_output_path

__all__ = ["ONNX_INPUT", "ONNX_OUTPUT", "export_onnx"]

ONNX_INPUT = "images"
"""Name of the exported graph's input: float32 ``(n, height, width, channels)``."""

ONNX_OUTPUT = "output"
"""Name of its output: probabilities ``(n, n_classes)`` or predictions."""

_EPS32 = float(np.finfo(np.float32).eps)


class _Window(nn.Module):
    def __init__(self, step: IntensityWindow) -> None:
        super().__init__()
        level, width = step._window()
        self.low = float(level - width / 2)
        self.width = float(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp((x - self.low) / self.width, 0.0, 1.0)


class _Crop(nn.Module):
    def __init__(self, step: CenterCrop, shape: tuple[int, ...]) -> None:
        super().__init__()
        from .utils._arrays import size_pair

        height, width = size_pair(step.shape)
        self.top = (shape[0] - height) // 2
        self.left = (shape[1] - width) // 2
        self.height, self.width = height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[
            :, self.top : self.top + self.height, self.left : self.left + self.width
        ]


class _Normalizer(nn.Module):
    """IntensityNormalizer's "zscore" and "minmax", per image or fitted."""

    low: torch.Tensor
    inverse: torch.Tensor

    def __init__(self, step: IntensityNormalizer) -> None:
        super().__init__()
        self.method = step.method
        self.per_image = bool(step.per_image)
        if not self.per_image:
            if self.method == "zscore":
                low, scale = step.mean_, step.scale_
            else:
                low, scale = step.low_, np.asarray(step.high_) - np.asarray(step.low_)
            scale = np.where(np.asarray(scale) == 0, 1.0, scale)
            self.register_buffer("low", _channels(low))
            self.register_buffer("inverse", _channels(1.0 / scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.per_image:
            return (x - self.low) * self.inverse
        if self.method == "zscore":
            mean = x.mean(dim=(1, 2), keepdim=True)
            centred = x - mean
            scale = torch.sqrt((centred * centred).mean(dim=(1, 2), keepdim=True))
            flat = scale <= 10 * _EPS32 * torch.abs(mean)
            scale = torch.where(flat, torch.ones_like(scale), scale)
            return centred / scale
        low = torch.amin(x, dim=(1, 2), keepdim=True)
        span = torch.amax(x, dim=(1, 2), keepdim=True) - low
        empty = span == 0
        scaled = (x - low) / torch.where(empty, torch.ones_like(span), span)
        return torch.clamp(torch.where(empty, torch.zeros_like(x), scaled), 0.0, 1.0)


def _channels(values: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32)).reshape(1, 1, 1, -1)


class _Exported(nn.Module):
    """Preprocessing, standardisation, network and output head, for export."""

    mean: torch.Tensor
    std: torch.Tensor
    target_scale: torch.Tensor
    target_mean: torch.Tensor

    def __init__(self, steps: list[nn.Module], estimator: _BaseMedicalCNN) -> None:
        super().__init__()
        import copy

        network = estimator.net_.module_
        self.steps = nn.ModuleList(steps)
        self.body = copy.deepcopy(network.body).float().eval()
        self.register_buffer("mean", network.mean.detach().clone().float())
        self.register_buffer("std", network.std.detach().clone().float())
        self.classifier = hasattr(estimator, "classes_")
        if self.classifier:
            self.temperature = float(getattr(estimator, "temperature_", 1.0))
        else:
            self.register_buffer(
                "target_scale", torch.as_tensor(estimator.target_scale_).float()
            )
            self.register_buffer(
                "target_mean", torch.as_tensor(estimator.target_mean_).float()
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        for step in self.steps:
            x = step(x)
        x = (x.movedim(-1, 1) - self.mean) / self.std
        outputs = self.body(x)
        if self.classifier:
            return torch.softmax(outputs / self.temperature, dim=1)
        return outputs * self.target_scale + self.target_mean


def _split_model(model: Any) -> tuple[list[Any], _BaseMedicalCNN]:
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps]
        final = steps.pop()
    else:
        steps, final = [], model
    if not isinstance(final, _BaseMedicalCNN):
        raise TypeError(
            "model must be a fitted MedicalCNNClassifier or MedicalCNNRegressor, or "
            f"a Pipeline ending in one; got {type(final).__name__}."
        )
    check_is_fitted(final, "net_")
    return steps, final


def _input_shape(steps: list[Any], final: _BaseMedicalCNN) -> tuple[int, ...]:
    """Return the shape of the images the graph takes (the first step's input)."""
    for step in steps:
        shape = getattr(step, "image_shape_", None)
        if shape is not None:
            return tuple(int(size) for size in shape)  # type: ignore[return-value]
    return tuple(int(size) for size in final.image_shape_)  # type: ignore[return-value]


def _step_modules(
    model: Any, steps: list[Any], shape: tuple[int, ...]
) -> list[nn.Module]:
    modules: list[nn.Module] = []
    names = [name for name, _ in model.steps[:-1]] if steps else []
    for name, step in zip(names, steps, strict=True):
        if step is None or step == "passthrough":
            continue
        if isinstance(step, IntensityWindow):
            modules.append(_Window(step))
        elif isinstance(step, CenterCrop):
            modules.append(_Crop(step, shape))
            shape = (*_crop_size(step), *shape[2:])
        elif isinstance(step, IntensityNormalizer) and step.method in (
            "zscore",
            "minmax",
        ):
            modules.append(_Normalizer(step))
        else:
            raise ValueError(
                f"step {name!r} ({type(step).__name__}) cannot be exported: ONNX "
                "export includes IntensityWindow, CenterCrop and IntensityNormalizer"
                "('zscore' or 'minmax') steps only. Apply the other steps before "
                "the exported model (e.g. export model[-1] and run model[:-1] "
                "in Python), or leave them out of the Pipeline."
            )
    return modules


def _crop_size(step: CenterCrop) -> tuple[int, int]:
    from .utils._arrays import size_pair

    return size_pair(step.shape)


def export_onnx(
    model: Any,
    path: str | os.PathLike[str],
    *,
    opset_version: int | None = None,
) -> Path:
    """Write a fitted model as an ONNX graph, to run without PyTorch.

    The graph computes ``predict_proba`` (classifier) or ``predict``
    (regressor) without test-time augmentation, from float32 images of shape
    ``(n, height, width, channels)`` with any ``n``: the Pipeline's exportable
    steps, the input standardisation, the network, and the temperature and
    softmax. The model's properties (``metadata_props``) hold ``classes``
    (JSON), ``image_shape``, ``spatial_dims``, ``estimator``, ``output``,
    ``temperature``, the ``sk_medcnn`` and ``torch`` versions and
    ``model_card`` (:func:`~sk_medcnn.model_card`, Markdown).

    Parameters
    ----------
    model : MedicalCNNClassifier, MedicalCNNRegressor or Pipeline
        Fitted; a Pipeline's steps before the estimator must be
        :class:`~sk_medcnn.preprocessing.IntensityWindow`,
        :class:`~sk_medcnn.preprocessing.CenterCrop`,
        :class:`~sk_medcnn.preprocessing.IntensityNormalizer` (``"zscore"``
        or ``"minmax"``) or ``"passthrough"``.
    path : str or path-like
        The ``.onnx`` file to write (atomically: a failure leaves no file).
    opset_version : int, optional
        The ONNX opset; torch's default when None.

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    ImportError
        If ``onnx`` or ``onnxscript`` is not installed
        (``pip install "sk-medcnn[onnx]"``).
    TypeError
        If ``model`` is not a fitted sk_medcnn estimator or a Pipeline ending
        in one.
    ValueError
        If a Pipeline step cannot be exported (the message names it), or
        ``opset_version`` is not None or an int >= 7.

    Examples
    --------
    >>> import numpy as np, onnxruntime
    >>> from sk_medcnn import MedicalCNNClassifier, export_onnx
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> X, y = make_lesion_phantoms(64, image_size=16, random_state=0)
    >>> clf = MedicalCNNClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> path = export_onnx(clf, "lesions.onnx")  # doctest: +SKIP
    >>> session = onnxruntime.InferenceSession(path)  # doctest: +SKIP
    >>> images = X[:4, :, :, None].astype(np.float32)
    >>> session.run(None, {"images": images})[0].shape  # doctest: +SKIP
    (4, 2)
    """
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError as error:
        raise ImportError(
            'export_onnx needs onnx and onnxscript: pip install "sk-medcnn[onnx]"'
        ) from error
    if opset_version is not None and (
        isinstance(opset_version, bool)
        or not isinstance(opset_version, int)
        or opset_version < 7
    ):
        raise ValueError(
            f"opset_version must be None or an int >= 7; got {opset_version!r}."
        )
    steps, final = _split_model(model)
    path = Path(path)
    check_output_path(path)  # before any work; the error names the path
    shape = _input_shape(steps, final)
    wrapper = _Exported(_step_modules(model, steps, shape), final).eval()
    example = torch.zeros((2, *shape), dtype=torch.float32)
    batch = torch.export.Dim("batch", min=1)
    # torch's exporter prints its progress and logs about absent torchvision ops
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with (
            torch.no_grad(),
            contextlib.redirect_stdout(io.StringIO()),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(
                wrapper,
                (example,),
                input_names=[ONNX_INPUT],
                output_names=[ONNX_OUTPUT],
                dynamic_shapes={"images": {0: batch}},
                opset_version=opset_version,
                dynamo=True,
                verbose=False,
            )
    finally:
        quiet.setLevel(level)
    assert program is not None  # torch.onnx.export returns it when dynamo=True
    proto = program.model_proto
    classes = getattr(final, "classes_", None)
    metadata = {
        "classes": json.dumps(None if classes is None else classes.tolist()),
        "image_shape": json.dumps(list(shape)),
        "spatial_dims": "2",
        "estimator": type(final).__name__,
        "architecture": str(final.architecture),
        "output": "probabilities" if classes is not None else "predictions",
        "temperature": repr(float(getattr(final, "temperature_", 1.0))),
        "sk_medcnn_version": __version__,
        "torch_version": str(torch.__version__),
    }
    if isinstance(getattr(final, "model_card_", None), dict):
        from ._card import model_card

        metadata["model_card"] = model_card(final)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "sk_medcnn"
    proto.producer_version = __version__
    with atomic_path(path) as partial:
        onnx.save_model(proto, str(partial))
    return Path(path)
