"""SMS and satellite intake: a message from a registered sender is filed (or completes lines 6-9) as that
user through the ordinary filing path (casevac.requests.service), so the request is a first-class one:
queue, console, metrics, events, escalation. Idempotent twice over: the inbound message row is unique per
(gateway, message id) and per (IMEI, MOMSN), and the filing's client_ref is derived from the message id.

The answer is a reply text for the gateway to send back: acknowledged, the asset and ETA once dispatched,
or the parser's error. A message from an unknown sender is refused, logged and audited, never filed.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from casevac import geo
from casevac.links import sbd, text
from casevac.links.models import InboundMessage, MessageGateway
from casevac.requests import lookups
from casevac.requests import service as requests
from core import audit, clock
from core.auth import can_see_mission
from core.errors import ApiError, conflict, forbidden, not_found
from core.models import User
from core.service import normalise_phone

log = logging.getLogger(__name__)

SECRET_PREFIX = "gw_"
FILERS = ("medic", "coordinator")
STATUS_WORDS = {"STATUS", "?", "STAT"}
DISPATCHED = ("dispatched", "at_pickup", "in_transit")


@dataclass(frozen=True)
class Answer:
    """What to tell the gateway: `reply` (None: send nothing), the request, and whether it was refused."""

    outcome: str
    reply: str | None
    request_id: str | None

    @property
    def refused(self) -> bool:
        return self.outcome == "refused"


# ---- gateways -------------------------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_gateway(session, *, actor: User, name: str, kind: str) -> tuple[MessageGateway, str]:
    """A gateway of the admin's mission and its secret (returned once, stored as a hash)."""
    if actor.role != "admin":
        raise forbidden("only an admin issues gateway secrets")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    gateway = MessageGateway(
        mission_id=actor.mission_id,
        name=name,
        kind=kind,
        secret_hash=_hash(secret),
        created_by=actor.id,
        created_at=clock.now(),
    )
    session.add(gateway)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise conflict(f"a gateway named {name!r} exists in this mission: revoke it or choose another name") from None
    audit.record(session, actor, "casevac.gateway.create", gateway, detail={"kind": kind})
    session.commit()
    return gateway, secret


def list_gateways(session, *, actor: User) -> list[MessageGateway]:
    if actor.role != "admin":
        raise forbidden("only an admin sees the gateways")
    return list(
        session.execute(
            select(MessageGateway)
            .where(MessageGateway.mission_id == actor.mission_id)
            .order_by(MessageGateway.created_at, MessageGateway.id)
        ).scalars()
    )


def revoke_gateway(session, *, actor: User, gateway_id: str) -> None:
    """Its secret stops working at once; the name becomes free again. Revoking twice is the same."""
    if actor.role != "admin":
        raise forbidden("only an admin revokes gateway secrets")
    gateway = session.get(MessageGateway, gateway_id) if isinstance(gateway_id, str) else None
    if gateway is None or not can_see_mission(actor, gateway.mission_id):
        raise not_found("gateway")
    if gateway.revoked_at is None:
        gateway.revoked_at = clock.now()
        # Free the name for a replacement; the row stays (its messages refer to it).
        gateway.name = f"{gateway.name[:40]} (revoked {gateway.id[:8]})"
        audit.record(session, actor, "casevac.gateway.revoke", gateway, detail={"kind": gateway.kind})
        session.commit()


def authenticate(session, *, secret: str | None, kind: str) -> MessageGateway:
    """The live gateway of that kind the secret belongs to, else 401 (the same for unknown, revoked and
    wrong-kind secrets)."""
    gateway = None
    if secret and secret.startswith(SECRET_PREFIX) and len(secret) <= 128:
        gateway = session.execute(
            select(MessageGateway).where(MessageGateway.secret_hash == _hash(secret))
        ).scalar_one_or_none()
    if gateway is None or gateway.revoked_at is not None or gateway.kind != kind:
        raise ApiError(401, f"unknown or revoked {kind} gateway secret")
    return gateway


# ---- intake ---------------------------------------------------------------------------------------


