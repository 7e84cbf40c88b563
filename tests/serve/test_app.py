"""The demo app through FastAPI's TestClient: routes, round trips, limits and bad uploads."""

from __future__ import annotations

import base64
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from fcnlab.data.decode import decode_image_bytes
from fcnlab.errors import FcnlabError
from tests.checkpoints import INFO

pytest.importorskip("fastapi", reason="the serve extra (FastAPI) is not installed")
pytest.importorskip("httpx", reason="httpx is needed by FastAPI's TestClient")
import httpx
from fastapi.testclient import TestClient

from fcnlab.serve import create_app
from fcnlab.serve.server import BackgroundServer


@pytest.fixture(scope="module")
def client(predictor):
    with TestClient(create_app(predictor)) as client:
        yield client


@pytest.fixture(scope="module")
def strict(predictor):
    """An app with tiny limits: 4000 bytes and 1000 pixels."""
    with TestClient(create_app(predictor, max_bytes=4000, max_pixels=1000)) as client:
        yield client


def post(client, data: bytes, name: str = "image.png", **params):
    return client.post("/predict", files={"file": (name, data, "image/png")}, params=params)


def decode_data_url(url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return Image.open(BytesIO(base64.b64decode(url[len(prefix) :])))


def test_health_describes_the_loaded_model(client, predictor):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["model"] == predictor.card.name == "deeplabv3plus_mobilenet_v2"
    assert body["backend"] == "eager"
    assert body["classes"] == list(INFO.classes)
    assert body["palette"] == [list(c) for c in predictor.card.palette]


def test_page_has_the_elements_the_demo_needs(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for element_id in ("file", "submit", "overlay", "legend", "fractions", "error"):
        assert f'id="{element_id}"' in response.text
    assert "http://" not in response.text and "https://" not in response.text  # offline


def test_png_answer_is_an_indexed_mask_at_the_image_size(client, predictor, make_png):
    data = make_png(37, 53)
    response = post(client, data)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    mask = Image.open(BytesIO(response.content))
    assert mask.mode == "P"
    assert mask.size == (37, 53)
    values = np.array(mask)
    assert values.max() < predictor.card.num_classes
    flat = [v for colour in predictor.card.palette for v in colour]
    assert mask.getpalette()[: len(flat)] == flat
    expected = predictor.predict(decode_image_bytes(data)).mask
    assert np.array_equal(values, expected)


def test_json_answer_has_overlay_mask_and_fractions(client, predictor, make_png):
    response = post(client, make_png(37, 53), format="json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"classes", "palette", "fractions", "width", "height", "overlay", "mask"}
    assert (body["width"], body["height"]) == (37, 53)
    assert body["classes"] == list(predictor.card.classes)
    assert body["palette"] == [list(c) for c in predictor.card.palette]
    assert set(body["fractions"]) == set(body["classes"])
    assert sum(body["fractions"].values()) == pytest.approx(1.0)
    overlay = decode_data_url(body["overlay"])
    assert (overlay.mode, overlay.size) == ("RGB", (37, 53))
    mask = decode_data_url(body["mask"])
    assert (mask.mode, mask.size) == ("P", (37, 53))
    counts = np.bincount(np.array(mask).ravel(), minlength=3) / (37 * 53)
    assert counts.tolist() == pytest.approx([body["fractions"][c] for c in body["classes"]])


@pytest.mark.parametrize("mode", ["RGBA", "L"])
def test_rgba_and_grayscale_uploads_are_segmented(client, make_png, mode):
    response = post(client, make_png(20, 15, mode), format="json")
    assert response.status_code == 200
    assert (response.json()["width"], response.json()["height"]) == (20, 15)


def test_a_non_image_is_refused_with_a_message(client):
    response = post(client, b"this is plain text, not a picture", name="notes.txt")
    assert response.status_code == 415
    assert "'notes.txt' is not an image" in response.json()["detail"]
    assert client.get("/health").status_code == 200  # the server lives on


def test_a_damaged_image_is_refused_with_a_message(client, make_png):
    data = make_png(40, 40)
    response = post(client, data[: len(data) // 2], name="cut.png")
    assert response.status_code == 400
    assert "'cut.png' is a damaged" in response.json()["detail"]


def test_an_empty_upload_is_refused(client):
    response = post(client, b"", name="empty.png")
    assert response.status_code == 400
    assert "empty" in response.json()["detail"]


def test_a_missing_file_field_is_422(client):
    assert client.post("/predict", data={"other": "x"}).status_code == 422
    assert client.post("/predict", content=b"raw bytes").status_code == 422
    assert client.post("/predict", files={"image": ("a.png", b"x")}).status_code == 422


def test_an_unknown_format_parameter_is_422(client, make_png):
    assert post(client, make_png(8, 8), format="jpeg").status_code == 422


def test_an_upload_over_max_bytes_is_413_by_content_length(strict):
    response = post(strict, bytes(100_000))
    assert response.status_code == 413
    assert "over the upload limit of 4000 bytes" in response.json()["detail"]


def test_an_upload_over_max_bytes_is_413_by_its_read_size(strict):
    # Just over the limit: the declared body size is within the multipart allowance, so the
    # file's actual size is what refuses it.
    response = post(strict, bytes(4001), name="big.png")
    assert response.status_code == 413
    assert "'big.png' is 4001 bytes" in response.json()["detail"]


def test_a_chunked_upload_without_length_is_cut_off_at_the_limit(strict):
    boundary = "fcnlabtestboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    chunks = [head, *[bytes(10_000)] * 5, f"\r\n--{boundary}--\r\n".encode()]
    response = strict.post(
        "/predict",
        content=iter(chunks),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert "the request passed" in response.json()["detail"]


def test_an_image_over_max_pixels_is_413(strict, make_png):
    data = make_png(50, 30, "L")  # 1500 pixels in well under 4000 bytes
    assert len(data) < 4000
    response = post(strict, data)
    assert response.status_code == 413
    assert "50x30 = 1500 pixels, over the limit of 1000" in response.json()["detail"]


def test_a_decompression_bomb_is_413(predictor, make_png, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL refuses over 2x this
    with TestClient(create_app(predictor)) as client:
        response = post(client, make_png(30, 30))
    assert response.status_code == 413
    assert "too many pixels" in response.json()["detail"]


def test_a_large_upload_is_held_in_memory_not_spooled_to_disk(predictor, monkeypatch):
    def refuse(self):
        raise AssertionError("the upload was about to be written to a temporary file")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", refuse)
    pixels = np.random.default_rng(0).integers(0, 256, (700, 800, 3), dtype=np.uint8)
    buffer = BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=0)
    assert len(buffer.getvalue()) > 1_500_000  # over Starlette's 1 MiB spooling default
    with TestClient(create_app(predictor, max_pixels=1000)) as client:
        response = post(client, buffer.getvalue())
    assert response.status_code == 413  # read and parsed in full, refused on its pixels


@pytest.mark.parametrize("limits", [{"max_bytes": 0}, {"max_pixels": -1}, {"max_bytes": 1.5}])
def test_create_app_refuses_bad_limits(predictor, limits):
    with pytest.raises(FcnlabError, match="must be a positive integer"):
        create_app(predictor, **limits)


def test_concurrent_requests_on_a_real_server_share_one_model(predictor, make_png):
    images = [make_png(24, 16, seed=i) for i in range(4)]
    expected = [predictor.predict(decode_image_bytes(d)).mask for d in images]

    def segment(data: bytes) -> np.ndarray:
        response = httpx.post(f"{server.url}/predict", files={"file": ("a.png", data)})
        assert response.status_code == 200
        return np.array(Image.open(BytesIO(response.content)))

    with BackgroundServer(create_app(predictor)) as server, ThreadPoolExecutor(4) as pool:
        masks = list(pool.map(segment, images))
    for mask, want in zip(masks, expected, strict=True):
        assert np.array_equal(mask, want)


def test_openapi_describes_the_upload(client):
    body = client.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]
    assert "file" in body["content"]["multipart/form-data"]["schema"]["properties"]


def test_run_server_loads_the_model_once_and_serves_it(model_file, monkeypatch):
    import fcnlab.serve.server as server_module

    calls = []
    monkeypatch.setattr(server_module.uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    server_module.run_server(model_file, host="127.0.0.1", port=8123, backend="eager", max_bytes=99)
    ((app, options),) = calls
    assert options["host"] == "127.0.0.1" and options["port"] == 8123
    with TestClient(app) as client:
        health = client.get("/health").json()
    assert (health["backend"], health["max_bytes"]) == ("eager", 99)


def test_a_missing_serve_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # makes `import fastapi` fail
    monkeypatch.delitem(sys.modules, "fcnlab.serve.app", raising=False)
    monkeypatch.delitem(sys.modules, "fcnlab.serve.server", raising=False)
    with pytest.raises(FcnlabError, match=r"pip install 'fcnlab\[serve\]'"):
        from fcnlab.serve import run_server  # noqa: F401


# --- the demo page's extras: the decoded image, the explain view ------------------------------


def test_health_says_whether_explain_is_available(client):
    assert client.get("/health").json()["explain"] is True


def test_json_answer_can_carry_the_decoded_image(client, make_png):
    response = post(client, make_png(37, 53), format="json", image="true")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"classes", "palette", "fractions", "width", "height", "overlay", "mask",
                         "image"}  # fmt: skip
    assert body["image"].startswith("data:image/jpeg;base64,")
    image = Image.open(BytesIO(base64.b64decode(body["image"].split(",", 1)[1])))
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (37, 53))


def test_explain_answers_the_figures_of_the_upload(client, predictor, make_png):
    response = client.post("/explain", files={"file": ("street.png", make_png(40, 30))})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["family"]) == (predictor.card.name, "deeplab")
    assert (body["width"], body["height"]) == (body["explained_width"], body["explained_height"])
    names = [f["name"] for f in body["figures"]]
    assert names == ["prediction", "aspp_branches", "aspp_summary", "decoder_low_level"]
    for figure in body["figures"]:
        assert figure["title"] and figure["caption"]
        assert decode_data_url(figure["image"]).format == "PNG"
    assert set(body["summary"]["deeplab"]["branches"]) == {
        "1x1", "3x3 rate 6", "3x3 rate 12", "3x3 rate 18", "image pooling"
    }  # fmt: skip
    assert body["summary"]["deeplab"]["residual"] < 1e-4


def test_explain_shrinks_large_uploads(client, make_png):
    from fcnlab.serve.explain import EXPLAIN_MAX_SIDE

    response = client.post("/explain", files={"file": ("big.png", make_png(1100, 40))})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (1100, 40)
    assert body["explained_width"] == EXPLAIN_MAX_SIDE and body["explained_height"] < 40


def test_explain_refuses_bad_uploads_like_predict(client, strict, make_png):
    notes = client.post("/explain", files={"file": ("notes.txt", b"plain text")})
    assert notes.status_code == 415 and "'notes.txt' is not an image" in notes.json()["detail"]
    big = strict.post("/explain", files={"file": ("big.png", bytes(100_000))})
    assert big.status_code == 413
    assert client.post("/explain", data={"other": "x"}).status_code == 422


def test_explain_of_an_exported_model_is_501(predictor, make_png):
    from fcnlab.infer import Predictor

    exported = Predictor(predictor.runner, predictor.card, source="model.onnx")
    with TestClient(create_app(exported)) as client:
        assert client.get("/health").json()["explain"] is False
        response = client.post("/explain", files={"file": ("a.png", make_png(8, 8))})
    assert response.status_code == 501
    assert "explain needs the fcnlab checkpoint (.pt)" in response.json()["detail"]
