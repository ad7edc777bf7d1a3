"""Marshmallow fields shared by every domain's schemas."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from marshmallow import ValidationError, fields, validate

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Times outside this range are typing mistakes, and near year 1 or 9999 date arithmetic would overflow.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)


class Text(fields.String):
    """A string PostgreSQL can store and JSON can echo: no NUL character, no lone surrogate (a body with
    either would otherwise fail in the database, not in validation: a 500 instead of a 422)."""

    default_error_messages = {"unstorable": "contains a NUL character or an invalid (lone surrogate) character"}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if UNSTORABLE.search(text):
            raise self.make_error("unstorable")
        return text


class Time(fields.AwareDateTime):
    """An ISO 8601 time with an offset, between 2000 and 2100."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST <= moment < LATEST:
            raise ValidationError("must be between 2000-01-01 and 2100-01-01")
        return moment


def unique(values) -> None:
    """Validator of a list: each value at most once."""
    if len(set(values)) != len(values):
        raise ValidationError("each value at most once")


def Id(**kwargs):  # noqa: N802 - reads like a field class
    """An id field: the one id format of core.db.is_id, as a 422 naming the field otherwise."""
    return fields.String(
        validate=validate.Regexp(r"^[A-Za-z0-9._-]{1,64}$", error="not an id: letters, digits, '.', '_' or '-'"),
        **kwargs,
    )
