"""The envelope of a list answered whole, not paged: {"items": [...]} (a paged list: core.pagination.page_schema)."""

from __future__ import annotations

from marshmallow import Schema, fields


def list_schema(item_schema, name: str):
    """The envelope for an item schema, named (one OpenAPI component per list)."""
    return type(name, (Schema,), {"items": fields.List(fields.Nested(item_schema), required=True)})
