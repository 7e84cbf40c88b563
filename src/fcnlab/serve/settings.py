"""The demo server's defaults, and the error raised when its optional extra is missing.

Kept apart from :mod:`fcnlab.serve` (which re-exports them) so that the app, the server and
the limits import them without importing their own package.
"""

from __future__ import annotations

from fcnlab.errors import FcnlabError

#: Largest accepted upload, in bytes (10 MiB).
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: Largest accepted image of :func:`~fcnlab.serve.create_app` without a memory budget, in
#: pixels; ``fcnlab serve`` derives its limit from ``--max-memory-mb`` instead.
DEFAULT_MAX_PIXELS = 25_000_000
#: Memory for uploads and inference of ``fcnlab serve``, sized for a small machine.
DEFAULT_MAX_MEMORY_MB = 1024
#: Uploads read, decoded or segmented at once; more answer 503 with Retry-After.
DEFAULT_MAX_CONCURRENT = 4
#: Seconds an upload may take to arrive in full; slower ones answer 408.
DEFAULT_READ_TIMEOUT = 30.0


def missing_extra() -> FcnlabError:
    """The error raised when the ``serve`` extra is not installed."""
    return FcnlabError(
        "the web demo needs FastAPI and uvicorn; install them with: pip install 'fcnlab[serve]'."
    )
