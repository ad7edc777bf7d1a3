"""Cursor (keyset) pagination for every list: {"items": [...], "next_cursor": str | None}.

A cursor is the sort key of the last item seen, so inserts between pages never shift
or repeat items (unlike OFFSET).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import and_, or_
from sqlalchemy.types import TypeDecorator

from core.errors import invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class PageArgs(Schema):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(load_default=None)


def page_schema(item_schema, name: str | None = None):
    """The list envelope for an item schema (one OpenAPI component per list)."""
    return type(
        name or f"{item_schema.__name__.removesuffix('Out')}Page",
        (Schema,),
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next_cursor": fields.String(allow_none=True, required=True),
        },
    )


def _encode_value(value):
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    return value


def _decode_value(value):
    if isinstance(value, dict) and "t" in value:
        return datetime.fromisoformat(value["t"])
    return value


def encode_cursor(values: list) -> str:
    raw = json.dumps([_encode_value(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != size:
            raise ValueError
        return [_decode_value(v) for v in values]
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError):
        raise invalid("cursor", "not a cursor returned by this list", location="query") from None


@dataclass
class Key:
    """One sort key: an expression, its direction, and how to read it off a row."""

    column: object
    descending: bool = False
    attr: str | None = None

    def value_of(self, row):
        name = self.attr or self.column.key
        return getattr(row, name)


def paginate(query, keys: list[Key], *, limit: int = DEFAULT_LIMIT, cursor: str | None = None, session=None):
    """Run `query` (a select()) ordered by `keys` (the last one unique) from `cursor`."""
    from config.extensions import db

    session = session or db.session
    if cursor:
        values = decode_cursor(cursor, len(keys))
        for key, value in zip(keys, values, strict=False):
            _check_cursor_value(key, value)
        clauses = []
        for i, key in enumerate(keys):
            equal = [keys[j].column == values[j] for j in range(i)]
            beyond = key.column < values[i] if key.descending else key.column > values[i]
            clauses.append(and_(*equal, beyond))
        query = query.where(or_(*clauses))
    query = query.order_by(*[k.column.desc() if k.descending else k.column.asc() for k in keys])
    rows = list(session.execute(query.limit(limit + 1)).scalars())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([k.value_of(rows[-1]) for k in keys])
    return {"items": rows, "next_cursor": next_cursor}


def _check_cursor_value(key: Key, value) -> None:
    """A forged cursor whose value does not fit its column (a string for a time, ...) is a 422, not a 500."""
    column_type = key.column.type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    try:
        expected = column_type.python_type
    except (AttributeError, NotImplementedError):
        return
    if value is None or not isinstance(value, expected) or (isinstance(value, datetime) and value.tzinfo is None):
        raise invalid("cursor", "not a cursor returned by this list", location="query")


__all__ = ["PageArgs", "page_schema", "paginate", "Key", "ValidationError"]