def receive_sms(
    session, *, gateway: MessageGateway, channel: str, sender: str, message: str, message_id: str
) -> Answer:
    """One SMS: file it, complete the sender's open request, answer a STATUS, or say what is wrong."""
    found = _seen(session, gateway_id=gateway.id, message_id=message_id)
    if found is not None:
        return found
    phone = normalise_phone(sender) if isinstance(sender, str) else None
    user = _sender(session, gateway, User.phone == phone) if phone else None
    row = InboundMessage(
        gateway_id=gateway.id, channel=channel, message_id=message_id, sender=(phone or str(sender))[:32]
    )
    if user is None:
        return _refuse(session, row, gateway)
    if message.strip().upper() in STATUS_WORDS:
        return _status(session, row, user)
    try:
        parsed = text.parse(message)
    except text.TextError as exc:
        return _reject(
            session, row, user, f"NOT FILED: {exc}. Format: 1 <grid> 2 <freq> <callsign> 3 1A 4 A 5 1L", line=exc.line
        )
    lines = parsed.pop("lines")
    client_ref = "sms-" + hashlib.sha256(f"{gateway.id}:{message_id}".encode()).hexdigest()[:32]
    return _act(session, row, user, parsed, lines, client_ref=client_ref, new=1 in lines)


def receive_sbd(session, *, gateway: MessageGateway, imei: str, momsn: int, data: bytes) -> Answer:
    """One satellite message from a RockBLOCK-class device (the binary form of casevac.links.sbd)."""
    found = _seen(session, imei=imei, momsn=momsn)
    if found is not None:
        return found
    user = _sender(session, gateway, User.imei == imei)
    row = InboundMessage(gateway_id=gateway.id, channel="sbd", imei=imei, momsn=momsn, sender=imei)
    if user is None:
        return _refuse(session, row, gateway)
    try:
        decoded = sbd.decode(data)
    except sbd.SbdError as exc:
        return _reject(session, row, user, f"NOT FILED: {exc}", line=None)
    kind = decoded.pop("kind")
    lines = decoded.pop("lines")
    return _act(session, row, user, decoded, lines, client_ref=f"sbd-{imei}-{momsn}", new=kind == "new")


def _seen(session, **key) -> Answer | None:
    """A message already handled (a gateway's retry): the answer it got."""
    row = session.execute(select(InboundMessage).filter_by(**key)).scalar_one_or_none()
    return Answer(row.outcome, row.reply, row.request_id) if row is not None else None


def _sender(session, gateway: MessageGateway, condition) -> User | None:
    """The active medic or coordinator of the gateway's mission registered with that phone or IMEI."""
    user = session.execute(select(User).where(condition)).scalar_one_or_none()
    if user is None or not user.active or user.mission_id != gateway.mission_id or user.role not in FILERS:
        return None
    return user


def _masked(sender: str) -> str:
    return sender[:-4] + "****" if len(sender) > 6 else "****"


def _refuse(session, row: InboundMessage, gateway: MessageGateway) -> Answer:
    log.warning(
        "casevac.links: refused a %s message from the unregistered sender %s (gateway %s): not filed",
        row.channel,
        _masked(row.sender),
        gateway.id,
    )
    row.outcome, row.reply = "refused", None
    audit.record(
        session, None, "casevac.link.refused", gateway, detail={"channel": row.channel, "sender": _masked(row.sender)}
    )
    return _store(session, row)


def _reject(session, row: InboundMessage, user: User, reply: str, *, line: int | None) -> Answer:
    row.user_id, row.outcome, row.reply = user.id, "rejected", reply
    audit.record(session, user, "casevac.link.rejected", user, detail={"channel": row.channel, "line": line})
    return _store(session, row)


def _store(session, row: InboundMessage) -> Answer:
    """Insert the message row; a concurrent copy of the same message that got there first wins."""
    row.received_at = clock.now()
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        key = (
            {"gateway_id": row.gateway_id, "message_id": row.message_id}
            if row.message_id is not None
            else {"imei": row.imei, "momsn": row.momsn}
        )
        found = _seen(session, **key)
        if found is None:
            raise
        return found
    return Answer(row.outcome, row.reply, row.request_id)


