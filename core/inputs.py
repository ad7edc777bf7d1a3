"""No 500 from input (issue 17, items 4 and 5): the classes of input that used to reach code that cannot take
them are stopped here, once, for every endpoint of every domain.

- JSON bodies (flask-smorest's parser, so inside the view and after the rate limiter has counted the
  request): nesting deeper than MAX_DEPTH is a 400 (a 1,000-deep array raised RecursionError); any string,
  key or value, holding a NUL character or a lone surrogate is a 422 naming its path (PostgreSQL cannot store
  either, and a lone surrogate cannot be encoded in a response). The JSON parser turns a RecursionError into
  an ordinary parse error, so code that parses silently (the login rate limiter's key) gets "no body"
  instead of an exception, and the request is still counted.
- Body size without Content-Length (`Transfer-Encoding: chunked`): a JSON body is read with the JSON limit
  (MAX_BODY_KB), not the upload limit, and is refused with 413 above it.
- Numbers: in a JSON body a number must be a JSON number (a numeric string is a 422), for every field.
- Times: every marshmallow DateTime (AwareDateTime, NaiveDateTime) refuses a time that falls outside
  EARLIEST..LATEST once converted to UTC (0001-01-01T00:00:00+05:00 and 9999-12-31T23:59:59-05:00
  overflowed in the conversion or in the arithmetic after it).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from datetime import datetime, timezone

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import fields
from webargs.core import is_json, missing, parse_json
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from core.errors import ApiError
from core.fields import UNSTORABLE

MAX_DEPTH = 32
# Every time that comes in is in this range once in UTC (a typing mistake otherwise, and near year 1 or 9999
# any date arithmetic overflows).
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
TIME_RANGE_MESSAGE = "must be between 1900-01-01 and 2200-01-01 once converted to UTC"


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with too deep a document reported as malformed (ValueError), never as RecursionError."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON document is nested too deeply") from None


# In JSON text a NUL can only be the escape \u0000 (a raw control character is a parse error) and a lone
# surrogate only an escape \ud800-\udfff (its raw bytes are not UTF-8): a body with neither needs no scan.
_ESCAPES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def check_document(document, max_depth: int = MAX_DEPTH, raw: bytes | None = None) -> None:
    """Raise BadRequest when `document` is nested deeper than max_depth, ApiError(422) naming the path of the
    first string (key or value) that holds a NUL character or a lone surrogate. With the `raw` JSON text, the
    walk is skipped when the text cannot hold either (few brackets, no such escapes): most bodies."""
    strings = raw is None or _ESCAPES.search(raw) is not None
    depth_possible = raw is None or raw.count(b"[") + raw.count(b"{") > max_depth
    if not strings and not depth_possible:
        return
    stack = [(document, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > max_depth:
                raise BadRequest(f"the JSON body is nested deeper than {max_depth} levels")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, value in items:
                if strings and isinstance(key, str) and UNSTORABLE.search(key):
                    _unstorable(path + (key,), "a key here contains a NUL character or a lone surrogate")
                if strings or isinstance(value, (dict, list)):
                    stack.append((value, depth + 1, path + (key,)))
        elif isinstance(node, str) and UNSTORABLE.search(node):
            _unstorable(path, "contains a NUL character or an invalid (lone surrogate) character")


def _unstorable(path: tuple, message: str):
    parts = [_printable(p) for p in path] or ["_schema"]
    node: dict = {}
    root = node
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = [message]
    raise ApiError(422, f"invalid {'.'.join(map(str, parts))}: {message}", errors={"json": root})


def _printable(part) -> str | int:
    if isinstance(part, int):
        return part
    return UNSTORABLE.sub("\ufffd", part)


def _guard_datetimes() -> None:
    """Every DateTime field (and its subclasses) checks the UTC range after parsing."""
    if getattr(fields.DateTime, "_utc_range_guard", False):
        return
    original = fields.DateTime._deserialize

    def _deserialize(self, value, attr, data, **kwargs):
        moment = original(self, value, attr, data, **kwargs)
        if isinstance(moment, datetime):
            check_time(moment)
        return moment

    fields.DateTime._deserialize = _deserialize
    fields.DateTime._utc_range_guard = True


def check_time(moment: datetime) -> None:
    from marshmallow import ValidationError

    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    try:
        in_utc = aware.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise ValidationError(TIME_RANGE_MESSAGE) from None
    if not EARLIEST <= in_utc < LATEST:
        raise ValidationError(TIME_RANGE_MESSAGE)


_guard_datetimes()


# One rule for numbers: in a JSON document a number is a JSON number. "4.36" for location.lat is refused like
# "2" for a count always was (a 422 naming the field). Only what comes as text by nature (query strings,
# path segments, forms, headers) is parsed from strings: the parser below clears this while it loads them.
_JSON_DOCUMENT: contextvars.ContextVar[bool] = contextvars.ContextVar("medevac_json_document", default=True)


def _guard_numbers() -> None:
    if getattr(fields.Number, "_json_number_guard", False):
        return
    original = fields.Number._validated

    def _validated(self, value):
        if isinstance(value, str) and _JSON_DOCUMENT.get():
            raise self.make_error("invalid", input=value)
        return original(self, value)

    fields.Number._validated = _validated
    fields.Number._json_number_guard = True


_guard_numbers()


@contextlib.contextmanager
def text_input():
    """Load values that came as text by nature (a form post read by hand): numbers may be numeric strings."""
    token = _JSON_DOCUMENT.set(False)
    try:
        yield
    finally:
        _JSON_DOCUMENT.reset(token)


class Parser(FlaskParser):
    """flask-smorest's body parser (every @blp.arguments body, and the views that call load_json), with
    check_document applied. It runs inside the view, after the rate limiter has counted the request."""

    def parse(self, argmap, req=None, *, location=None, **kwargs):
        token = _JSON_DOCUMENT.set((location or self.location) == "json")
        try:
            return super().parse(argmap, req, location=location, **kwargs)
        finally:
            _JSON_DOCUMENT.reset(token)

    def _raw_load_json(self, req):
        if not is_json(req.mimetype):
            return missing
        raw = req.get_data(cache=True)
        try:
            document = parse_json(raw)
        except RecursionError:
            raise BadRequest(f"the JSON body is nested deeper than {MAX_DEPTH} levels") from None
        check_document(document, raw=raw)
        return document


def _install_parser() -> None:
    from flask_smorest.arguments import ArgumentsMixin

    if not isinstance(ArgumentsMixin.ARGUMENTS_PARSER, Parser):
        ArgumentsMixin.ARGUMENTS_PARSER = Parser()


_install_parser()


def register(app: Flask, settings) -> None:
    app.json = JSONProvider(app)
    json_limit = settings.MAX_BODY_KB * 1024

    @app.before_request
    def _json_body():
        if request.method not in ("POST", "PUT", "PATCH", "DELETE") or request.routing_exception is not None:
            return None
        if not request.is_json:
            return None  # the content-type check answers 415; multipart has the upload limit
        if request.content_length is None:
            # Chunked: no Content-Length to check up front, so the stream itself is limited: one byte above the
            # JSON limit is read (the stream stops there without an error), and refused below.
            request.max_content_length = json_limit + 1
        too_large = RequestEntityTooLarge(f"the JSON body is larger than {settings.MAX_BODY_KB} KB")
        try:
            raw = request.get_data(cache=True)
        except RequestEntityTooLarge:
            raise too_large from None
        if len(raw) > json_limit:  # read before this hook (by the rate limiter's key) under the upload limit
            raise too_large
        return None
