"""Cross-cutting HTTP behaviour: request ids, gzip request bodies, content types, security headers,
ETags for cheap polling over slow field links, CORS (closed unless configured)."""

from __future__ import annotations

import gzip
import io
import secrets
import zlib

from flask import Flask, g, request
from werkzeug.exceptions import NotFound, RequestEntityTooLarge, UnsupportedMediaType

from core.errors import ApiError, payload
from core.fields import UNSTORABLE

JSON_TYPES = ("application/json",)


def accepts_multipart(view):
    """Mark a view that takes multipart/form-data (uploads) instead of JSON."""
    view._accepts_multipart = True
    return view


def page(view):
    """Mark a view that serves the web front end (HTML pages, their scripts, styles and the service worker):
    it gets PAGE_CSP instead of the API's `default-src 'none'`, and revalidated caching instead of no-store."""
    view._page = True
    return view


def view_handler(app: Flask):
    """The function that will answer this request (a MethodView's method, or a plain view), or None."""
    view = app.view_functions.get(request.endpoint) if request.endpoint else None
    view_class = getattr(view, "view_class", None)
    return getattr(view_class, request.method.lower(), None) if view_class else view


class GzipRequestMiddleware:
    """Inflate `Content-Encoding: gzip` request bodies (field clients compress), with a size cap so a
    small compressed bomb cannot exhaust memory."""

    def __init__(self, wsgi_app, max_bytes: int):
        self.wsgi_app = wsgi_app
        self.max_bytes = max_bytes

    def __call__(self, environ, start_response):
        encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            raw = environ["wsgi.input"].read(min(length, self.max_bytes + 1)) if length else b""
            try:
                if encoding == "deflate":
                    inflater = zlib.decompressobj()
                    body = inflater.decompress(raw, self.max_bytes + 1)
                else:
                    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
                        body = stream.read(self.max_bytes + 1)
            except (OSError, EOFError, zlib.error):
                return _plain_error(start_response, 400, "the body is not valid gzip")
            if len(body) > self.max_bytes:
                return _plain_error(start_response, 413, "request body too large once decompressed")
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_CONTENT_ENCODING", None)
        return self.wsgi_app(environ, start_response)


def _plain_error(start_response, code: int, message: str):
    import json

    body = json.dumps(payload(code, message)).encode()
    reason = {400: "BAD REQUEST", 413: "REQUEST ENTITY TOO LARGE"}[code]
    # Answered before Flask runs, so the security headers are added here too.
    start_response(
        f"{code} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *SECURITY_HEADERS.items()],
    )
    return [body]


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}


# The pages (web/): everything from this origin only, no inline script or style, no other origin at all (the
# console must work air-gapped). 'self' in connect-src also covers same-origin ws:/wss: (CSP Level 3; the
# browser tests check the Socket.IO websocket connects under it). data: images are the styles' own icons,
# blob: images the offline map tiles decoded in the page.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; worker-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def register(app: Flask, settings) -> None:
    app.wsgi_app = GzipRequestMiddleware(app.wsgi_app, settings.MAX_BODY_KB * 1024)
    allowed_origins = {o.strip() for o in settings.CORS_ORIGINS.split(",") if o.strip()}

    @app.before_request
    def _request_id():
        g.request_id = request.headers.get("X-Request-ID", "")[:64] or secrets.token_hex(8)

    @app.before_request
    def _unstorable_input():
        # No id, path or query value can hold a NUL or a lone surrogate: PostgreSQL would fail on it (a 500)
        # where the right answer is "unknown" (path) or a named invalid parameter (query).
        if UNSTORABLE.search(request.path):
            raise NotFound("resource not found")
        for name, value in request.args.items(multi=True):
            if UNSTORABLE.search(value) or UNSTORABLE.search(name):
                raise ApiError(
                    422,
                    f"invalid query parameter {name!r}",
                    errors={"query": {name: ["contains a NUL character or an invalid character"]}},
                )
        return None

    @app.before_request
    def _content_type():
        if request.method not in ("POST", "PUT", "PATCH"):
            return None
        if not request.content_length and not request.headers.get("Transfer-Encoding"):
            return None
        if request.routing_exception is not None:
            return None  # 404/405 come first: a wrong method is 405 whatever the body
        handler = view_handler(app)
        if handler is not None and getattr(handler, "_accepts_multipart", False):
            if request.mimetype != "multipart/form-data":
                raise UnsupportedMediaType("unsupported content type: send multipart/form-data")
            return None
        if request.mimetype not in JSON_TYPES and not request.mimetype.endswith("+json"):
            raise UnsupportedMediaType("unsupported content type: send application/json")
        if request.content_length and request.content_length > settings.MAX_BODY_KB * 1024:
            raise RequestEntityTooLarge(f"the JSON body is larger than {settings.MAX_BODY_KB} KB")
        return None

    @app.after_request
    def _headers(response):
        if request.endpoint and getattr(view_handler(app), "_page", False):
            response.headers["Content-Security-Policy"] = PAGE_CSP
            response.headers.setdefault("Cache-Control", "no-cache")
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if request.path.startswith("/openapi") or request.path.startswith("/docs"):
            response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Request-ID"] = g.get("request_id", "")
        origin = request.headers.get("Origin")
        if origin and origin in allowed_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Idempotency-Key"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
        return response

    @app.after_request
    def _etag(response):
        # Cheap polling: GETs carry an ETag; If-None-Match with the same one gets 304 and no body.
        if (
            request.method == "GET"
            and response.status_code == 200
            and response.mimetype
            and "json" in response.mimetype
            and not response.direct_passthrough
        ):
            response.add_etag()
            # A view that sets g.no_store (psychotherapy notes) is never stored by anyone.
            response.headers["Cache-Control"] = "no-store" if g.get("no_store") else "private, no-cache"
            response.make_conditional(request)
        return response
