"""Consent schemas: the texts in force, a consent given, the caller's records."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from core.lists import list_schema
from telemed.kinds import KINDS


class ConsentTextOut(Schema):
    kind = fields.String()
    version = fields.String()
    text = fields.String()
    sha256 = fields.String()


ConsentTextList = list_schema(ConsentTextOut, "ConsentTextList")


class ConsentIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    version = fields.String(required=True, validate=validate.Length(min=1, max=32))


class ConsentOut(Schema):
    id = fields.String()
    patient_id = fields.String()
    kind = fields.String()
    version = fields.String()
    text_sha256 = fields.String()
    recorded_at = fields.DateTime()


ConsentList = list_schema(ConsentOut, "ConsentList")
