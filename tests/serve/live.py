"""``fcnlab serve`` in a subprocess on 127.0.0.1, and raw-socket HTTP for abuse tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fcnlab.infer.activations import read_status

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m fcnlab serve MODEL --port P OPTIONS`` with its output in ``log``."""

    def __init__(self, model_file: Path, log: Path, *options: str, timeout: float = 120) -> None:
        self.port, self.log, self.timeout = free_port(), log, timeout
        self.command = [
            sys.executable, "-m", "fcnlab", "serve", str(model_file),
            "--host", HOST, "--port", str(self.port), *options,
        ]  # fmt: skip
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> ServerProcess:
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"fcnlab serve did not start:\n{self.log.read_text()[-3000:]}")

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def memory(self, field: str = "VmHWM") -> int:
        assert self.proc is not None
        return read_status(field, self.proc.pid)


def multipart_head(boundary: str = "fcnlabboundary", name: str = "a.png") -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()


def request_head(port: int, length: int, boundary: str = "fcnlabboundary") -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Length: {length}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
    ).encode()


def open_raw(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=10)
    sock.sendall(data)
    return sock


def read_response(sock: socket.socket, timeout: float = 15) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one response (read until the server closes or it is whole)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if _complete(data):
            break
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.decode("latin-1").lower().split("\r\n"):
        if line.startswith("content-length:"):
            return len(body) >= int(line.split(":")[1])
    return False


def detail_of(body: bytes) -> str:
    """The one sentence of a JSON error body."""
    payload = json.loads(body)
    assert set(payload) == {"detail"} and isinstance(payload["detail"], str), payload
    return payload["detail"]
