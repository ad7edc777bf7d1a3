"""The one error format of API.md: {"code", "status", "message", "errors"?} for every error."""

from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Flask, g, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a user can cause; raised by services, turned into the API.md format by the handler."""

    def __init__(self, code: int, message: str, errors: dict | None = None, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors
        self.extra = extra


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, f"{what} not found")


def forbidden(message: str = "your role or mission does not allow this") -> ApiError:
    return ApiError(403, message)


def conflict(message: str, **extra) -> ApiError:
    return ApiError(409, message, **extra)


def invalid(field: str, message: str, location: str = "json") -> ApiError:
    """422 naming the field (dotted paths become nested keys, as marshmallow reports them)."""
    node: dict = {}
    root = node
    parts = field.split(".")
    for part in parts[:-1]:
        node[part] = {}
        node = node[part]
    node[parts[-1]] = [message]
    return ApiError(422, f"invalid {field}: {message}", errors={location: root})


def payload(code: int, message: str | None = None, errors: dict | None = None, **extra) -> dict:
    status = HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else "Error"
    body = {"code": code, "status": status, "message": message or status}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def respond(code: int, message: str | None, errors=None, headers=None, **extra):
    """The API.md error body as a response."""
    response = jsonify(payload(code, message, errors, **extra))
    response.status_code = code
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return respond(exc.code, exc.message, exc.errors, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        data = getattr(exc, "data", None) or {}
        errors = data.get("errors") or data.get("messages")
        message = data.get("message")
        if not message:
            if exc.code == 422 and errors:
                message = "the request has invalid fields: see errors"
            elif exc.code == 400 and errors:
                message = "malformed request: see errors"
            elif exc.code == 415:
                message = "unsupported content type: send application/json"
            elif exc.code == 413:
                message = "request body too large"
            else:
                message = exc.description if exc.description else None
        headers = dict(data.get("headers") or {})
        if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        return respond(exc.code or 500, message, errors, headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return _http_error(exc)
        request_id = getattr(g, "request_id", None)
        log.exception("unhandled error", extra={"request_id": request_id})
        from config.extensions import db

        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the database may be the failure
            log.warning("rollback after error failed", exc_info=True)
        if _is_database_unavailable(exc):
            return respond(503, "the database is unavailable; retry shortly", request_id=request_id)
        return respond(500, "internal error; the request id identifies it in the logs", request_id=request_id)


def _is_database_unavailable(exc: Exception) -> bool:
    from sqlalchemy.exc import DBAPIError, OperationalError

    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)
