"""gunicorn's own error answers (414 URI Too Long, 431 Request Header Fields Too Large, 400 for a malformed
request line...) in the API.md error format, with the security headers, instead of gunicorn's HTML page.
These are written by gunicorn before the application runs; config/gunicorn.py installs this."""

from __future__ import annotations

import json
from http import HTTPStatus


def write_error(sock, status_int, reason, mesg):
    from gunicorn import util

    from core.http import SECURITY_HEADERS

    try:
        phrase = HTTPStatus(int(status_int)).phrase
    except ValueError:
        phrase = str(reason)
    # The message names the limit, never echoes the request (which may be megabytes of attacker input).
    messages = {
        414: "the request line (URI) is too long",
        431: "the request headers are too large or too many",
        400: "malformed HTTP request",
    }
    body = json.dumps(
        {"code": int(status_int), "status": phrase, "message": messages.get(int(status_int), phrase)}
    ).encode()
    head = [
        f"HTTP/1.1 {int(status_int)} {phrase}",
        "Connection: close",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ] + [f"{k}: {v}" for k, v in SECURITY_HEADERS.items()]
    util.write_nonblock(sock, ("\r\n".join(head) + "\r\n\r\n").encode("latin1") + body)


def install() -> None:
    from gunicorn import util

    util.write_error = write_error
