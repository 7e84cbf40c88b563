"""uvicorn's h11 protocol answering invalid HTTP with JSON ``{"detail": "<one sentence>"}``.

uvicorn parses requests itself, before the app sees them: a malformed ``Content-Length`` or
header line is answered 400 by the protocol layer, in plain text. Passed as
``uvicorn.Config(http=JsonH11Protocol)``, this subclass answers with the app's JSON instead.
"""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from fcnlab.serve.errors import INVALID_HTTP


class JsonH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with JSON instead of plain text for invalid HTTP (400)."""

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"detail": INVALID_HTTP}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()
