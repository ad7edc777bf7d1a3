"""Field-link endpoints (API.md "Added in the second wave"): message gateways, SMS intake (a generic JSON
form and the form posts of Twilio and SMSSync, each answered in its own format) and Iridium SBD intake
(RockBLOCK's web hook). The intake endpoints authenticate the gateway by its secret, not a user token."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from xml.sax.saxutils import escape

from flask import Response, current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.exceptions import Unauthorized

from casevac.links import outbound, service
from casevac.links.models import KINDS
from config.extensions import db
from core import auth, clock
from core.errors import ApiError
from core.fields import Text
from core.http import accepts_form
from core.inputs import text_input

blp = Blueprint(
    "casevac-links",
    __name__,
    url_prefix="/api/v1/casevac",
    description="Field links: SMS and satellite (Iridium SBD) intake of 9-lines, message gateways",
)

SECRET_DOC = (
    "Authorization: Bearer <gateway secret> (also accepted: HTTP Basic with the secret as password, "
    "for Twilio's credentials-in-URL; a `secret` form field, for SMSSync; `?secret=`, for RockBLOCK)"
)


class GatewayIn(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=80))
    kind = Text(required=True, validate=validate.OneOf(KINDS))


class GatewayOut(Schema):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    created_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)


class GatewayCreatedOut(GatewayOut):
    secret = fields.String(metadata={"description": "shown once: only its hash is stored"})


class GatewayList(Schema):
    items = fields.List(fields.Nested(GatewayOut))


# The SMS intakes' schemas load each channel's own field names as receive_sms's sender, message, message_id.
class SmsIn(Schema):
    sender = Text(
        required=True,
        data_key="from",
        validate=validate.Length(min=1, max=32),
        metadata={"description": "the sender, E.164", "example": "+23670123456"},
    )
    message = Text(required=True, data_key="text", validate=validate.Length(max=2000))
    message_id = Text(required=True, validate=validate.Length(min=1, max=64))


class SmsOut(Schema):
    reply = fields.String(allow_none=True, metadata={"description": "the text to send back to the sender"})
    request_id = fields.String(allow_none=True)


class SbdIn(Schema):
    imei = Text(required=True, validate=validate.Regexp(r"^\d{15}$", error="15 digits"))
    momsn = fields.Integer(required=True, validate=validate.Range(min=0, max=65535))
    data = Text(
        required=True,
        validate=validate.Length(max=2 * 340 + 200),
        metadata={"description": "the message, hex-encoded (casevac.links.sbd format)"},
    )


# ---- gateways (admin) -----------------------------------------------------------------------------


@blp.route("/gateways")
class Gateways(MethodView):
    @blp.arguments(GatewayIn)
    @blp.response(201, GatewayCreatedOut)
    @blp.alt_response(409, description="a gateway of that name exists in the mission")
    def post(self, body):
        """Issue a message gateway secret (admin): `sms` for SMS gateways, `sbd` for satellite relays."""
        user = auth.current_user(roles={"admin"})
        gateway, secret = service.create_gateway(db.session, actor=user, **body)
        return {
            "id": gateway.id,
            "name": gateway.name,
            "kind": gateway.kind,
            "created_at": gateway.created_at,
            "revoked_at": None,
            "secret": secret,
        }

    @blp.response(200, GatewayList)
    def get(self):
        """The mission's gateways (admin), revoked ones included; never a secret."""
        return {"items": service.list_gateways(db.session, actor=auth.current_user(roles={"admin"}))}


@blp.route("/gateways/<gateway_id>")
class GatewayById(MethodView):
    @blp.response(204)
    def delete(self, gateway_id):
        """Revoke a gateway's secret (admin): refused at once on every intake endpoint."""
        user = auth.current_user(roles={"admin"})
        service.revoke_gateway(db.session, actor=user, gateway_id=gateway_id)
        return None


# ---- intake ---------------------------------------------------------------------------------------


def _secret() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme == "Bearer" and value.strip():
        return value.strip()
    if scheme == "Basic" and value.strip():
        try:
            return base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    if request.mimetype == "application/x-www-form-urlencoded" and request.form.get("secret"):
        return request.form["secret"]
    return request.args.get("secret") or None


def _gateway(kind: str):
    """The authenticated gateway of that kind, else 401 with WWW-Authenticate (as for a user token)."""
    try:
        return service.authenticate(db.session, secret=_secret(), kind=kind)
    except ApiError as exc:
        error = Unauthorized(exc.message)
        error.data = {"message": exc.message, "headers": {"WWW-Authenticate": "Bearer"}}
        raise error from None


def _load(schema: Schema, data) -> dict:
    location = "form" if request.mimetype == "application/x-www-form-urlencoded" else "json"
    try:
        if location == "form":
            with text_input():  # a form carries numbers as text
                return schema.load(data if isinstance(data, dict) else {})
        return schema.load(data if isinstance(data, dict) else {})
    except ValidationError as exc:
        raise ApiError(422, "invalid message fields", errors={location: exc.messages}) from None


