"""A real ``fcnlab serve`` on 127.0.0.1 under abuse: every answer JSON, memory within budget.

One server for the module (tiny model, 256 MiB budget, 2 concurrent uploads, 3 s deadline);
tests run in file order and the last one checks the server's log and peak memory.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from fcnlab.infer.memory import MIB
from tests.infer.pngs import solid_png
from tests.serve.conftest import png_bytes
from tests.serve.live import (
    ServerProcess,
    detail_of,
    multipart_head,
    open_raw,
    read_response,
    request_head,
)

BUDGET_MB, CONCURRENT, DEADLINE_S = 256, 2, 3
OPTIONS = [
    "--backend", "eager", "--max-memory-mb", str(BUDGET_MB), "--max-concurrent", str(CONCURRENT),
    "--read-timeout", str(DEADLINE_S), "--max-upload-mb", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def server(model_file, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with ServerProcess(model_file, log, *OPTIONS) as live:
        assert post(live, png_bytes(32, 32)).status_code == 200  # warm-up
        live.baseline = live.memory("VmHWM")  # the model loaded and run once
        yield live


def post(server, data: bytes, name: str = "a.png", **params) -> httpx.Response:
    files = {"file": (name, data, "image/png")}
    return httpx.post(f"{server.url}/predict", files=files, params=params, timeout=120)


def one_sentence(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return detail_of(response.content)


def test_health_reports_limits_derived_from_the_budget(server):
    health = httpx.get(f"{server.url}/health").json()
    assert 100_000 < health["max_pixels"] < 25_000_000
    assert health["max_concurrent"] == CONCURRENT and health["read_timeout"] == DEADLINE_S
    assert 0 < health["max_memory_mb"] < BUDGET_MB


def test_an_oversize_body_is_413(server):
    detail = one_sentence(post(server, bytes(3 * 2**20)), 413)
    assert "over the upload limit of 2097152 bytes (2.0 MiB)" in detail


def test_a_decompression_bomb_is_413_from_its_header(server):
    detail = one_sentence(post(server, solid_png(20000, 20000, "L"), "bomb.png"), 413)
    assert detail.startswith("'bomb.png' has too many pixels")


def test_a_huge_pixel_count_is_413_before_decoding(server):
    detail = one_sentence(post(server, solid_png(5000, 4000), "wide.png"), 413)
    assert "'wide.png' is 5000x4000 = 20000000 pixels, over the limit of" in detail


def test_an_image_too_big_to_run_whole_is_tiled_while_health_answers(server):
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, server, solid_png(1100, 900), "big.png", format="json")
        time.sleep(1.0)  # the upload is in and being segmented
        started = time.monotonic()
        health = httpx.get(f"{server.url}/health", timeout=5)
        assert health.status_code == 200 and time.monotonic() - started < 1
        assert not pending.done(), "too quick to show /health answering during a prediction"
        response = pending.result()
    assert response.status_code == 200, response.text
    assert (response.json()["width"], response.json()["height"]) == (1100, 900)


def test_format_xml_is_one_sentence(server):
    detail = one_sentence(post(server, png_bytes(8, 8), format="xml"), 422)
    assert detail == "query parameter format: input should be 'png' or 'json', not 'xml'."


def test_an_unknown_route_is_json(server):
    detail = one_sentence(httpx.get(f"{server.url}/nope"), 404)
    assert detail.startswith("GET /nope answers 404 Not Found;")


def test_a_malformed_content_length_is_json(server):
    sock = open_raw(server.port, request_head(server.port, 10).replace(b"10", b"1x0", 1))
    status, headers, body = read_response(sock)
    assert status == 400 and headers["content-type"] == "application/json"
    assert "malformed Content-Length" in detail_of(body)


def test_held_uploads_fill_the_slots_then_503_while_health_answers(server):
    head = request_head(server.port, 200_000) + multipart_head() + bytes(1000)
    held = [open_raw(server.port, head) for _ in range(CONCURRENT)]
    time.sleep(0.5)
    started = time.monotonic()
    busy = post(server, bytes(1_500_000))  # still sending when refused: gets the answer
    assert "busy" in one_sentence(busy, 503)
    assert busy.headers["retry-after"] == "2"
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
    assert time.monotonic() - started < 2  # neither waited for the held uploads
    with ThreadPoolExecutor(CONCURRENT) as pool:
        answers = list(pool.map(lambda s: read_response(s, DEADLINE_S + 10), held))
    for status, headers, body in answers:
        assert status == 408 and headers["content-type"] == "application/json"
        assert detail_of(body) == f"the upload did not arrive within {DEADLINE_S} s; send it again."
    assert post(server, png_bytes(16, 16)).status_code == 200  # the slots are free again


def test_a_trickling_upload_meets_the_deadline_not_an_idle_timeout(server):
    sock = open_raw(server.port, request_head(server.port, 100_000) + multipart_head())
    started = time.monotonic()
    for _ in range(2 * DEADLINE_S * 4):  # a byte every 0.25 s, never idle for long
        try:
            sock.sendall(b"x")
        except OSError:
            break  # the server answered and closed
        time.sleep(0.25)
    status, _, body = read_response(sock, 10)
    assert status == 408 and "did not arrive" in detail_of(body)
    assert time.monotonic() - started < DEADLINE_S + 5


def test_client_disconnects_mid_upload_are_quiet(server):
    for _ in range(3):
        sock = open_raw(server.port, request_head(server.port, 50_000) + multipart_head())
        sock.sendall(bytes(2000))
        sock.close()
    time.sleep(1)
    assert httpx.get(f"{server.url}/health").json()["busy"] == 0


def test_the_log_has_no_traceback_and_peak_memory_stayed_in_budget(server):
    log = server.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]
    peak = server.memory("VmHWM")
    print(f"server peak RSS {peak / MIB:.0f} MiB, baseline {server.baseline / MIB:.0f} MiB")
    assert peak - server.baseline <= BUDGET_MB * MIB
