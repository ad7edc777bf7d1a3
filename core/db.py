"""Column types and helpers shared by every domain's models."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from functools import lru_cache

from sqlalchemy import JSON, String, Text, cast, type_coerce
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import DateTime, TypeDecorator

from core import clock


def new_id() -> str:
    return str(uuid.uuid4())


# What an id in a path or a body may look like (UUIDs, and the shorter ids of the demo and of tests). Anything
# else is unknown and never reaches the database: a NUL in a query parameter is a PostgreSQL error, not a 404.
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def is_id(value) -> bool:
    """The one id validator: True for a string that can name a stored row."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def one_of(column: str, values) -> str:
    """The SQL of a CHECK constraint: column IN ('a', 'b', ...)."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on SQLite (which stores naive) and PostgreSQL (timestamptz) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError("UTCDateTime needs a datetime")
        value = clock.as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# JSON on SQLite, JSONB on PostgreSQL.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")


class _FrozenSetOfJSON(TypeDecorator):
    impl = Text
    cache_ok = True

    def process_result_value(self, value, dialect):
        return _frozen_set(value)


@lru_cache(maxsize=4096)
def _frozen_set(text: str | None) -> frozenset:
    return frozenset(json.loads(text) or ()) if text is not None else frozenset()


def as_frozen_set(column):
    """A JSON list column read as a frozenset, each distinct value parsed once per process: for reads of many
    rows that share a few values (a fleet's capabilities), no json.loads and no new set per row."""
    return type_coerce(cast(column, Text), _FrozenSetOfJSON()).label(column.key)


def IdColumn():  # noqa: N802 - reads like a type
    from sqlalchemy.orm import mapped_column

    return mapped_column(String(36), primary_key=True, default=new_id)


def commit_keeping_loaded(session) -> None:
    """Commit without expiring what the session holds, for a caller that answers from the objects it has
    just written (their attribute values are what was stored; anything not loaded still loads on access)."""
    real = session() if callable(session) else session  # a scoped session (db.session) or a Session
    previous, real.expire_on_commit = real.expire_on_commit, False
    try:
        real.commit()
    finally:
        real.expire_on_commit = previous
