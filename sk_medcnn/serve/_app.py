"""An HTTP service for a saved model: JSON predictions, HiResCAM overlays, a page.

Built on Starlette (ASGI) and served by uvicorn, both in the ``serve`` extra.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import tempfile
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .._card import model_card
from .._version import __version__
from ..exceptions import ImageReadError, ModelFileError, OutOfDistributionWarning
from ..io import SUPPORTED_EXTENSIONS

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "DEFAULT_TIMEOUT", "create_app"]

DEFAULT_MAX_UPLOAD_BYTES = 32 * 2**20
"""The largest upload accepted, in bytes (32 MiB: a CT series slice is far less)."""

DEFAULT_TIMEOUT = 60.0
"""Seconds a request may take before the service answers 503."""

logger = logging.getLogger(__name__)

#: A RAM-backed folder for the uploaded file while it is read (removed after).
_MEMORY_FOLDER = "/dev/shm"


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _suffix(filename: str) -> str:
    """Return the upload's extension if the readers know it ('.nii.gz' too)."""
    name = filename.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    suffix = Path(name).suffix
    return suffix if suffix in SUPPORTED_EXTENSIONS else ""


async def _read_upload(request: Request, limit: int) -> tuple[str, bytes]:
    """Return ``(filename, content)`` of the multipart field ``file``, in memory.

    The body is read up to ``limit`` bytes (413 beyond) and parsed here, so
    that no part is spooled to a temporary file.
    """
    from multipart.multipart import MultipartParser, parse_options_header

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _HTTPError(413, f"the upload is larger than {limit} bytes")
    content_type, options = parse_options_header(
        request.headers.get("content-type", "")
    )
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise _HTTPError(
            400, "send the image as multipart/form-data with a field named 'file'"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _HTTPError(413, f"the upload is larger than {limit} bytes")
    parts: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        current.clear()
        current.update(headers={}, data=bytearray())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        current["headers"][bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current["data"].extend(data[start:end])

    def on_part_end() -> None:
        parts.append(dict(current))

    parser = MultipartParser(
        options[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(bytes(body))
        parser.finalize()
    except Exception as error:  # python-multipart's MultipartParseError and kin
        raise _HTTPError(400, f"the multipart body cannot be parsed: {error}") from None
    for part in parts:
        _, disposition = parse_options_header(
            part["headers"].get(b"content-disposition", b"")
        )
        if disposition.get(b"name") == b"file":
            filename = disposition.get(b"filename", b"").decode("utf-8", "replace")
            if not part["data"]:
                raise _HTTPError(400, "the field 'file' is empty")
            return filename, bytes(part["data"])
    raise _HTTPError(400, "the form has no field named 'file'")


class _Service:
    """The loaded model and what answering needs; one prediction at a time."""

    def __init__(self, model_path: Path, device: str) -> None:
        from ..persistence import load_model

        self.model = load_model(model_path, device=device)
        final = self.model.steps[-1][1] if hasattr(self.model, "steps") else self.model
        if not hasattr(final, "classes_"):
            raise ModelFileError(f"{model_path}: not a classifier")
        self.final = final
        self.name = model_path.stem
        self.lock = threading.Lock()
        try:
            self.card = model_card(self.model)
        except ValueError:
            self.card = "This model has no model card (fitted before cards existed)."

    def images(self, filename: str, content: bytes) -> Any:
        """Read the upload as the model's input, from a RAM-backed file."""
        from ..io._batch import read_images

        folder = _MEMORY_FOLDER if os.access(_MEMORY_FOLDER, os.W_OK) else None
        with tempfile.TemporaryDirectory(dir=folder, prefix="sk-medcnn-") as tmp:
            path = Path(tmp) / f"upload{_suffix(filename)}"
            path.write_bytes(content)
            try:
                if hasattr(self.model, "steps") and not hasattr(
                    self.model.steps[0][1], "image_shape_"
                ):  # a Pipeline that reads files itself
                    return self.model.steps[0][1].transform(
                        np.asarray([str(path)], dtype=object)
                    ), self.model[1:]
                *spatial, channels = self.final.image_shape_
                if len(spatial) == 3:  # a volume model reads one NIfTI file
                    if not _suffix(filename).startswith(".nii"):
                        raise _HTTPError(
                            400,
                            f"this model takes volumes of {tuple(spatial)} "
                            f"voxels; upload a NIfTI file (.nii, .nii.gz), not "
                            f"{filename or 'this file'!r} (a DICOM series is "
                            "many files: convert it to NIfTI, e.g. with "
                            "dcm2niix, or use sk-medcnn predict on its folder)",
                        )
                    images, _ = read_images(
                        [path], shape=tuple(spatial), spatial_dims=3
                    )
                    found = images.shape[4] if images.ndim == 5 else 1
                    if found != channels:
                        raise _HTTPError(
                            400,
                            f"this model takes volumes of {channels} "
                            f"channel(s); {filename or 'the upload'!r} has {found}",
                        )
                else:
                    images, _ = read_images(
                        [path], shape=tuple(spatial), channels=channels
                    )
            except ImageReadError as error:
                message = str(error).replace(str(path), filename or "the upload")
                raise _HTTPError(400, message) from None
        if images.ndim == len(self.final.image_shape_):  # no channel axis
            images = images[..., np.newaxis]
        return images, self.model

    def predict(self, filename: str, content: bytes) -> dict[str, Any]:
        import warnings

        from ..inspection import check_distribution

        images, model = self.images(filename, content)
        with self.lock, warnings.catch_warnings():
            warnings.simplefilter("ignore", OutOfDistributionWarning)
            proba = model.predict_proba(images)[0]
            check = check_distribution(model, images)
        classes = self.final.classes_.tolist()
        best = int(np.argmax(proba))
        score = float(check.ood_score[0])
        return {
            "label": classes[best],
            "probability": float(proba[best]),
            "probabilities": {
                str(label): float(p) for label, p in zip(classes, proba, strict=True)
            },
            "in_distribution": bool(check.in_distribution[0]),
            "ood_score": None if np.isnan(score) else score,
            "ood_reason": check.reasons[0],
            "model": {"name": self.name, "sk_medcnn_version": __version__},
        }

    def explain(self, filename: str, content: bytes) -> bytes:
        import warnings

        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        from ..inspection import grad_cam, plot_overlay, plot_volume_overlay

        images, model = self.images(filename, content)
        with self.lock, warnings.catch_warnings():  # /predict says it
            warnings.simplefilter("ignore", OutOfDistributionWarning)
            maps = grad_cam(model, images)
            proba = model.predict_proba(images)[0]
        classes = self.final.classes_
        best = int(np.argmax(proba))
        volume = maps[0].ndim == 3
        figure, axes = plt.subplots(
            1, 3 if volume else 1, figsize=(9.5, 3.6) if volume else (4.6, 4)
        )
        try:
            if volume:  # three orthogonal slices through the map's peak
                plot_volume_overlay(np.asarray(images[0]), maps[0], axes=axes)
                axis = axes[-1]
            else:
                plot_overlay(np.asarray(images[0]), maps[0], ax=axes)
                axis = axes
            bar = figure.colorbar(
                ScalarMappable(Normalize(0, 1), cmap="jet"),
                ax=axes,
                fraction=0.046,
            )
            bar.set_label(f"HiResCAM: evidence for {classes[best]}")
            title = f"predicted {classes[best]} (P = {proba[best]:.3f})"
            if volume:
                figure.suptitle(title)
            else:
                axis.set_title(title)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        finally:
            plt.close(figure)
        return buffer.getvalue()


def _checked_options(
    model_path: str | os.PathLike[str], max_upload_bytes: int, timeout: float
) -> Path:
    """Check :func:`create_app`'s options; return the model's path."""
    path = Path(model_path)
    if path.suffix != ".skmed":
        raise ValueError(
            f"model_path={str(path)!r}: the service loads .skmed files only "
            "(sk_medcnn.save_model); a pickle or joblib file runs code when loaded."
        )
    if not (isinstance(max_upload_bytes, int) and max_upload_bytes > 0):
        raise ValueError(
            f"max_upload_bytes must be an int > 0; got {max_upload_bytes!r}"
        )
    if not (isinstance(timeout, int | float) and timeout > 0):
        raise ValueError(f"timeout must be a number > 0; got {timeout!r}")
    return path


async def _answer(
    function: Any,
    request: Request,
    respond: Any,
    *,
    max_upload_bytes: int,
    timeout: float,
) -> Response:
    """Run ``function(filename, content)`` on the upload in a thread; respond.

    ``respond`` turns the result into the response; errors become JSON
    ``{"error": ...}`` with their status (see :func:`create_app`).
    """
    try:
        filename, content = await _read_upload(request, max_upload_bytes)
        with anyio.fail_after(timeout):
            # the thread is abandoned, not stopped: its result is dropped
            result = await anyio.to_thread.run_sync(
                function, filename, content, abandon_on_cancel=True
            )
        return respond(result)
    except _HTTPError as error:
        return JSONResponse({"error": error.message}, status_code=error.status)
    except TimeoutError:
        return JSONResponse(
            {"error": f"the request took longer than {timeout:g} s"},
            status_code=503,
        )
    except (ValueError, TypeError) as error:  # e.g. an image of wrong layout
        return JSONResponse({"error": str(error).splitlines()[0]}, status_code=400)
    except Exception:
        logger.exception("sk-medcnn serve: request failed")
        return JSONResponse({"error": "internal error"}, status_code=500)


def _model_description(service: _Service) -> dict[str, Any]:
    """Return what ``GET /model`` answers: name, classes, image shape, card."""
    final = service.final
    return {
        "name": service.name,
        "classes": [str(label) for label in final.classes_.tolist()],
        "image_shape": list(final.image_shape_),
        "sk_medcnn_version": __version__,
        "card": service.card,
    }


def create_app(
    model_path: str | os.PathLike[str],
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    device: str = "cpu",
) -> Starlette:
    """Build the ASGI application serving a saved classifier.

    Routes: ``GET /`` (the page), ``GET /health``, ``GET /model`` (name,
    classes, image shape and the model card), ``POST /predict`` and
    ``POST /explain`` (a multipart form with the image file in the field
    ``file``; JSON, and a PNG of the HiResCAM overlay, Grad-CAM's
    position-wise variant). Errors are JSON ``{"error": ...}`` with the
    status: 400 a bad or unreadable file, 413 too large, 503 too slow, 500
    anything else (logged, never sent).

    Parameters
    ----------
    model_path : str or path-like
        A ``.skmed`` file (:func:`~sk_medcnn.save_model`); pickles are
        refused, since loading one runs its code.
    max_upload_bytes : int, default=33554432
        The largest request body accepted.
    timeout : float, default=60.0
        Seconds before a request is answered 503 (the computation is not
        interrupted; requests are computed one at a time).
    device : str, default="cpu"
        Where the model runs.

    Returns
    -------
    app : starlette.applications.Starlette

    Raises
    ------
    ValueError
        If ``model_path`` is not a ``.skmed`` file, or a limit is not > 0.
    sk_medcnn.exceptions.ModelFileError
        If the file is not a loadable classifier.
    """
    path = _checked_options(model_path, max_upload_bytes, timeout)
    service = _Service(path, device)
    page = (
        resources.files("sk_medcnn.serve")
        .joinpath("static/index.html")
        .read_text("utf-8")
    )

    guarded = functools.partial(
        _answer, max_upload_bytes=max_upload_bytes, timeout=timeout
    )

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": service.name})

    async def model(request: Request) -> Response:
        return JSONResponse(_model_description(service))

    async def predict(request: Request) -> Response:
        return await guarded(service.predict, request, JSONResponse)

    async def explain(request: Request) -> Response:
        return await guarded(
            service.explain,
            request,
            lambda png: Response(png, media_type="image/png"),
        )

    return Starlette(
        routes=[
            Route("/", index),
            Route("/health", health),
            Route("/model", model),
            Route("/predict", predict, methods=["POST"]),
            Route("/explain", explain, methods=["POST"]),
        ]
    )
