"""Model files: save and load them, and ask what the loaded model reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._common import CommandError, _describe_missing, _warn

MODEL_SUFFIXES = (".skmed", ".joblib", ".pkl", ".pickle")


def _check_model_suffix(path: Path) -> None:
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise CommandError(
            f"{path}: a model file name must end in {', '.join(MODEL_SUFFIXES)} "
            "(.skmed is the safe format; the others are joblib pickles)"
        )


def save_any_model(model: Any, path: Path) -> None:
    """Save ``model`` in the format its file name asks for, atomically.

    Parameters
    ----------
    model : estimator
        A fitted sk_medcnn estimator or Pipeline.
    path : pathlib.Path
        ``.skmed`` for the safe format (:func:`sk_medcnn.save_model`), or
        ``.joblib``/``.pkl`` for a joblib pickle.
    """
    _check_model_suffix(path)
    if path.suffix.lower() == ".skmed":
        from ..persistence import save_model

        save_model(model, path)
        return
    import joblib

    from ..utils._files import atomic_path

    with atomic_path(path) as tmp:
        joblib.dump(model, tmp)


def load_any_model(path_text: str, *, device: str = "cpu") -> Any:
    """Load a model saved by :func:`save_any_model`.

    Parameters
    ----------
    path_text : str
        The model file.
    device : str, default="cpu"
        Where the network runs.

    Returns
    -------
    model : estimator
    """
    path = Path(path_text)
    if path.is_dir():
        raise CommandError(f"{path_text}: a folder, not a model file")
    if not path.is_file():
        problem = _describe_missing(path)
        if problem.endswith("no such file or folder"):
            problem = f"{path_text}: no such model file"
        raise CommandError(problem)
    _check_model_suffix(path)
    if path.suffix.lower() == ".skmed":
        from ..persistence import load_model

        return load_model(path, device=device)
    import joblib

    _warn(
        f"{path_text} is a pickle: loading it runs code from the file; load only "
        "files you trust (the .skmed format runs none)"
    )
    import zipfile

    if zipfile.is_zipfile(path):
        raise CommandError(
            f"{path_text}: a zip archive, not a joblib pickle; a model written by "
            "save_model is a .skmed file: rename it to end in .skmed"
        )
    try:
        model = joblib.load(path)
    except Exception as error:  # a damaged or foreign pickle fails in many ways
        raise CommandError(
            f"{path_text}: not a readable joblib model "
            f"({type(error).__name__}: {error})"
        ) from error
    if not hasattr(_final_estimator(model), "image_shape_"):
        raise CommandError(
            f"{path_text}: holds a {type(model).__name__}, not a fitted sk_medcnn "
            "model (an estimator, or a Pipeline ending in one)"
        )
    return model


def _final_estimator(model: Any) -> Any:
    return model.steps[-1][1] if hasattr(model, "steps") else model


def _reads_paths(model: Any) -> bool:
    from ..io import ImageLoader

    return hasattr(model, "steps") and isinstance(model.steps[0][1], ImageLoader)


def _takes_volumes(model: Any) -> bool:
    """Whether the model's network takes volumes (CT or MRI stacks)."""
    return len(getattr(_final_estimator(model), "image_shape_", ())) == 4
