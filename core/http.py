"""Cross-cutting HTTP behaviour: request ids, gzip request bodies, content types, security headers,
ETags for cheap polling over slow field links, gzip answers, CORS (closed unless configured)."""

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


def accepts_form(view):
    """Mark a view that also takes application/x-www-form-urlencoded (the web hooks of SMS gateways and
    satellite relays post forms)."""
    view._accepts_form = True
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
        if encoding in ("", "identity"):
            return self.wsgi_app(environ, start_response)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if encoding not in ("gzip", "x-gzip", "deflate"):
            if not length and not chunked:
                return self.wsgi_app(environ, start_response)  # no body for the encoding to apply to
            return _plain_error(
                start_response,
                415,
                f"unsupported Content-Encoding {encoding[:40]!r}: send gzip, deflate or an uncompressed body",
            )
        if length > self.max_bytes:
            return _plain_error(start_response, 413, "request body too large (compressed)")
        # With Content-Length, read that much; chunked (no length), read to the end of the stream: either
        # way at most one byte above the cap, which is refused.
        raw = (
            _read(environ["wsgi.input"], min(length, self.max_bytes + 1) if length else self.max_bytes + 1)
            if length or chunked
            else b""
        )
        if len(raw) > self.max_bytes:
            return _plain_error(start_response, 413, "request body too large (compressed)")
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
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = False
        return self.wsgi_app(environ, start_response)


def _read(stream, limit: int) -> bytes:
    """Up to `limit` bytes of a WSGI input stream (read() may return less than asked before the end)."""
    chunks, size = [], 0
    while size < limit:
        chunk = stream.read(min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _plain_error(start_response, code: int, message: str):
    import json

    body = json.dumps(payload(code, message)).encode()
    reason = {400: "BAD REQUEST", 413: "REQUEST ENTITY TOO LARGE", 415: "UNSUPPORTED MEDIA TYPE"}[code]
    # Answered before Flask runs, so the security headers are added here too (a JSON answer's).
    start_response(
        f"{code} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *API_HEADERS.items()],
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
# A JSON answer gets only the headers that protect an API client (issue 16: the others are for pages, and
# cost 165 bytes on every answer over 2G): nosniff (a JSON body is never sniffed into a page, so framing,
# script and referrer policies have nothing to act on) and Cache-Control (no shared cache keeps it). Pages,
# downloads and every other content type keep SECURITY_HEADERS.
API_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
# Answers compressed when the client accepts gzip (API.md, second wave): JSON, GeoJSON, FHIR, CoT XML.
COMPRESS_MIN_BYTES = 300
COMPRESSIBLE = ("application/json", "application/xml", "text/xml")


def is_json(mimetype: str | None) -> bool:
    return bool(mimetype) and (mimetype in JSON_TYPES or mimetype.endswith("+json"))


def _compressible(mimetype: str | None) -> bool:
    return bool(mimetype) and (mimetype in COMPRESSIBLE or mimetype.endswith("+json") or mimetype.endswith("+xml"))


class TransportHeadersMiddleware:
    """The outermost layer: every answer carries the security headers, also those Flask never sees (the
    Socket.IO transport's, engine.io's), and an engine.io error (400 "Bad Request" in text/plain) is turned
    into the API.md error body. A websocket upgrade (101) is left alone."""

    def __init__(self, wsgi_app, socketio_path: str = "/socket.io"):
        self.wsgi_app = wsgi_app
        self.socketio_path = socketio_path.rstrip("/") + "/"

    def __call__(self, environ, start_response):
        transport = (environ.get("PATH_INFO") or "").startswith(self.socketio_path)
        replaced: dict = {}

        def _start(status, headers, exc_info=None):
            code = int(status.split(" ", 1)[0]) if status[:3].isdigit() else 0
            if code == 101:
                return start_response(status, headers, exc_info)
            names = {name.lower() for name, _ in headers}
            content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
            # A JSON answer needs only the headers that protect an API client; anything else gets them all.
            wanted = API_HEADERS if is_json(content_type.split(";")[0].strip()) else SECURITY_HEADERS
            headers = list(headers) + [(k, v) for k, v in wanted.items() if k.lower() not in names]
            if transport and code >= 400 and "json" not in content_type:
                import json

                replaced["body"] = json.dumps(payload(code, _engineio_message(code))).encode()
                headers = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
                headers += [("Content-Type", "application/json"), ("Content-Length", str(len(replaced["body"])))]
            return start_response(status, headers, exc_info)

        result = self.wsgi_app(environ, _start)
        if "body" in replaced:
            if hasattr(result, "close"):
                result.close()
            return [replaced["body"]]
        return result


def _engineio_message(code: int) -> str:
    return {
        400: "bad Socket.IO transport request: unknown or expired session id, or a malformed packet",
        403: "the Socket.IO connection was refused (origin not allowed)",
    }.get(code, "Socket.IO transport error")


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
    app.wsgi_app = TransportHeadersMiddleware(GzipRequestMiddleware(app.wsgi_app, settings.MAX_BODY_KB * 1024))
    allowed_origins = {o.strip() for o in settings.CORS_ORIGINS.split(",") if o.strip()}

    # Registered first, so it runs last (after the ETag is taken on the identity body, and the headers).
    @app.after_request
    def _compress(response):
        if (
            response.direct_passthrough
            or response.is_streamed
            or response.status_code in (204, 304)
            or request.method == "HEAD"
            or "Content-Encoding" in response.headers
            or not _compressible(response.mimetype)
            or request.accept_encodings.quality("gzip") <= 0
        ):
            return response
        body = response.get_data()
        if len(body) < COMPRESS_MIN_BYTES:
            return response
        # Level 6: a fair trade of size for time on these small bodies.
        response.set_data(gzip.compress(body, compresslevel=6, mtime=0))
        response.headers["Content-Encoding"] = "gzip"
        response.vary.add("Accept-Encoding")
        etag, weak = response.get_etag()
        if etag and not weak:
            # Another representation of the same content: a weak validator (If-None-Match compares weakly).
            response.set_etag(etag, weak=True)
        return response

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
        if (
            handler is not None
            and getattr(handler, "_accepts_form", False)
            and request.mimetype == "application/x-www-form-urlencoded"
        ):
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
        # A JSON answer gets the headers that protect an API client; pages and everything else get them all.
        for key, value in (API_HEADERS if is_json(response.mimetype) else SECURITY_HEADERS).items():
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

    from core import inputs

    inputs.register(app, settings)

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
