"""Serve a saved model over HTTP: a JSON API and a page for a person.

``sk-medcnn serve MODEL.skmed`` (or :func:`serve`) starts the service on
127.0.0.1; :func:`create_app` builds the ASGI application for another server
or for tests. Needs the ``serve`` extra: ``pip install "sk-medcnn[serve]"``.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["create_app", "serve"]


def create_app(model_path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """Build the ASGI application; see :func:`sk_medcnn.serve._app.create_app`.

    Parameters
    ----------
    model_path : str or path-like
        The ``.skmed`` file to serve.
    **kwargs
        ``max_upload_bytes``, ``timeout``, ``device``.

    Returns
    -------
    app : starlette.applications.Starlette
    """
    try:
        from ._app import create_app as build
    except ImportError as error:
        raise ImportError(
            "the service needs starlette, uvicorn and python-multipart: pip install "
            '"sk-medcnn[serve]"'
        ) from error
    return build(model_path, **kwargs)


def serve(
    model_path: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    **kwargs: Any,
) -> None:
    """Serve a saved classifier until interrupted (uvicorn).

    Parameters
    ----------
    model_path : str or path-like
        The ``.skmed`` file.
    host : str, default="127.0.0.1"
        The address to bind: this machine only by default. Binding
        ``0.0.0.0`` exposes the model to the network without authentication.
    port : int, default=8000
    **kwargs
        ``max_upload_bytes``, ``timeout``, ``device`` (see :func:`create_app`).
    """
    app = create_app(model_path, **kwargs)
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info")
