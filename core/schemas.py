from marshmallow import Schema, fields, validate

from core.models import ROLES
from core.pagination import PageArgs, page_schema


class LoginIn(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=80))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024))


class UserOut(Schema):
    id = fields.String()
    username = fields.String()
    display_name = fields.String(allow_none=True)
    role = fields.String()
    mission_id = fields.String()
    superadmin = fields.Boolean()
    active = fields.Boolean()
    created_at = fields.DateTime()


class LoginOut(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer(metadata={"description": "seconds"})
    user = fields.Nested(UserOut)


class UserIn(Schema):
    username = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9._-]{3,80}$", error="3-80 characters: letters, digits, '.', '_' or '-'"),
    )
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=10, max=1024, error="at least 10 characters")
    )
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    mission_id = fields.String(required=True, validate=validate.Length(max=36))
    display_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    superadmin = fields.Boolean(load_default=False)


class UserListArgs(PageArgs):
    role = fields.String(validate=validate.OneOf(ROLES))
    mission_id = fields.String()


UserPage = page_schema(UserOut, "UserPage")


class MissionIn(Schema):
    code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z0-9-]{2,32}$", error="2-32 characters: upper-case letters, digits or '-'"),
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    lat = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=-90, max=90))
    lon = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=-180, max=180))
    timezone = fields.String(load_default="UTC", validate=validate.Length(max=64))


class MissionOut(Schema):
    id = fields.String()
    code = fields.String()
    name = fields.String()
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)
    timezone = fields.String()
    created_at = fields.DateTime()


MissionPage = page_schema(MissionOut, "MissionPage")


class AuditArgs(PageArgs):
    subject_id = fields.String()
    actor_id = fields.String()
    action = fields.String()


class AuditOut(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor_id = fields.String(allow_none=True)
    mission_id = fields.String(allow_none=True)
    action = fields.String()
    subject_type = fields.String()
    subject_id = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    detail = fields.Dict(allow_none=True)


AuditPage = page_schema(AuditOut, "AuditPage")


class ReadyOut(Schema):
    status = fields.String(metadata={"enum": ["ok", "degraded"]})
    database = fields.String(metadata={"enum": ["ok", "error"]})
    redis = fields.String(metadata={"enum": ["ok", "error", "disabled"]})
