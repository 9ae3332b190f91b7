"""``sk-medcnn export`` and ``sk-medcnn serve``: a saved model put to use."""

from __future__ import annotations

import argparse

from ._common import (
    EXIT_OK,
    CommandError,
    UsageError,
    _check_device,
    _check_output_file,
    _warn,
)
from ._models import _final_estimator, load_any_model


def command_export(args: argparse.Namespace) -> int:
    """Write a saved model as an ONNX graph (``sk-medcnn export``)."""
    from ..export import export_onnx

    output = _check_output_file("--output", args.output)
    model = load_any_model(args.model)
    try:
        export_onnx(model, output)
    except ImportError as error:
        raise CommandError(str(error)) from error
    except (TypeError, ValueError) as error:
        raise CommandError(f"{args.model}: {error}") from error
    estimator = _final_estimator(model)
    what = "probabilities" if hasattr(estimator, "classes_") else "predictions"
    print(
        f"Exported {args.model} to {output}: float32 images (n, height, width, "
        f"channels) in, {what} out (without test-time augmentation)."
    )
    return EXIT_OK


def command_serve(args: argparse.Namespace) -> int:
    """Serve a saved model over HTTP (``sk-medcnn serve``)."""
    from ..serve import create_app

    _check_device(args.device)
    try:
        app = create_app(
            args.model,
            max_upload_bytes=int(args.max_upload_mb * 2**20),
            timeout=args.timeout,
            device=args.device,
        )
    except ImportError as error:
        raise CommandError(str(error)) from error
    except ValueError as error:
        raise UsageError(str(error)) from error
    import uvicorn

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        _warn(
            f"--host {args.host}: the service has no authentication; anyone who "
            "can reach this address can use the model."
        )
    print(f"Serving {args.model} on http://{args.host}:{args.port}/ (Ctrl-C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK
