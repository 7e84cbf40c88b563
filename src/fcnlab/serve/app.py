"""The FastAPI app of the web demo, built around one already loaded predictor.

Routes:

- ``GET /``: the demo page (plain HTML and vanilla JS, no external assets).
- ``GET /health``: ``{"status": "ok", "model", "backend", "classes", "palette", "max_bytes",
  "max_pixels", "max_concurrent", "read_timeout", "max_memory_mb", "busy", "explain"}`` once
  the model is loaded (``explain``: whether ``POST /explain`` can answer); it never waits for
  predictions.
- ``POST /predict``: the image in the multipart form field ``file``. Answers the mask as an
  indexed PNG (mode ``P``: pixel values are class indices, the palette the class colours; a
  16-bit grey PNG of indices for more than 256 classes), or with ``?format=json``:
  ``{"width", "height", "classes", "palette", "fractions", "overlay", "mask"}`` where
  ``fractions`` maps each class name to its share of the pixels and ``overlay``/``mask`` are
  ``data:image/png;base64,...`` URLs; ``&image=true`` adds ``image``, the decoded upload as
  the model saw it (upright RGB, a JPEG data URL), for showing it next to the mask.
- ``POST /explain``: the image in the field ``file``; answers the explain figures
  (:mod:`fcnlab.serve.explain`) as JSON, or 501 when the demo serves an exported model.

Errors answer JSON ``{"detail": "<one sentence>"}`` (:mod:`fcnlab.serve.errors`): 413 for an
upload over ``max_bytes`` (checked on ``Content-Length`` first, then on the bytes actually
read) or an image over ``max_pixels`` (checked on the header, before decoding), 415 for data
that is not an image, 400 for a damaged image, a malformed form or a client that hung up, 408
for an upload slower than ``read_timeout``, 422 for a missing ``file`` field or a bad query
parameter, 503 with ``Retry-After`` while ``max_concurrent`` uploads are already being read,
decoded or segmented (or when one runs out of memory). Uploads are held in memory only, never
written to disk; images are segmented one at a time under a lock, which also bounds the memory
decoding takes to one image. With ``max_memory`` (bytes) each image is planned first and
tiled when it would not fit whole.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from importlib import resources
from importlib.util import find_spec
from io import BytesIO
from typing import Annotated, Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from fcnlab.data.decode import DECODE_ERRORS, decode_image_bytes
from fcnlab.errors import FcnlabError
from fcnlab.infer.files import mask_image
from fcnlab.infer.memory import MIB, ImageHeader, is_out_of_memory, plan_image
from fcnlab.infer.predictor import Predictor
from fcnlab.masks import overlay
from fcnlab.serve.settings import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_PIXELS,
    DEFAULT_READ_TIMEOUT,
    missing_extra,
)

try:
    from fastapi import FastAPI, HTTPException, Query, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import HTMLResponse, JSONResponse, Response
except ImportError:
    raise missing_extra() from None
if find_spec("python_multipart") is None and find_spec("multipart") is None:
    raise missing_extra()

from fcnlab.serve.errors import detail, install_handlers
from fcnlab.serve.explain import ExplainView
from fcnlab.serve.limits import Limits
from fcnlab.serve.upload import read_upload

_FORMATS = "send a PNG, JPEG, BMP, TIFF or WebP file."
#: Seconds a client told "busy" (503) should wait before trying again.
RETRY_AFTER_S = 2
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
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    max_memory: int | None = None,
) -> FastAPI:
    """The demo app serving ``predictor``, shared by all requests; see the module docstring."""
    limits = Limits(max_bytes, max_pixels, max_concurrent, read_timeout, max_memory)
    handler = UploadHandler(predictor, ExplainView(predictor.source))
    page = resources.files("fcnlab.serve").joinpath("static/index.html").read_text("utf-8")
    app = FastAPI(title="fcnlab demo", summary=f"Semantic segmentation with {predictor.card.name}")
    install_handlers(app)
    busy = Gate(limits.max_concurrent)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health")
    async def health() -> dict[str, Any]:  # async: answered on the event loop, never queued
        return {**health_of(predictor, limits, busy.active), "explain": handler.can_explain}

    @app.post("/predict", response_class=Response, openapi_extra=_UPLOAD_BODY)
    async def predict(
        request: Request,
        response_format: Annotated[Literal["png", "json"], Query(alias="format")] = "png",
        with_image: Annotated[bool, Query(alias="image")] = False,
    ) -> Response:
        if not busy.enter():
            return busy.refusal()
        try:
            want_json = response_format == "json"
            name, data = await read_upload(request, limits.max_bytes, limits.read_timeout)
            header = check_pixels(data, name, limits.max_pixels)
            tile = plan_tile(predictor, header, limits.max_memory, name, want_json)
            result = await run_in_threadpool(handler, data, name, want_json, tile, with_image)
        finally:
            busy.leave()
        if want_json:
            return JSONResponse(result)
        return Response(result["mask_png"], media_type="image/png")

    @app.post("/explain", openapi_extra=_UPLOAD_BODY)
    async def explain(request: Request) -> JSONResponse:
        if not handler.can_explain:
            return detail(handler.explain_view.unavailable(), 501)
        if not busy.enter():
            return busy.refusal()
        try:
            name, data = await read_upload(request, limits.max_bytes, limits.read_timeout)
            check_pixels(data, name, limits.max_pixels)
            result = await run_in_threadpool(handler.explain, data, name)
        finally:
            busy.leave()
        return JSONResponse(result)

    return app


def health_of(predictor: Predictor, limits: Limits, busy: int) -> dict[str, Any]:
    card = predictor.card
    memory = limits.max_memory
    return {
        "status": "ok",
        "model": card.name,
        "backend": predictor.backend,
        "classes": list(card.classes),
        "palette": [list(c) for c in card.palette],
        "normalization": {"mean": list(card.mean), "std": list(card.std)},
        "max_bytes": limits.max_bytes,
        "max_pixels": limits.max_pixels,
        "max_concurrent": limits.max_concurrent,
        "read_timeout": limits.read_timeout,
        "max_memory_mb": None if memory is None else round(memory / MIB, 1),
        "busy": busy,
    }


class Gate:
    """At most ``size`` requests inside; used from the event loop only, so no lock."""

    def __init__(self, size: int) -> None:
        self.size, self.active = size, 0

    def enter(self) -> bool:
        if self.active >= self.size:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active -= 1

    def refusal(self) -> JSONResponse:
        message = (
            f"the server is busy with {self.active} uploads, its limit; "
            f"try again in {RETRY_AFTER_S} s."
        )
        # No "Connection: close": uvicorn then reads and drops the unread body (holding none
        # of it), so a client still sending its upload gets this answer instead of a reset.
        return detail(message, 503, {"Retry-After": str(RETRY_AFTER_S)})


def plan_tile(
    predictor: Predictor, header: ImageHeader, max_memory: int | None, name: str, overlay: bool
) -> tuple[int, int] | None:
    """The tile the memory plan picks (None: whole); 413 when even tiles do not fit."""
    if max_memory is None:
        return None
    try:
        return plan_image(predictor, header, max_memory, name, overlay=overlay).tile
    except FcnlabError as error:
        raise HTTPException(413, str(error)) from None


class UploadHandler:
    """Decode, predict (or explain) and encode one upload at a time; callable from any
    thread. Explaining shares the lock, so it never runs beside a prediction."""

    def __init__(self, predictor: Predictor, explain_view: ExplainView | None = None) -> None:
        self.predictor = predictor
        self.explain_view = explain_view or ExplainView(predictor.source)
        self._lock = threading.Lock()

    @property
    def can_explain(self) -> bool:
        return self.explain_view.available

    def __call__(
        self,
        data: bytes,
        name: str,
        want_json: bool,
        tile: tuple[int, int] | None = None,
        with_image: bool = False,
    ) -> dict[str, Any]:
        """``{"mask_png": bytes}``, or the JSON answer of ``/predict`` when ``want_json``;
        503 when the allocator runs out of memory."""
        return self._locked(name, lambda: self._segment(data, name, want_json, tile, with_image))

    def explain(self, data: bytes, name: str) -> dict[str, Any]:
        """The JSON answer of ``/explain``; 503 when the allocator runs out of memory."""
        return self._locked(name, lambda: self.explain_view(decode_image_bytes(data, name)))

    def _locked(self, name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            try:
                return work()
            except (MemoryError, RuntimeError) as error:
                if not is_out_of_memory(error):
                    raise
                message = f"the server ran out of memory on {name}; send a smaller image."
                raise HTTPException(503, message, {"Retry-After": str(RETRY_AFTER_S)}) from None

    def _segment(
        self,
        data: bytes,
        name: str,
        want_json: bool,
        tile: tuple[int, int] | None,
        with_image: bool = False,
    ) -> dict[str, Any]:
        card = self.predictor.card
        image = decode_image_bytes(data, name)
        prediction = self.predictor.predict(image, tile=tile)
        mask_png = encode_mask(prediction.mask, card.palette)
        if not want_json:
            return {"mask_png": mask_png}
        blend = overlay(np.asarray(image), prediction.mask, card.palette, card.ignore_index)
        answer = {
            "width": image.width,
            "height": image.height,
            "classes": list(card.classes),
            "palette": [list(c) for c in card.palette],
            "fractions": prediction.fractions(),
            "overlay": data_url(encode_png(Image.fromarray(blend))),
            "mask": data_url(mask_png),
        }
        if with_image:
            answer["image"] = data_url(encode_jpeg(image), "image/jpeg")
        return answer


def check_pixels(data: bytes, name: str, max_pixels: int) -> ImageHeader:
    """Read only the image header: 413 over ``max_pixels``, 415 when not an image."""
    try:
        with Image.open(BytesIO(data)) as image:
            header = ImageHeader(image.width, image.height, image.mode)
            width, height = header.width, header.height
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
    return header


def encode_mask(mask: np.ndarray, palette: tuple[tuple[int, int, int], ...]) -> bytes:
    """The mask as ``fcnlab predict`` writes it (indexed PNG), encoded in memory."""
    return encode_png(mask_image(mask, palette))


def encode_png(image: Image.Image) -> bytes:
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def encode_jpeg(image: Image.Image, quality: int = 92) -> bytes:
    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64," + base64.b64encode(data).decode("ascii")
