"""Cursor (keyset) pagination for every list: {"items": [...], "next_cursor": str | None}.

A cursor is the sort key of the last item seen, so inserts between pages never shift
or repeat items (unlike OFFSET).
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from datetime import datetime

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import and_, or_
from sqlalchemy.types import TypeDecorator

from core.errors import invalid
from core.fields import UNSTORABLE

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# A cursor this list issued is a few sort keys: a longer one is forged.
MAX_CURSOR = 1024
# Integer sort keys are 64-bit in the database; a forged one beyond would fail there (a 500), not here.
INT64 = 2**63


class PageArgs(Schema):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(load_default=None, validate=validate.Length(max=MAX_CURSOR))


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
    """The `size` values of a cursor this code issued; a forged one is a 422 naming `cursor`. Each value is a
    scalar the database can compare: an aware time within the accepted range, a storable string, a 64-bit
    integer, a finite float, a boolean or null (lists that use decode_cursor themselves get this too)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != size:
            raise ValueError
        decoded = [_decode_value(v) for v in values]
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError, RecursionError, OverflowError):
        raise _forged() from None
    for value in decoded:
        if not _plausible(value):
            raise _forged()
    return decoded


def _forged():
    return invalid("cursor", "not a cursor returned by this list", location="query")


def _plausible(value) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -INT64 <= value < INT64
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return not UNSTORABLE.search(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return False
        from core.inputs import check_time

        try:
            check_time(value)
        except ValidationError:
            return False
        return True
    return False  # a list or an object: no sort key is one


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


def where_given(query, *filters):
    """`query` narrowed by a list's optional filters: each (column, value) keeps the rows whose column equals
    the value; a value not given (None or "", a query argument left out) keeps them all."""
    for column, value in filters:
        if value:
            query = query.where(column == value)
    return query


def _check_cursor_value(key: Key, value) -> None:
    """A forged cursor whose value does not fit its column (a string for a time, ...) is a 422, not a 500."""
    column_type = key.column.type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    try:
        expected = column_type.python_type
    except (AttributeError, NotImplementedError):
        return
    if value is None or not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise _forged()


__all__ = ["PageArgs", "page_schema", "paginate", "where_given", "Key", "ValidationError"]
