"""The web demo: upload an image, see the segmentation overlay, legend and class fractions.

- :func:`create_app` builds the FastAPI app around one loaded
  :class:`~fcnlab.infer.predictor.Predictor` (``GET /``, ``GET /health``, ``POST /predict``).
- :func:`run_server` loads a model file once and serves the app with uvicorn.

FastAPI, uvicorn and python-multipart are the optional extra ``fcnlab[serve]``; they are
imported only when one of these functions is first used, and their absence raises
:class:`~fcnlab.errors.FcnlabError` with the install command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fcnlab.serve.settings import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_MEMORY_MB,
    DEFAULT_MAX_PIXELS,
    DEFAULT_READ_TIMEOUT,
    missing_extra,
)

if TYPE_CHECKING:
    from fcnlab.serve.app import create_app
    from fcnlab.serve.server import run_server

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_CONCURRENT",
    "DEFAULT_MAX_MEMORY_MB",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_READ_TIMEOUT",
    "create_app",
    "missing_extra",
    "run_server",
]


def __getattr__(name: str) -> Any:
    """Import the app and server lazily, so ``import fcnlab.serve`` never needs FastAPI."""
    if name == "create_app":
        from fcnlab.serve.app import create_app

        return create_app
    if name == "run_server":
        from fcnlab.serve.server import run_server

        return run_server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
