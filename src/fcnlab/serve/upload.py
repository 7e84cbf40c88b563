"""Reading one upload of ``POST /predict`` into memory, within a size and a time limit.

Every refusal is an ``HTTPException`` whose detail is one sentence: 413 over the byte limit
(on ``Content-Length`` first, then on the bytes read), 408 when the body does not arrive in
time, 400 for a malformed form, an empty file or a client that hung up, 422 without a
``file`` field. Uploads are never written to disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

#: Room for the multipart boundaries and part headers around the file in a request body.
MULTIPART_OVERHEAD = 16 * 1024
#: Copies of an upload held at once while it is read and parsed (body, bytes, form, file).
UPLOAD_COPIES = 4
#: Headers of refusals sent before the body was read: the rest of it is not wanted.
CLOSE = {"Connection": "close"}


async def read_upload(request: Request, max_bytes: int, timeout: float) -> tuple[str, bytes]:
    """The filename (quoted) and bytes of the form field ``file``, read into memory only."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise HTTPException(422, "send the image as the multipart form field 'file'.")
    try:
        body = await asyncio.wait_for(
            read_body(request, max_bytes + MULTIPART_OVERHEAD, max_bytes), timeout
        )
    except TimeoutError:
        raise HTTPException(
            408, f"the upload did not arrive within {timeout:g} s; send it again.", CLOSE
        ) from None
    except ClientDisconnect:
        raise HTTPException(
            400, "the client disconnected before the upload was complete."
        ) from None
    return await _parse(request, body, max_bytes)


async def _parse(request: Request, body: bytes, max_bytes: int) -> tuple[str, bytes]:
    try:
        form = await InMemoryMultiPartParser(request.headers, _once(body), max_files=1).parse()
    except MultiPartException as error:
        raise HTTPException(400, f"the form data is malformed ({error.message}).") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise HTTPException(422, "the form has no file field named 'file'; attach the image.")
    data = await upload.read()
    await form.close()
    name = f"'{(upload.filename or 'upload')[:100]}'"
    if len(data) > max_bytes:
        raise HTTPException(413, too_big(f"{name} is {len(data)} bytes", max_bytes))
    if not data:
        raise HTTPException(400, f"{name} is empty; choose an image file.")
    return name, data


async def read_body(request: Request, limit: int, max_bytes: int) -> bytes:
    """The request body, refused with 413 once its declared or actual size passes ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, too_big(f"the request is {declared} bytes", max_bytes), CLOSE)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            message = too_big(f"the request passed {limit} bytes", max_bytes)
            raise HTTPException(413, message, CLOSE)
    return bytes(body)


class InMemoryMultiPartParser(MultiPartParser):
    """Starlette's multipart parser with file parts kept in memory, never spooled to disk.

    Safe because :func:`read_upload` bounds the whole body by ``max_bytes`` before parsing.
    """

    spool_max_size = 2**62


def too_big(what: str, max_bytes: int) -> str:
    limit = f"{max_bytes} bytes"
    if max_bytes >= 2**20:
        limit += f" ({max_bytes / 2**20:.1f} MiB)"
    return f"{what}, over the upload limit of {limit}; send a smaller image."


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body
