"""Load test of ``fcnlab serve`` on 127.0.0.1: many clients, normal, large and hostile uploads.

Starts the server in a subprocess with its default limits (``--max-memory-mb 1024``,
``--max-concurrent 4``, ``--read-timeout 30``), then for each level runs that many clients in
one asyncio loop for a fixed time. Each client sends, one after another, a mix of uploads
(weights in :data:`MIX`): a normal photo-sized image, a large image the server must tile, and
hostile ones (a decompression bomb, an image over the pixel limit, a body over the upload
limit, text that is not an image, a half-sent upload abandoned after 1 s); a client told 503
waits the ``Retry-After`` it was given before its next upload. Reported per level:
requests, throughput (all answers and 200s), p50/p99 latency, the server's peak RSS (VmHWM,
reset before each level through /proc/PID/clear_refs) and answers counted by status.

    python bench/serve_load.py --levels 50 200 --seconds 30 --write

The model is a randomly initialised ``deeplabv3plus_mobilenet_v2`` (21 classes) unless
``--model`` names one: the speed is what is measured, not the masks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shlex
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

HOST = "127.0.0.1"
#: Upload kinds and their share of the requests.
MIX = {"normal": 0.6, "large": 0.1, "bomb": 0.06, "pixels": 0.06, "oversize": 0.06, "text": 0.06,
       "abandoned": 0.06}  # fmt: skip


@dataclass(frozen=True)
class Record:
    kind: str
    status: int  # 0: no answer (connection error or client timeout)
    seconds: float
    retry_after: float = 0.0  # what a 503 asked the client to wait


def png(image: Image.Image) -> bytes:
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def solid_png(width: int, height: int, channels: int = 3) -> bytes:
    """A valid grey PNG written row by row: any number of pixels in a few hundred KB."""
    row = b"\x00" + bytes([90]) * (width * channels)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2 if channels == 3 else 0, 0, 0, 0)
    chunks = [(b"IHDR", header), (b"IDAT", body), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d)) for k, d in chunks
    )


def payloads(max_pixels: int, seed: int = 0) -> dict[str, bytes]:
    """The body of each upload kind (``abandoned`` sends the start of ``normal``); ``large``
    is 80% of the server's pixel limit, so the server has to tile it."""
    rng = np.random.default_rng(seed)
    normal = rng.integers(0, 256, (360, 480, 3), dtype=np.uint8)
    width = int((0.8 * max_pixels * 4 / 3) ** 0.5)
    height = width * 3 // 4
    x = np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1))
    y = np.tile(np.linspace(0, 255, height, dtype=np.uint8)[:, None], (1, width))
    return {
        "normal": png(Image.fromarray(normal)),
        "large": png(Image.fromarray(np.dstack([x, y, x // 2 + y // 2]))),
        "bomb": solid_png(30000, 30000, 1),
        "pixels": solid_png(6000, 4000),
        "oversize": bytes(11 * 2**20),
        "text": b"this is not an image " * 100,
    }


async def send(client: httpx.AsyncClient, url: str, kind: str, data: dict[str, bytes]) -> Record:
    started, wait = time.perf_counter(), 0.0
    try:
        if kind == "abandoned":
            status = await abandon(url, data["normal"])
        else:
            files = {"file": (f"{kind}.png", data[kind], "image/png")}
            response = await client.post(f"{url}/predict", files=files)
            status = response.status_code
            wait = float(response.headers.get("retry-after", 0))
    except (httpx.HTTPError, OSError):
        status = 0
    return Record(kind, status, time.perf_counter() - started, wait)


async def abandon(url: str, body: bytes) -> int:
    """Send headers and a third of the body, wait 1 s, hang up; the status is -1."""
    port = int(url.rsplit(":", 1)[1])
    _, writer = await asyncio.open_connection(HOST, port)
    head = (
        f"POST /predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(body) + 200}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n"
    ).encode()
    writer.write(head + body[: len(body) // 3])
    await writer.drain()
    await asyncio.sleep(1)
    writer.close()
    return -1


async def client_loop(client, url, data, deadline: float, rng: random.Random) -> list[Record]:
    records = []
    kinds, weights = list(MIX), list(MIX.values())
    while time.perf_counter() < deadline:
        records.append(await send(client, url, rng.choices(kinds, weights)[0], data))
        await asyncio.sleep(min(records[-1].retry_after, max(0, deadline - time.perf_counter())))
    return records


async def run_level(url: str, clients: int, seconds: float, data: dict[str, bytes]) -> list:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    timeout = httpx.Timeout(seconds + 60)
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        loops = [client_loop(client, url, data, deadline, random.Random(i)) for i in range(clients)]
        return [r for records in await asyncio.gather(*loops) for r in records]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def label(record: Record) -> str:
    """The status, ``abandoned`` for half-sent uploads, ``closed (kind)`` without an answer
    (the server refused an oversize body before the client had sent it all)."""
    if record.status == -1:
        return "abandoned"
    return str(record.status) if record.status else f"closed ({record.kind})"


def summarise(clients: int, seconds: float, records: list[Record], peak_mib: float) -> list[str]:
    """One table row: clients, requests, req/s, ok/s, p50/p99 (all and 200s), RSS, statuses."""
    ok = [r.seconds for r in records if r.status == 200]
    every = [r.seconds for r in records]
    counts = Counter(label(r) for r in records)
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    return [
        str(clients),
        str(len(records)),
        f"{len(records) / seconds:.1f}",
        f"{len(ok) / seconds:.2f}",
        f"{percentile(every, 50):.2f} / {percentile(every, 99):.2f}",
        f"{percentile(ok, 50):.2f} / {percentile(ok, 99):.2f}",
        f"{peak_mib:.0f}",
        statuses,
    ]


NOTES = (
    "503: refused at once while the concurrent uploads are in flight (the body is read and "
    "dropped, so the client gets the answer). closed (oversize): the server answered 413 on "
    "Content-Length and closed while the client was still sending 11 MiB, which the client "
    "sees as a reset. abandoned: half-sent uploads the client hung up on (no answer "
    "expected). Peak RSS is the server's VmHWM during the level, model included."
)
HEADER = ["clients", "requests", "answers/s", "200/s", "p50 / p99 s (all)", "p50 / p99 s (200)",
          "peak RSS MiB", "answers by status"]  # fmt: skip


def vm(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tiny_checkpoint(folder: Path) -> Path:
    from fcnlab.engine.checkpoint import make_checkpoint, save_checkpoint
    from fcnlab.labels import LabelSpace
    from fcnlab.models import create_model

    names = tuple(f"class{i}" for i in range(21))
    palette = tuple((i * 12, i * 5, 255 - i * 12) for i in range(21))
    info = LabelSpace("random", names, palette, 255)
    model = create_model("deeplabv3plus_mobilenet_v2", 21).eval()
    return save_checkpoint(make_checkpoint(model, info, config={}), folder / "model.pt")


def start_server(model: Path, port: int, options: list[str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "fcnlab", "serve", str(model), "--port", str(port), *options]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            if httpx.get(f"http://{HOST}:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not start:\n{log.read_text()[-2000:]}")


def cpu_line() -> str:
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(ln.split(":", 1) for ln in text.splitlines() if ":" in ln)
    model = fields.get("Model name", "").strip()
    flags = fields.get("Flags", "").split()
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags]
    return f"{model} ({os.cpu_count()} cores; {', '.join(isa)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="checkpoint (default: random DeepLabv3+)")
    parser.add_argument("--levels", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--server-option", action="append", default=[], dest="options")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model or tiny_checkpoint(Path(scratch))
        log = Path(scratch) / "server.log"
        proc = start_server(model, args.port, args.options, log)
        try:
            baseline = vm(proc.pid, "VmRSS")
            health = httpx.get(f"http://{HOST}:{args.port}/health").json()
            data = payloads(health["max_pixels"])
            for clients in args.levels:
                Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
                url = f"http://{HOST}:{args.port}"
                records = asyncio.run(run_level(url, clients, args.seconds, data))
                rows.append(summarise(clients, args.seconds, records, vm(proc.pid, "VmHWM")))
                print(" | ".join(rows[-1]), flush=True)
            tracebacks = log.read_text().count("Traceback")
        finally:
            proc.terminate()
            proc.wait(30)
    report(args, rows, baseline, tracebacks, health)


def report(args, rows: list[list[str]], baseline: float, tracebacks: int, health: dict) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from benchdoc import table, write_section

    command = "python bench/serve_load.py " + shlex.join(sys.argv[1:])
    body = "\n\n".join(
        [
            "## Serving under load: fcnlab serve with normal, large and hostile uploads",
            f"CPU: {cpu_line()}. Model: {health['model']} ({len(health['classes'])} classes, "
            f"backend {health['backend']}). Server defaults: 1024 MiB budget, "
            f"{health['max_concurrent']} concurrent uploads, {health['read_timeout']:g} s read "
            f"deadline, derived pixel limit {health['max_pixels']}; its RSS after loading the "
            f"model: {baseline:.0f} MiB. The clients "
            "run in one asyncio process on the same two cores. Mix per request: "
            + ", ".join(f"{k} {v:.0%}" for k, v in MIX.items())
            + f". Tracebacks in the server log: {tracebacks}.",
            f"Command: `{command}`",
            table(HEADER, rows),
            NOTES,
        ]
    )
    print(body)
    if args.write:
        print(f"wrote {write_section('serve_load', body)}")


if __name__ == "__main__":
    main()
