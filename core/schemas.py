from marshmallow import Schema, fields, validate

from core.fields import Text
from core.models import ROLES
from core.pagination import PageArgs, page_schema

EMAIL = "medic.ndongo@mission.example"


class LoginIn(Schema):
    username = Text(required=True, validate=validate.Length(min=1, max=80))
    password = Text(required=True, load_only=True, validate=validate.Length(min=1, max=1024))
    device = fields.Boolean(
        load_default=False,
        metadata={"description": "also issue a short device token (26 characters) for field devices on thin links"},
    )


class UserOut(Schema):
    id = fields.String()
    username = fields.String()
    display_name = fields.String(allow_none=True)
    role = fields.String()
    mission_id = fields.String()
    superadmin = fields.Boolean()
    active = fields.Boolean()
    phone = fields.String(allow_none=True, metadata={"description": "E.164: the SMS sender of this user"})
    imei = fields.String(allow_none=True, metadata={"description": "the satellite messenger of this user"})
    email = fields.String(
        allow_none=True, metadata={"description": "where reminders and invitations are mailed (lower-case)"}
    )
    created_at = fields.DateTime()


class LoginOut(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer(metadata={"description": "seconds"})
    device_token = fields.String(
        metadata={
            "description": "with device: true: a bearer token of 26 characters, same lifetime, mission-bound, revocable"
        }
    )
    user = fields.Nested(UserOut)


class UserIn(Schema):
    username = Text(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9._-]{3,80}$", error="3-80 characters: letters, digits, '.', '_' or '-'"),
    )
    password = Text(
        required=True, load_only=True, validate=validate.Length(min=10, max=1024, error="at least 10 characters")
    )
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    mission_id = Text(required=True, validate=validate.Length(max=36))
    display_name = Text(load_default=None, allow_none=True, validate=validate.Length(max=200))
    superadmin = fields.Boolean(load_default=False)
    email = Text(load_default=None, allow_none=True, validate=validate.Length(max=320), metadata={"example": EMAIL})


class UserPatch(Schema):
    """Change a user (admin of that mission). `active: false` disables the user at once (their tokens and open
    sockets stop working); `role`; `phone` (E.164: + and 7 to 15 digits; spaces, dots, dashes and brackets are
    dropped) and `imei` (15 digits) register the user's SMS and satellite-messenger senders; `email` where their
    reminders and invitations are mailed (stored lower-case, one user per address); null removes one."""

    active = fields.Boolean(truthy={True}, falsy={False})  # JSON true or false only, not "no" or 0
    role = fields.String(validate=validate.OneOf(ROLES))
    display_name = Text(allow_none=True, validate=validate.Length(max=200))
    phone = Text(allow_none=True, validate=validate.Length(max=32), metadata={"example": "+23670123456"})
    imei = Text(allow_none=True, validate=validate.Length(max=32), metadata={"example": "300234010753370"})
    email = Text(allow_none=True, validate=validate.Length(max=320), metadata={"example": EMAIL})


class UserListArgs(PageArgs):
    role = fields.String(validate=validate.OneOf(ROLES))
    mission_id = Text(validate=validate.Length(max=36))


UserPage = page_schema(UserOut, "UserPage")


class MissionIn(Schema):
    code = Text(
        required=True,
        validate=validate.Regexp(r"^[A-Z0-9-]{2,32}$", error="2-32 characters: upper-case letters, digits or '-'"),
    )
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    lat = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=-90, max=90))
    lon = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=-180, max=180))
    timezone = Text(load_default="UTC", validate=validate.Length(max=64))


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
    subject_id = Text(validate=validate.Length(max=64))
    actor_id = Text(validate=validate.Length(max=36))
    action = Text(validate=validate.Length(max=64))


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
    tak = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={
            "description": "TAK gateways (docs/tak.md), mission code and server -> connected | disconnected | silent; "
            "absent when none runs"
        },
    )
