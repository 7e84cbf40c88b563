"""The FastAPI app of the web demo, built around one already loaded predictor.

Routes:

- ``GET /``: the demo page (plain HTML and vanilla JS, no external assets).
- ``GET /health``: ``{"status": "ok", "model", "path", "classes", "palette", "max_bytes",
  "max_pixels"}`` once the model is loaded.
- ``POST /predict``: the image in the multipart form field ``file``. Answers the mask as an
  indexed PNG (mode ``P``: pixel values are class indices, the palette the class colours; a
  16-bit grey PNG of indices for more than 256 classes), or with ``?format=json``:
  ``{"width", "height", "classes", "palette", "fractions", "overlay", "mask"}`` where
  ``fractions`` maps each class name to its share of the pixels and ``overlay``/``mask`` are
  ``data:image/png;base64,...`` URLs.

Errors answer JSON ``{"detail": "<one sentence>"}``: 413 for an upload over ``max_bytes``
(checked on ``Content-Length`` first, then on the bytes actually read) or an image over
``max_pixels`` (checked on the header, before decoding), 415 for data that is not an image,
400 for a damaged image or malformed form, 422 for a missing ``file`` field. Uploads are held
in memory only, never written to disk; images are segmented one at a time under a lock, which
also bounds the memory decoding takes to one image.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import AsyncIterator
from importlib import resources
from importlib.util import find_spec
from io import BytesIO
from typing import Annotated, Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from fcnlab.data.decode import DECODE_ERRORS, decode_image_bytes
from fcnlab.engine.visualize import overlay
from fcnlab.errors import FcnlabError
from fcnlab.infer.files import mask_image
from fcnlab.infer.predictor import Predictor
from fcnlab.serve import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, missing_extra

try:
    from fastapi import FastAPI, HTTPException, Query, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser
except ImportError:
    raise missing_extra() from None
if find_spec("python_multipart") is None and find_spec("multipart") is None:
    raise missing_extra()

#: Room for the multipart boundaries and part headers around the file in a request body.
MULTIPART_OVERHEAD = 16 * 1024
_FORMATS = "send a PNG, JPEG, BMP, TIFF or WebP file."
#: The request body of ``/predict`` for the OpenAPI page (the route parses the form itself).
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def create_app(
    predictor: Predictor,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> FastAPI:
    """The demo app serving ``predictor``, shared by all requests; see the module docstring."""
    for label, value in (("max_bytes", max_bytes), ("max_pixels", max_pixels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FcnlabError(f"{label} must be a positive integer, not {value!r}.")
    segmenter = Segmenter(predictor)
    page = resources.files("fcnlab.serve").joinpath("static/index.html").read_text("utf-8")
    app = FastAPI(title="fcnlab demo", summary=f"Semantic segmentation with {predictor.card.name}")
    app.add_exception_handler(FcnlabError, _user_error)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health")
    def health() -> dict[str, Any]:
        card = predictor.card
        return {
            "status": "ok",
            "model": card.name,
            "path": predictor.path,
            "classes": list(card.classes),
            "palette": [list(c) for c in card.palette],
            "max_bytes": max_bytes,
            "max_pixels": max_pixels,
        }

    @app.post("/predict", response_class=Response, openapi_extra=_UPLOAD_BODY)
    async def predict(
        request: Request,
        response_format: Annotated[Literal["png", "json"], Query(alias="format")] = "png",
    ) -> Response:
        name, data = await read_upload(request, max_bytes)
        check_pixels(data, name, max_pixels)
        want_json = response_format == "json"
        result = await run_in_threadpool(segmenter, data, name, want_json)
        if want_json:
            return JSONResponse(result)
        return Response(result["mask_png"], media_type="image/png")

    return app


class Segmenter:
    """Decode, predict and encode one upload at a time; callable from any thread."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self._lock = threading.Lock()

    def __call__(self, data: bytes, name: str, want_json: bool) -> dict[str, Any]:
        """``{"mask_png": bytes}``, or the JSON answer of ``/predict`` when ``want_json``."""
        card = self.predictor.card
        with self._lock:
            image = decode_image_bytes(data, name)
            prediction = self.predictor.predict(image)
            mask_png = encode_mask(prediction.mask, card.palette)
            if not want_json:
                return {"mask_png": mask_png}
            blend = overlay(np.asarray(image), prediction.mask, card.palette, card.ignore_index)
            return {
                "width": image.width,
                "height": image.height,
                "classes": list(card.classes),
                "palette": [list(c) for c in card.palette],
                "fractions": prediction.fractions(),
                "overlay": data_url(encode_png(Image.fromarray(blend))),
                "mask": data_url(mask_png),
            }


