"""``sk-medcnn explain``: an overlay of an explanation map per image."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._common import (
    EXIT_OK,
    CommandError,
    UsageError,
    _check_device,
    _check_output,
    _count,
)
from ._data import _collect_files, _images_for
from ._models import _final_estimator, _reads_paths, _takes_volumes, load_any_model
from ._reports import _file_stem

#: the explanation methods of ``explain --method``, and their names in figures
METHOD_NAMES = {
    "hires_cam": "HiResCAM",
    "grad_cam": "Grad-CAM",
    "gradient": "gradient",
    "smoothgrad": "SmoothGrad",
    "integrated_gradients": "integrated gradients",
}


def _class_label(classes: NDArray[Any], text: str) -> Any:
    """Return the label of ``classes`` written ``text`` on the command line."""
    for label in classes.tolist():
        if str(label) == text:
            return label
    raise UsageError(
        f"--target {text}: not a class of the model; its classes are "
        f"{', '.join(str(label) for label in classes.tolist())}"
    )


def command_explain(args: argparse.Namespace) -> int:
    """Write explanation-map overlays of image files (``sk-medcnn explain``)."""
    from ..inspection import (
        grad_cam,
        plot_overlay,
        plot_volume_overlay,
        saliency_map,
    )
    from ..utils._files import atomic_path

    out_dir = _check_output("--output", args.output, folder=True)
    _check_device(args.device)
    model = load_any_model(args.model, device=args.device)
    if not hasattr(_final_estimator(model), "classes_"):
        raise CommandError(f"{args.model}: not a classifier")
    classes = _final_estimator(model).classes_
    target = None if args.target is None else _class_label(classes, args.target)
    paths = _collect_files(args.inputs, volumes=_takes_volumes(model))
    X, paths = _images_for(model, paths, on_error=args.on_error)
    if not paths:
        raise CommandError("no image could be read (every file was skipped)")
    images = X
    if _reads_paths(model):
        images = model.steps[0][1].transform(X)
    if args.method in ("grad_cam", "hires_cam"):
        maps = grad_cam(model, X, target=target, variant=args.method)
    else:
        maps = saliency_map(model, X, target=target, method=args.method, random_state=0)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    proba = model.predict_proba(X)
    best = np.argmax(proba, axis=1)
    explained = (
        best if target is None else np.full(len(best), classes.tolist().index(target))
    )
    blank = maps.reshape(len(maps), -1).max(axis=1) <= 0
    name = METHOD_NAMES[args.method]
    out_dir.mkdir(parents=True, exist_ok=True)  # only now: a failure leaves none
    written = []
    for index, path in enumerate(paths):
        title = (
            f"{Path(path).name}\npredicted {classes[best[index]]} "
            f"(P = {proba[index, best[index]]:.3f})"
        )
        if maps.ndim == 4:  # a volume: three orthogonal slices through the peak
            figure, axes = plt.subplots(1, 3, figsize=(10, 3.6), layout="constrained")
            plot_volume_overlay(np.asarray(images[index]), maps[index], axes=axes)
            figure.suptitle(title, fontsize=9)
            axis = axes
        else:
            figure, axis = plt.subplots(figsize=(4.6, 4))
            plot_overlay(np.asarray(images[index]), maps[index], ax=axis)
            axis.set_title(title, fontsize=9)
        colour_bar = figure.colorbar(
            ScalarMappable(Normalize(0, 1), cmap="jet"), ax=axis, fraction=0.046
        )
        colour_bar.set_label(f"{name}: evidence for {classes[explained[index]]}")
        target_file = out_dir / f"{index:04d}_{_file_stem(path)}_{args.method}.png"
        with atomic_path(target_file) as tmp:
            figure.savefig(tmp, dpi=100, bbox_inches="tight")
        plt.close(figure)
        written.append(target_file)
    print(f"Wrote {_count(len(written), name + ' overlay')} to {out_dir}")
    if blank.any():
        print(
            f"{_count(int(blank.sum()), 'map')} with no positive evidence for the "
            "explained class (drawn as such, not as a heat map): "
            + ", ".join(Path(paths[i]).name for i in np.flatnonzero(blank))
        )
    return EXIT_OK
