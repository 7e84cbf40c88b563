"""Serving the demo with uvicorn: :func:`run_server` for the CLI, :class:`BackgroundServer`
for tests and notebooks (a free port, a background thread, a clean stop).

The model is loaded once, before the server starts, and shared by all requests. Both run
uvicorn with :class:`~fcnlab.serve.protocol.JsonH11Protocol`, so even requests uvicorn cannot
parse are answered with JSON.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from fcnlab.errors import FcnlabError
from fcnlab.infer.memory import set_decode_limit
from fcnlab.infer.predictor import Predictor
from fcnlab.serve.app import create_app
from fcnlab.serve.settings import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_MEMORY_MB,
    DEFAULT_READ_TIMEOUT,
    missing_extra,
)

try:
    import uvicorn
except ImportError:
    raise missing_extra() from None

from fcnlab.serve.limits import limits_for_budget
from fcnlab.serve.protocol import JsonH11Protocol


def run_server(
    model_file: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: str = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int | None = None,
    log_level: str = "info",
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
) -> None:
    """Load ``model_file`` (checkpoint, ``.onnx`` or ``.ts``) once and serve the demo until
    interrupted; ``backend`` picks how a checkpoint runs (see :meth:`Predictor.load`).

    ``max_memory_mb`` bounds uploads plus one image's inference and sets the pixel limit
    (:func:`~fcnlab.serve.limits.limits_for_budget`); an explicit ``max_pixels`` over what it
    allows is refused.
    """
    check_port(port)
    predictor = Predictor.load(
        model_file, backend=backend, report=lambda line: print(line, flush=True)
    )
    limits = limits_for_budget(
        predictor, max_memory_mb, max_bytes, max_concurrent, max_pixels, read_timeout
    )
    set_decode_limit(limits.max_memory or int(max_memory_mb * 2**20))
    app = create_app(
        predictor,
        limits.max_bytes,
        limits.max_pixels,
        limits.max_concurrent,
        limits.read_timeout,
        limits.max_memory,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, http=JsonH11Protocol)


def check_port(port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise FcnlabError(f"--port must be between 1 and 65535, not {port}.")


class BackgroundServer:
    """A uvicorn server on a free port of ``host``, running in a daemon thread.

    Use as a context manager: entering waits until the server accepts connections (raises
    :class:`FcnlabError` after ``timeout`` seconds), leaving asks it to exit and joins it.
    """

    def __init__(self, app: object, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.host, self.port = host, self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", http=JsonH11Protocol)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.timeout = timeout

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise FcnlabError(f"the demo server did not start on {self.url}.")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Ask the server to exit, wait for its thread and close the socket."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(self.timeout)
        self.sock.close()
