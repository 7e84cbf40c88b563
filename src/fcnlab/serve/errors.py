"""Every error of the demo server as JSON ``{"detail": "<one sentence>"}``.

- :func:`install_handlers` gives the app handlers for user errors (400), request validation
  (422, one sentence instead of FastAPI's list), Starlette's bare ``Not Found``-style
  details (a sentence naming the path) and anything unexpected (500).
- :data:`INVALID_HTTP`: the sentence :class:`~fcnlab.serve.protocol.JsonH11Protocol` answers
  for a request uvicorn cannot parse.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fcnlab.errors import FcnlabError

INVALID_HTTP = "the request is not valid HTTP/1.1 (e.g. a malformed Content-Length); fix it."


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FcnlabError, _user_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def detail(message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


async def _user_error(request: Request, error: Exception) -> JSONResponse:
    """A :class:`FcnlabError` from decoding or predicting: 400 with its sentence."""
    return detail(str(error), 400)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {}
    where = " ".join(str(part) for part in first.get("loc", ()))
    where = where.replace("query ", "query parameter ").strip() or "the request"
    message = str(first.get("msg", "is invalid")).rstrip(".")
    given = first.get("input")
    given = f", not {given!r}" if isinstance(given, str | int | float) else ""
    return detail(f"{where}: {message[:1].lower()}{message[1:]}{given}.", 422)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    text = str(error.detail)
    if text == HTTPStatus(error.status_code).phrase:  # Starlette's bare phrase: make a sentence
        text = f"{request.method} {request.url.path} answers {error.status_code} {text}; " + (
            "the demo serves GET /, GET /health, POST /predict and POST /explain."
        )
    return detail(text, error.status_code, error.headers)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    return detail(f"the server failed on this request ({type(error).__name__}); see its log.", 500)