async def read_upload(request: Request, max_bytes: int) -> tuple[str, bytes]:
    """The filename and bytes of the form field ``file``, read into memory only.

    Raises 413 when the body or the file is over ``max_bytes``, 400 for a malformed form and
    422 when the form has no file named ``file``.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise HTTPException(422, "send the image as the multipart form field 'file'.")
    body = await read_body(request, max_bytes + MULTIPART_OVERHEAD, max_bytes)
    try:
        form = await InMemoryMultiPartParser(request.headers, _once(body), max_files=1).parse()
    except MultiPartException as error:
        raise HTTPException(400, f"the form data is malformed ({error.message}).") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise HTTPException(422, "the form has no file field named 'file'; attach the image.")
    data = await upload.read()
    name = f"'{(upload.filename or 'upload')[:100]}'"
    if len(data) > max_bytes:
        raise HTTPException(413, _too_big(f"{name} is {len(data)} bytes", max_bytes))
    if not data:
        raise HTTPException(400, f"{name} is empty; choose an image file.")
    return name, data


async def read_body(request: Request, limit: int, max_bytes: int) -> bytes:
    """The request body, refused with 413 once its declared or actual size passes ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, _too_big(f"the request is {declared} bytes", max_bytes))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, _too_big(f"the request passed {limit} bytes", max_bytes))
    return bytes(body)


class InMemoryMultiPartParser(MultiPartParser):
    """Starlette's multipart parser with file parts kept in memory, never spooled to disk.

    Safe because :func:`read_upload` bounds the whole body by ``max_bytes`` before parsing.
    """

    spool_max_size = 2**62


def check_pixels(data: bytes, name: str, max_pixels: int) -> None:
    """Read only the image header: 413 over ``max_pixels``, 415 when not an image."""
    try:
        with Image.open(BytesIO(data)) as header:
            width, height = header.size
    except Image.DecompressionBombError as error:
        raise HTTPException(413, f"{name} has too many pixels ({error}).") from None
    except UnidentifiedImageError:
        raise HTTPException(415, f"{name} is not an image in a known format; {_FORMATS}") from None
    except DECODE_ERRORS as error:
        raise HTTPException(400, f"{name} is a damaged image ({error}); {_FORMATS}") from None
    if width * height > max_pixels:
        raise HTTPException(
            413,
            f"{name} is {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels}; resize it and try again.",
        )


def encode_mask(mask: np.ndarray, palette: tuple[tuple[int, int, int], ...]) -> bytes:
    """The mask as ``fcnlab predict`` writes it (indexed PNG), encoded in memory."""
    return encode_png(mask_image(mask, palette))


def encode_png(image: Image.Image) -> bytes:
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _too_big(what: str, max_bytes: int) -> str:
    limit = f"{max_bytes} bytes"
    if max_bytes >= 2**20:
        limit += f" ({max_bytes / 2**20:.1f} MiB)"
    return f"{what}, over the upload limit of {limit}; send a smaller image."


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _user_error(request: Request, error: Exception) -> JSONResponse:
    """A :class:`FcnlabError` from decoding or predicting: 400 with its sentence."""
    return JSONResponse({"detail": str(error)}, status_code=400)