def _form_or_json() -> dict:
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _body_doc(schema, form_fields: dict | None = None, json_too: bool = True) -> dict:
    content = {}
    if json_too:
        content["application/json"] = {"schema": schema}
    if form_fields:
        content["application/x-www-form-urlencoded"] = {"schema": {"type": "object", "properties": form_fields}}
    return {"requestBody": {"required": True, "content": content}}


def _answer_doc(description: str, media_type: str, schema_type: str) -> dict:
    """The 200 answer of an endpoint that answers in its gateway's own format, not one of our schemas."""
    return {
        "responses": {"200": {"description": description, "content": {media_type: {"schema": {"type": schema_type}}}}}
    }


@blp.route("/sms")
class Sms(MethodView):
    @blp.doc(security=[{"gatewaySecret": []}], description=SECRET_DOC, **_body_doc(SmsIn))
    @blp.response(200, SmsOut)
    @blp.alt_response(401, description="no, unknown or revoked gateway secret")
    @blp.alt_response(403, description="the sender is not registered (refused, logged, never filed)")
    @auth.public
    def post(self):
        """An SMS through a gateway (generic JSON form): file a text 9-line as its sender, complete lines 6-9,
        or answer STATUS; the same message_id again answers the same."""
        gateway = _gateway("sms")
        body = _load(SmsIn(), request.get_json(silent=True))
        answer = service.receive_sms(db.session, gateway=gateway, channel="sms", **body)
        if answer.refused:
            raise ApiError(
                403, "the sender is not registered: an admin adds its phone to a user (PATCH /api/v1/users/{id})"
            )
        return {"reply": answer.reply, "request_id": answer.request_id}


class TwilioIn(Schema):
    sender = Text(required=True, data_key="From", validate=validate.Length(min=1, max=32))
    message = Text(required=True, data_key="Body", validate=validate.Length(max=2000))
    message_id = Text(required=True, data_key="MessageSid", validate=validate.Length(min=1, max=64))

    class Meta:
        unknown = "exclude"  # Twilio posts about twenty more fields (To, AccountSid, NumMedia, FromCity, ...)


@blp.route("/sms/twilio")
class TwilioSms(MethodView):
    @blp.doc(
        security=[{"gatewaySecret": []}],
        description=SECRET_DOC + ". Answers TwiML.",
        **_answer_doc(
            "TwiML: <Response><Message>reply</Message></Response> (an empty <Response/> for an unregistered sender)",
            "text/xml",
            "string",
        ),
        **_body_doc(
            None,
            {"From": {"type": "string"}, "Body": {"type": "string"}, "MessageSid": {"type": "string"}},
            json_too=False,
        ),
    )
    @accepts_form
    @auth.public
    def post(self):
        """Twilio's incoming-message web hook (form post: From, Body, MessageSid)."""
        gateway = _gateway("sms")
        body = _load(TwilioIn(), _form_or_json())
        answer = service.receive_sms(db.session, gateway=gateway, channel="twilio", **body)
        xml = '<?xml version="1.0" encoding="UTF-8"?>'
        xml += f"<Response><Message>{escape(answer.reply)}</Message></Response>" if answer.reply else "<Response/>"
        return Response(xml, mimetype="text/xml")


class SmsSyncIn(Schema):
    sender = Text(required=True, data_key="from", validate=validate.Length(min=1, max=32))
    message = Text(required=True, validate=validate.Length(max=2000))
    message_id = Text(required=True, validate=validate.Length(min=1, max=64))

    class Meta:
        unknown = "exclude"  # sent_to, secret, device_id, sent_timestamp


