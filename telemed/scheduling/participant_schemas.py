"""Schemas of the invited participants (interpreters, second clinicians) and the caller's invitations."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.fields import Text
from core.lists import list_schema
from telemed.scheduling.models import KINDS, MODALITIES, PARTS, STATUSES
from telemed.scheduling.schemas import _validate_language


class ParticipantIn(Schema):
    user_id = Text(validate=validate.Length(min=1, max=36), metadata={"description": "a user of the mission"})
    username = Text(
        validate=validate.Length(min=1, max=80), metadata={"description": "or the user's username (one of the two)"}
    )
    part = Text(required=True, validate=validate.OneOf(PARTS))
    language = Text(
        load_default=None,
        allow_none=True,
        validate=_validate_language,
        metadata={"description": "ISO 639-1: required for an interpreter, absent for a clinician"},
    )

    @validates_schema
    def _one_user(self, data, **kwargs):
        if ("user_id" in data) == ("username" in data):
            raise ValidationError("give exactly one of user_id and username", field_name="user_id")


class ParticipantOut(Schema):
    id = fields.String()
    consultation_id = fields.String()
    user_id = fields.String()
    name = fields.String()
    part = fields.String(metadata={"enum": list(PARTS)})
    language = fields.String(allow_none=True)
    invited_by = fields.String()
    invited_at = fields.DateTime()
    expires_at = fields.DateTime(metadata={"description": "the consultation's end (a reschedule moves it)"})
    revoked_at = fields.DateTime(allow_none=True)
    active = fields.Boolean(metadata={"description": "in force: not revoked and the consultation not over"})


ParticipantList = list_schema(ParticipantOut, "ParticipantList")


class InvitedConsultation(Schema):
    id = fields.String()
    kind = fields.String(metadata={"enum": list(KINDS)})
    status = fields.String(metadata={"enum": list(STATUSES)})
    modality = fields.String(metadata={"enum": list(MODALITIES)})
    clinician_id = fields.String()
    clinician_name = fields.String(allow_none=True)
    start = fields.String()
    end = fields.String()


class InvitationOut(ParticipantOut):
    consultation = fields.Nested(InvitedConsultation)


InvitationList = list_schema(InvitationOut, "InvitationList")