def _validation_reply(exc: ValidationError) -> str:
    def flatten(node, prefix=""):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from flatten(value, f"{prefix}{key}." if key != "_schema" else prefix)
        elif isinstance(node, list):
            yield f"{prefix.rstrip('.')}: {'; '.join(str(m) for m in node if not isinstance(m, (dict, list)))}"

    return "NOT FILED: " + " | ".join(flatten(exc.messages))


def _act(
    session, row: InboundMessage, user: User, body: dict, lines: list[int], *, client_ref: str, new: bool
) -> Answer:
    row.user_id = user.id
    latest = None
    try:
        if new:
            loaded = requests.load_filing(body)
            loaded["client_ref"] = client_ref
            filed, _created = requests.file_request(session, actor=user, body=loaded)
            request, outcome = filed, "filed"
        else:
            changes = requests.load_changes(body)
            latest = lookups.latest_filed_by(session, user_id=user.id, active_only=True)
            if latest is None:
                return _reject(
                    session, row, user, "NOT FILED: no open request to complete: send lines 1-5 first", line=None
                )
            request = requests.update_request(session, actor=user, request_id=latest.id, changes=changes)
            outcome = "completed"
    except ValidationError as exc:
        session.rollback()
        return _reject(session, row, user, _validation_reply(exc), line=None)
    except ApiError as exc:
        session.rollback()
        if latest is not None and exc.code == 409:
            # Lines 6-9 after dispatch are the coordinator's to change: say so, and where the asset is.
            session.refresh(latest)
            return _reject(session, row, user, f"NOT CHANGED: {exc.message}. {reply_for(session, latest)}", line=None)
        return _reject(session, row, user, f"NOT FILED: {exc.message}", line=None)
    row.outcome, row.request_id = outcome, request.id
    row.reply = reply_for(session, request, received_lines=lines if outcome == "completed" else None)
    audit.record(
        session,
        user,
        f"casevac.link.{outcome}",
        request,
        detail={"channel": row.channel, "gateway_id": row.gateway_id, "lines": lines},
    )
    return _store(session, row)


def _status(session, row: InboundMessage, user: User) -> Answer:
    latest = lookups.latest_filed_by(session, user_id=user.id)
    row.user_id, row.outcome = user.id, "status"
    row.request_id = latest.id if latest else None
    row.reply = reply_for(session, latest) if latest else "NO REQUEST on file from this number"
    return _store(session, row)


# ---- replies --------------------------------------------------------------------------------------


def short_ref(request_id: str) -> str:
    return request_id.replace("-", "")[:6].upper()


def reply_for(session, request, *, received_lines: list[int] | None = None) -> str:
    """At most 160 characters: the request's reference, its state, and what is missing or coming."""
    ref = short_ref(request.id)
    if request.status in DISPATCHED and request.asset_id:
        return _dispatched_reply(session, request, ref)
    head = (
        f"CASEVAC {ref} {request.status.upper()} {request.precedence.upper().replace('_', '-')} "
        f"{request.patients_total} PAX"
    )
    if received_lines is not None:
        head += f", LINES {','.join(map(str, received_lines))} IN"
    missing = request.missing_lines
    if missing and request.status not in ("delivered", "cancelled"):
        head += f". SEND {' '.join(str(n) for n in missing)}"
    return head[:160]


def _dispatched_reply(session, request, ref: str) -> str:
    from casevac.fleet.assets import find_asset, latest_position
    from casevac.fleet.positions import live_store

    asset = find_asset(session, request.asset_id)
    if asset is None:
        return f"CASEVAC {ref} {request.status.upper()}"
    fix = latest_position(session, asset, store=live_store())
    here = (fix["lat"], fix["lon"]) if fix else (asset.base_lat, asset.base_lon)
    now = clock.now()
    launch = max(now, (request.dispatched_at or now) + timedelta(minutes=asset.readiness_minutes))
    if request.status == "dispatched":
        eta = launch + timedelta(hours=geo.distance_km(here, (request.lat, request.lon)) / asset.cruise_speed_kmh)
        minutes = max(0, round((eta - now).total_seconds() / 60))
        return f"CASEVAC {ref} DISPATCHED {asset.callsign} ETA {eta:%H%M}Z ({minutes} MIN)"[:160]
    return f"CASEVAC {ref} {request.status.upper()} {asset.callsign}"[:160]