@blp.route("/sms/smssync")
class SmsSyncSms(MethodView):
    @blp.doc(
        # The gateway secret, except with ?task=sent (SMSSync sends none there): an empty requirement.
        security=[{"gatewaySecret": []}, {}],
        description=SECRET_DOC + ". Answers SMSSync's JSON. `?task=sent` (no secret: SMSSync sends none) with JSON "
        '`{"queued_messages": [uuids]}` answers `{"message_uuids": [the uuids the phone may send now]}`.',
        parameters=[{"in": "query", "name": "task", "schema": {"type": "string", "enum": ["sent", "result"]}}],
        **_answer_doc(
            'SMSSync: {"payload": {"success": true, "error": null, "task": "send", "messages": [{"to", "message", '
            '"uuid"}]}}; with ?task=sent {"message_uuids": [...]}',
            "application/json",
            "object",
        ),
        **_body_doc(
            None,
            {
                "from": {"type": "string"},
                "message": {"type": "string"},
                "message_id": {"type": "string"},
                "secret": {"type": "string"},
                "sent_to": {"type": "string"},
                "device_id": {"type": "string"},
                "sent_timestamp": {"type": "string"},
            },
            json_too=False,
        ),
    )
    @accepts_form
    @auth.public
    def post(self):
        """SMSSync's (Ushahidi's Android SMS gateway) sync URL (form post: from, message, message_id, secret);
        `?task=sent` (JSON `{"queued_messages": [uuids]}`) confirms texts the phone is about to send."""
        if request.args.get("task") == "sent":
            return _smssync_sent()
        if request.args.get("task") == "result":
            return _json({"payload": {"success": True, "error": None}})  # delivery reports: not kept
        gateway = _gateway("sms")
        body = _load(SmsSyncIn(), _form_or_json())
        answer = service.receive_sms(db.session, gateway=gateway, channel="smssync", **body)
        payload = {"success": True, "error": None}
        if answer.reply:
            # The uuid is derived from the message id, so a retried sync gets the same reply uuid.
            reply_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{gateway.id}/{body['message_id']}"))
            payload.update(task="send", messages=[{"to": body["sender"], "message": answer.reply, "uuid": reply_id}])
        return _json({"payload": payload})

    @blp.doc(
        security=[{"gatewaySecret": []}],
        description=SECRET_DOC + " (SMSSync sends `?secret=`). `?task=send`: the texts queued for this gateway's "
        'phones (docs/casevac.md, "Texts pushed back"); the phone confirms with POST ?task=sent.',
        parameters=[{"in": "query", "name": "task", "required": True, "schema": {"type": "string", "enum": ["send"]}}],
        **_answer_doc(
            'SMSSync: {"payload": {"task": "send", "secret", "messages": [{"to", "message", "uuid"}]}} (SMSSync '
            "checks that `secret` equals its own: the caller's secret, echoed)",
            "application/json",
            "object",
        ),
    )
    @auth.public
    def get(self):
        """SMSSync's task check (GET ?task=send&secret=): the texts its phone sends, each claimed for a while."""
        gateway = _gateway("sms")  # the secret first: an anonymous caller learns nothing of the parameters
        if request.args.get("task") != "send":
            raise ApiError(422, "task: expected send", errors={"query": {"task": ["one of: send"]}})
        settings = current_app.extensions["settings"]
        messages = outbound.offer(db.session, gateway=gateway, now=clock.now(), settings=settings)
        items = [{"to": m.recipient, "message": m.text, "uuid": m.id} for m in messages]
        # SMSSync sends the messages only when the payload's secret equals its own (the one it just sent); the
        # answer is never stored by anyone.
        g.no_store = True
        return _json({"payload": {"task": "send", "secret": _secret(), "messages": items}})


class QueuedIn(Schema):
    queued_messages = fields.List(
        Text(validate=validate.Length(min=1, max=36)), required=True, validate=validate.Length(max=100)
    )

    class Meta:
        unknown = "exclude"


def _smssync_sent():
    """SMSSync's POST ?task=sent: it sends no secret, so the uuids (random, only ever given to the gateway's
    authenticated task check) are the proof; each is confirmed once: the phone sends only those."""
    body = _load(QueuedIn(), _form_or_json())
    return _json({"message_uuids": outbound.confirm(db.session, uuids=body["queued_messages"])})


def _json(payload: dict) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), mimetype="application/json")


@blp.route("/sbd")
class Sbd(MethodView):
    @blp.doc(
        security=[{"gatewaySecret": []}],
        description=SECRET_DOC,
        **_body_doc(
            SbdIn,
            {
                "imei": {"type": "string"},
                "momsn": {"type": "integer"},
                "data": {"type": "string", "description": "hex"},
                "serial": {"type": "string"},
                "transmit_time": {"type": "string"},
                "iridium_latitude": {"type": "number"},
                "iridium_longitude": {"type": "number"},
                "iridium_cep": {"type": "number"},
            },
        ),
    )
    @blp.response(200, SmsOut)
    @blp.alt_response(401, description="no, unknown or revoked gateway secret")
    @accepts_form
    @auth.public
    def post(self):
        """An Iridium short-burst message relayed by a RockBLOCK-style web hook (imei, momsn, hex data; form
        or JSON): the binary 9-line of docs/casevac.md, idempotent by (imei, momsn). Always 200 once
        authenticated (RockBLOCK retries anything else); an unregistered IMEI is refused: no reply."""
        gateway = _gateway("sbd")
        fields_ = {k: v for k, v in _form_or_json().items() if k in ("imei", "momsn", "data")}
        body = _load(SbdIn(), fields_)
        try:
            data = bytes.fromhex("".join(body["data"].split()))
        except ValueError:
            raise ApiError(422, "invalid message fields", errors={"form": {"data": ["not hexadecimal"]}}) from None
        answer = service.receive_sbd(db.session, gateway=gateway, imei=body["imei"], momsn=body["momsn"], data=data)
        return {"reply": answer.reply, "request_id": answer.request_id}


def register(api) -> None:
    """Register the blueprint and the gateway secret's security scheme (one call from config/app.py)."""
    api.spec.components.security_scheme(
        "gatewaySecret",
        {"type": "http", "scheme": "bearer", "description": "a message gateway secret (POST /casevac/gateways)"},
    )
    api.register_blueprint(blp)
