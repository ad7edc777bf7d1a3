"""Marshmallow fields shared by every domain's schemas."""
from __future__ import annotations

import re

from marshmallow import fields

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class Text(fields.String):
    """A string PostgreSQL can store and JSON can echo: no NUL character, no lone surrogate (a body with
    either would otherwise fail in the database, not in validation: a 500 instead of a 422)."""

    default_error_messages = {"unstorable": "contains a NUL character or an invalid (lone surrogate) character"}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if UNSTORABLE.search(text):
            raise self.make_error("unstorable")
        return text
