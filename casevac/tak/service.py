"""What a TAK event does to the backend (inbound) and what the backend says to TAK (outbound): plain
functions on an explicit session, called by the connection loop (casevac.tak.gateway) and by tests.

Identity: one service user per mission, `tak-gateway-<code>` (role medic, no usable password, created on
first start): what arrives from ATAK is filed, updated and cancelled by it with exactly a field medic's
rights (file; correct before dispatch; cancel before dispatch; add signs any time), and the audit log shows
every such change as that user's, with the TAK uid and callsign in an extra `tak.*` audit row. The filer's
callsign (line 2) is the TAK callsign.

Idempotency: a MEDEVAC event's uid is the request's `client_ref` (hashed when longer than 64 characters),
so the unique constraint on (filed_by, client_ref) decides between a re-sent event and two gateways
filing at once; `tak_request_links` (unique per mission and uid) remembers the uid and the sender.

Assets: a position report moves the asset of the mission whose callsign equals the report's
`<contact callsign>` (case-insensitive): register a TAK device on an asset by giving it the asset's
callsign. The fix goes through casevac.fleet.positions.report_positions (source "tak"), like a device report.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from marshmallow import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from casevac import policy
from casevac.dispatch import rules as dispatch_rules
from casevac.dispatch import service as dispatch
from casevac.fleet import positions as fleet_positions
from casevac.fleet.models import Asset, Facility
from casevac.fleet.positions import DATABASE_ONLY, LiveStore
from casevac.requests import lifecycle, schemas, service
from casevac.requests.models import FINAL_STATUSES, CasevacRequest, Casualty
from casevac.tak.codec import reading, stream, vocabulary, writing
from casevac.tak.models import TakEmergency, TakGatewayState, TakRequestLink
from core import audit, clock
from core.auth import hash_password
from core.errors import ApiError, forbidden
from core.models import Mission, User
from realtime import audience, events
from realtime.models import Event

log = logging.getLogger("casevac.tak")

OUTBOUND_TYPES = ("casevac.created", "casevac.updated", "casevac.escalated", "asset.updated", "facility.updated")
# Status moves the filing medic hears about on GeoChat.
CHAT_STATUSES = ("acknowledged", "dispatched", "at_pickup", "delivered", "cancelled")
PATCHABLE = (
    "callsign",
    "frequency",
    "suffix",
    "equipment",
    "litter",
    "ambulatory",
    "security",
    "wounds",
    "marking",
    "marking_detail",
    "nationality",
    "cbrn",
    "terrain",
    "remarks",
)
MARKER_STALE = timedelta(days=1)
_PRINTABLE = re.compile(r"[\x21-\x7e]{1,64}")


@dataclass
class Context:
    """Who the gateway is, for one mission."""

    mission_id: str
    mission_code: str
    user_id: str
    uid: str  # the gateway's TAK uid
    callsign: str
    stats: dict = field(default_factory=dict)
    # TAK contacts seen (callsign, lower case -> uid): where GeoChat goes for requests not filed from TAK.
    contacts: dict = field(default_factory=dict)

    def count(self, name: str, by: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + by


def gateway_username(mission_code: str) -> str:
    return f"tak-gateway-{mission_code.lower()}"[:80]


def ensure_context(session, *, mission_code: str, uid: str = "", callsign: str = "") -> Context:
    """The mission and its gateway user (created once; two gateways starting together create one)."""
    mission = session.execute(select(Mission).where(Mission.code == mission_code)).scalar_one_or_none()
    if mission is None:
        raise LookupError(f"no mission with code {mission_code!r}")
    username = gateway_username(mission.code)
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        try:
            user = User(
                username=username,
                display_name=f"TAK gateway ({mission.code})",
                role="medic",
                mission_id=mission.id,
                password_hash=hash_password(secrets.token_urlsafe(32)),
            )
            session.add(user)
            session.flush()
            audit.record(
                session,
                actor=None,
                action="user.create",
                subject_type="user",
                subject_id=user.id,
                mission_id=mission.id,
                detail={"role": "medic", "service": "tak-gateway"},
            )
            session.commit()
        except IntegrityError:
            session.rollback()
            user = session.execute(select(User).where(User.username == username)).scalar_one()
    if user.mission_id != mission.id or user.role != "medic":
        raise LookupError(f"user {username} exists but is not this mission's gateway user")
    if not user.active:
        raise LookupError(
            f"the gateway user {username} is disabled (PATCH /api/v1/users/{user.id} "
            '{"active": true} to let the gateway file requests again)'
        )
    session.commit()
    return Context(
        mission_id=mission.id,
        mission_code=mission.code,
        user_id=user.id,
        uid=uid or f"medevac-gateway-{mission.code.lower()}",
        callsign=callsign or f"MEDEVAC-{mission.code}",
    )


def _user(session, ctx: Context) -> User:
    user = session.get(User, ctx.user_id)
    if not user.active:  # disabled by an admin while the gateway runs: nothing more is filed in its name
        raise forbidden("the TAK gateway user is disabled")
    return user


def client_ref(uid: str) -> str:
    if _PRINTABLE.fullmatch(uid):
        return uid
    return "tak-" + hashlib.sha256(uid.encode()).hexdigest()[:60]


# ---------------------------------------------------------------- inbound


def handle(session, ctx: Context, raw: bytes, *, live: LiveStore = DATABASE_ONLY) -> str:
    """One event from TAK; returns what happened (a counter name). Never raises: a malformed event is
    logged and counted, a failure rolls back and is logged and counted."""
    ctx.count("received")
    try:
        event = reading.classify(stream.parse(raw))
    except vocabulary.CotError as exc:
        log.warning("TAK event refused: %s", exc)
        return _counted(ctx, "malformed")
    try:
        outcome = _dispatch(session, ctx, event, live)
    except vocabulary.CotError as exc:
        session.rollback()
        log.warning("TAK %s %s refused: %s", event.type, event.uid, exc)
        outcome = "malformed"
    except ApiError as exc:
        session.rollback()
        log.warning("TAK %s %s refused: %s %s", event.type, event.uid, exc.code, exc.message)
        outcome = "refused"
    except Exception:
        session.rollback()
        log.exception("TAK %s %s failed", event.type, event.uid)
        outcome = "failed"
    return _counted(ctx, outcome)


def _counted(ctx: Context, outcome: str) -> str:
    ctx.count(outcome)
    return outcome


def _dispatch(session, ctx: Context, event: reading.Event, live: LiveStore) -> str:
    if event.sender_uid and event.callsign and event.kind == "position":
        ctx.contacts[event.callsign.lower()] = event.uid
    if event.own or event.uid == ctx.uid:
        return "own"
    if event.kind == "medevac":
        return on_medevac(session, ctx, event)
    if event.kind == "delete":
        return on_delete(session, ctx, event)
    if event.kind == "position":
        ctx.contacts[event.callsign.lower()] = event.uid
        return on_position(session, ctx, event, live)
    if event.kind == "emergency":
        return on_emergency(session, ctx, event)
    if event.kind == "emergency_cancel":
        return on_emergency_cancel(session, ctx, event)
    return "ignored"


def on_medevac(session, ctx: Context, event: reading.Event) -> str:
    decoded = reading.nine_line(event, categories=tuple(schemas.NATIONALITY_CATEGORIES))
    try:
        body = schemas.RequestIn().load(decoded.body)
    except ValidationError as exc:
        log.warning("TAK MEDEVAC %s refused after defaults: %s", event.uid, _fields(exc.messages))
        return "refused"
    sender_uid = event.sender_uid if event.sender_uid != event.uid else None
    link = _link(session, ctx, event.uid)
    if link is None:
        user = _user(session, ctx)
        try:
            request, created = service.file_request(
                session, actor=user, body={**body, "client_ref": client_ref(event.uid)}
            )
        except ApiError as exc:
            if exc.code != 409:
                raise
            session.rollback()  # same uid, another body: filed by a gateway that had not linked it yet
            request = _by_client_ref(session, ctx, event.uid)
            _ensure_link(session, ctx, request, event, sender_uid)
            session.commit()
            return _update(session, ctx, _link(session, ctx, event.uid), body, event)
        _ensure_link(session, ctx, request, event, sender_uid)
        if created:
            audit.record(
                session,
                actor=user,
                action="tak.file",
                subject_type="casevac_request",
                subject_id=request.id,
                mission_id=ctx.mission_id,
                detail={
                    "event_uid": event.uid[:200],
                    "sender_uid": sender_uid,
                    "callsign": body["callsign"],
                    "defaults": len(decoded.notes),
                },
            )
            session.commit()
            log.info("TAK MEDEVAC %s filed as request %s (%s)", event.uid, request.id, request.precedence)
            return "filed"
        session.commit()
        return "duplicate"
    return _update(session, ctx, link, body, event)


def _fields(messages) -> str:
    return ", ".join(sorted(messages)) if isinstance(messages, dict) else str(messages)[:200]


def _link(session, ctx: Context, uid: str) -> TakRequestLink | None:
    return session.execute(
        select(TakRequestLink).where(TakRequestLink.mission_id == ctx.mission_id, TakRequestLink.event_uid == uid)
    ).scalar_one_or_none()


def _by_client_ref(session, ctx: Context, uid: str) -> CasevacRequest:
    return session.execute(
        select(CasevacRequest).where(
            CasevacRequest.filed_by == ctx.user_id, CasevacRequest.client_ref == client_ref(uid)
        )
    ).scalar_one()


def _ensure_link(session, ctx: Context, request: CasevacRequest, event: reading.Event, sender_uid) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: of two gateways linking the same uid, one row (no savepoint)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    session.execute(
        dialect_insert(TakRequestLink)
        .values(
            request_id=request.id,
            mission_id=ctx.mission_id,
            event_uid=event.uid[:200],
            sender_uid=sender_uid,
            sender_callsign=(event.sender_callsign or event.callsign or "")[:64] or None,
            created_at=clock.now(),
        )
        .on_conflict_do_nothing()
    )


def _update(session, ctx: Context, link: TakRequestLink, body: dict, event: reading.Event) -> str:
    """A later event with a filed uid: lines 2 and 4-9, remarks, casualties (new signs appended)."""
    request = session.get(
        CasevacRequest,
        link.request_id,
        options=[selectinload(CasevacRequest.casualties).selectinload(Casualty.signs_history)],
    )
    if request.status in FINAL_STATUSES:
        return "update_ignored"
    user = _user(session, ctx)
    outcome = "duplicate"  # the same event again: nothing to change
    changes = {name: body[name] for name in PATCHABLE if name in body and getattr(request, name) != body[name]}
    if changes.get("litter", request.litter) + changes.get("ambulatory", request.ambulatory) != request.patients_total:
        changes.pop("litter", None)
        changes.pop("ambulatory", None)
        log.info(
            "TAK update of %s changes the patient count: not applied (line 3 is corrected by the coordinator)",
            request.id,
        )
    if changes and request.status in policy.BEFORE_DISPATCH:
        service.update_request(session, actor=user, request_id=request.id, changes=changes)
        outcome = "updated"
    elif changes:
        log.info("TAK update of %s after dispatch: lines not changed (%s)", request.id, ", ".join(sorted(changes)))
    request = session.get(CasevacRequest, link.request_id)
    session.refresh(request)
    existing = {c.zap: c for c in request.casualties if c.zap}
    for position, casualty in enumerate(body.get("casualties") or []):
        current = existing.get(casualty.get("zap")) or (
            request.casualties[position] if position < len(request.casualties) else None
        )
        if current is None:
            if len(request.casualties) < request.patients_total and request.status in policy.BEFORE_DISPATCH:
                service.add_casualty(session, actor=user, request_id=request.id, body=casualty)
                session.refresh(request)
                outcome = "updated"
            continue
        signs = casualty.get("signs")
        latest = current.signs
        if signs and (latest is None or any(latest.get(k) != v for k, v in signs.items())):
            service.update_casualty(session, actor=user, casualty_id=current.id, changes={"signs": signs})
            outcome = "updated"
    session.commit()
    return outcome


def on_delete(session, ctx: Context, event: reading.Event) -> str:
    """t-x-d-d of a filed uid: cancelled before dispatch; after, a note in the remarks only."""
    if not event.target_uid:
        return "ignored"
    link = _link(session, ctx, event.target_uid)
    if link is None:
        return "ignored"
    request = session.get(CasevacRequest, link.request_id)
    if request.status in FINAL_STATUSES:
        return "ignored"
    who = event.callsign or link.sender_callsign or "ATAK"
    if request.status in policy.BEFORE_DISPATCH:
        try:
            lifecycle.transition(
                session,
                actor=_user(session, ctx),
                request_id=request.id,
                status="cancelled",
                note=f"cancelled from TAK: {who} deleted the MEDEVAC marker",
            )
        except ApiError as exc:
            if exc.code != 409:
                raise
            session.rollback()  # dispatched meanwhile: fall through to the note
        else:
            return "cancelled"
        session.refresh(request)
    note = f"[TAK gateway] {who} deleted the MEDEVAC marker at {clock.now():%H:%MZ} after dispatch: not cancelled"
    session.execute(
        update(CasevacRequest)
        .where(CasevacRequest.id == request.id)
        .values(remarks=func.coalesce(CasevacRequest.remarks + "\n", "") + note, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    session.refresh(request)
    audit.record(
        session,
        actor=ctx.user_id,
        action="tak.delete_after_dispatch",
        subject_type="casevac_request",
        subject_id=request.id,
        mission_id=ctx.mission_id,
        detail={"status": request.status},
    )
    events.publish(
        session,
        "casevac.updated",
        audience.coordinators(ctx.mission_id) + [audience.user(request.filed_by)],
        service.event_data(request, change="lines", fields=["remarks"]),
        mission_id=ctx.mission_id,
    )
    session.commit()
    return "noted"


def on_position(session, ctx: Context, event: reading.Event, live: LiveStore) -> str:
    asset_id = session.execute(
        select(Asset.id).where(Asset.mission_id == ctx.mission_id, func.lower(Asset.callsign) == event.callsign.lower())
    ).scalar_one_or_none()
    session.rollback()
    if asset_id is None:
        return "contact"
    fix = {
        "lat": event.lat,
        "lon": event.lon,
        "heading": event.course,
        "speed_kmh": event.speed_kmh,
        "reported_at": event.time,
    }
    fleet_positions.report_positions(
        session, asset_id=asset_id, mission_id=ctx.mission_id, source="tak", fixes=[fix], batch=False, store=live
    )
    return "position"


def on_emergency(session, ctx: Context, event: reading.Event) -> str:
    """Raised once per beacon uid (ATAK repeats it; several gateways may see it): the unique constraint, or
    the conditional UPDATE of a cancelled beacon raised again, decides."""
    now = clock.now()
    values = {
        "kind": event.emergency,
        "callsign": (event.callsign or "")[:64] or None,
        "lat": event.lat,
        "lon": event.lon,
    }
    existing = session.execute(
        select(TakEmergency).where(TakEmergency.mission_id == ctx.mission_id, TakEmergency.uid == event.uid[:200])
    ).scalar_one_or_none()
    if existing is None:
        try:
            with session.begin_nested():
                session.add(TakEmergency(mission_id=ctx.mission_id, uid=event.uid[:200], raised_at=now, **values))
        except IntegrityError:
            session.rollback()
            return "duplicate"
    else:
        raised = session.execute(
            update(TakEmergency)
            .where(TakEmergency.id == existing.id, TakEmergency.cancelled_at.is_not(None))
            .values(cancelled_at=None, raised_at=now, **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not raised:
            session.rollback()
            return "duplicate"
    _alert_coordinators(
        session,
        ctx,
        event,
        action="tak.emergency",
        kind=event.emergency,
        type_="emergency",
        data={"uid": event.uid, **values, "at": now.isoformat()},
    )
    return "emergency"


def on_emergency_cancel(session, ctx: Context, event: reading.Event) -> str:
    now = clock.now()
    row = session.execute(
        select(TakEmergency).where(TakEmergency.mission_id == ctx.mission_id, TakEmergency.uid == event.uid[:200])
    ).scalar_one_or_none()
    if row is None:
        session.rollback()
        return "ignored"
    cancelled = session.execute(
        update(TakEmergency)
        .where(TakEmergency.id == row.id, TakEmergency.cancelled_at.is_(None))
        .values(cancelled_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not cancelled:
        session.rollback()
        return "duplicate"
    _alert_coordinators(
        session,
        ctx,
        event,
        action="tak.emergency.cancel",
        kind=row.kind,
        type_="emergency.cancelled",
        data={
            "uid": event.uid,
            "kind": row.kind,
            "callsign": event.callsign or row.callsign,
            "lat": row.lat,
            "lon": row.lon,
            "at": now.isoformat(),
        },
    )
    return "emergency_cancelled"


def _alert_coordinators(session, ctx: Context, event: reading.Event, *, action: str, kind, type_: str, data: dict):
    """Audit an emergency change and tell the mission's coordinators and admins live; commits."""
    audit.record(
        session,
        actor=ctx.user_id,
        action=action,
        subject_type="tak_emergency",
        subject_id=event.uid[:64],
        mission_id=ctx.mission_id,
        detail={"kind": kind},
    )
    events.publish(session, type_, audience.coordinators_and_admins(ctx.mission_id), data, mission_id=ctx.mission_id)
    session.commit()


# ---------------------------------------------------------------- outbound


def state(session, ctx: Context, server: str) -> TakGatewayState:
    row = session.execute(
        select(TakGatewayState).where(TakGatewayState.mission_id == ctx.mission_id, TakGatewayState.server == server)
    ).scalar_one_or_none()
    if row is None:
        try:
            with session.begin_nested():
                # A new gateway starts at the log's end: the picture carries what is current.
                last = session.execute(select(func.coalesce(func.max(Event.seq), 0))).scalar_one()
                row = TakGatewayState(mission_id=ctx.mission_id, server=server, last_seq=last, updated_at=clock.now())
                session.add(row)
        except IntegrityError:
            row = session.execute(
                select(TakGatewayState).where(
                    TakGatewayState.mission_id == ctx.mission_id, TakGatewayState.server == server
                )
            ).scalar_one()
        session.commit()
    return row


def pending(session, ctx: Context, since: int, limit: int = 200) -> tuple[list[dict], int]:
    """Events of the mission after `since` that TAK hears about, and the seq to continue from (the log's
    watermark when nothing relevant is left: other missions' events are skipped)."""
    watermark = session.execute(select(func.coalesce(func.max(Event.seq), 0))).scalar_one()
    rows = (
        session.execute(
            select(Event.seq, Event.type, Event.at, Event.data)
            .where(Event.seq > since, Event.mission_id == ctx.mission_id, Event.type.in_(OUTBOUND_TYPES))
            .order_by(Event.seq)
            .limit(limit)
        )
        .mappings()
        .all()
    )
    session.rollback()
    if len(rows) == limit:
        return [dict(r) for r in rows], rows[-1]["seq"]
    return [dict(r) for r in rows], max([since, watermark] + [r["seq"] for r in rows])


def save_seq(session, ctx: Context, server: str, seq: int) -> None:
    """Only forward: of two copies running, the slower never moves the mark back."""
    session.execute(
        update(TakGatewayState)
        .where(
            TakGatewayState.mission_id == ctx.mission_id,
            TakGatewayState.server == server,
            TakGatewayState.last_seq < seq,
        )
        .values(last_seq=seq, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    session.commit()


def set_connected(session, ctx: Context, server: str, connected: bool, error: str | None = None) -> None:
    now = clock.now()
    values = {"connected": connected, "heartbeat_at": now, "updated_at": now, "last_error": (error or "")[:200] or None}
    if connected:
        values["connected_at"] = now
    session.execute(
        update(TakGatewayState)
        .where(TakGatewayState.mission_id == ctx.mission_id, TakGatewayState.server == server)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def outbound(session, ctx: Context, row: dict, *, settings, live: LiveStore, marker: bool = True) -> list[bytes]:
    """The CoT events one logged event turns into. `marker` False: a later event of the same batch re-sends
    the request's marker anyway (it shows the current state), so only its GeoChat is due here."""
    data, type_ = row["data"] or {}, row["type"]
    if type_.startswith("casevac."):
        if not marker and not (type_ == "casevac.updated" and data.get("change") == "status"):
            return []
        request = _full_request(session, data.get("id"))
        if request is None:
            return []
        out = [request_marker(session, ctx, request, settings=settings, live=live)] if marker else []
        if type_ == "casevac.updated" and data.get("change") == "status" and data.get("status") in CHAT_STATUSES:
            message = status_chat(
                session, ctx, request, status=data["status"], at=clock.as_utc(row["at"]), settings=settings, live=live
            )
            if message:
                out.append(message)
        return out
    if type_ == "asset.updated":
        asset = session.get(Asset, data.get("id"))
        return [asset_marker(session, ctx, asset, live=live)] if asset else []
    if type_ == "facility.updated":
        facility = session.get(Facility, data.get("id"))
        return [facility_marker(facility)] if facility else []
    return []


def _full_request(session, request_id) -> CasevacRequest | None:
    if not isinstance(request_id, str):
        return None
    return session.execute(
        select(CasevacRequest)
        .where(CasevacRequest.id == request_id)
        .options(selectinload(CasevacRequest.casualties).selectinload(Casualty.signs_history))
    ).scalar_one_or_none()


def marker_uid(session, request: CasevacRequest) -> tuple[str, TakRequestLink | None]:
    """A request filed from TAK keeps its ATAK uid (the medic's own marker is updated); others medevac-<id>."""
    link = session.get(TakRequestLink, request.id)
    return (link.event_uid if link else f"medevac-{request.id}"), link


def lines(request: CasevacRequest) -> dict:
    """The request as the codec's 9-line dict (the API's field names)."""
    out = {
        "location": {"lat": request.lat, "lon": request.lon},
        "callsign": request.callsign,
        "frequency": request.frequency,
        "patients": request.patients,
        "equipment": list(request.equipment or []),
        "litter": request.litter,
        "ambulatory": request.ambulatory,
    }
    for name in (
        "suffix",
        "security",
        "wounds",
        "marking",
        "marking_detail",
        "nationality",
        "cbrn",
        "terrain",
        "remarks",
    ):
        value = getattr(request, name)
        if value is not None:
            out[name] = value
    out["casualties"] = [_casualty_lines(c) for c in request.casualties]
    return out


def _casualty_lines(casualty: Casualty) -> dict:
    out = {}
    for name in ("zap", "age", "sex", "mechanism", "mechanism_detail", "precedence"):
        value = getattr(casualty, name)
        if value is not None:
            out[name] = value
    if casualty.time_of_injury is not None:
        out["time_of_injury"] = clock.as_utc(casualty.time_of_injury).isoformat()
    if casualty.injuries:
        out["injuries"] = list(casualty.injuries)
    signs = casualty.signs
    if signs:
        out["signs"] = {k: v for k, v in signs.items() if k != "taken_at"}
    if casualty.treatments:
        out["treatments"] = list(casualty.treatments)
    return out


def request_marker(session, ctx: Context, request: CasevacRequest, *, settings, live: LiveStore) -> bytes:
    uid, link = marker_uid(session, request)
    time = clock.as_utc(request.updated_at)
    if request.status in FINAL_STATUSES:
        return writing.delete(uid, time=time)
    return writing.medevac(
        lines(request),
        uid=uid,
        time=time,
        stale=max(time, clock.now()) + MARKER_STALE,
        status_text=status_text(session, request, settings=settings, live=live),
        sender_uid=link.sender_uid if link else None,
    )


def _eta(session, request: CasevacRequest, *, settings, live: LiveStore) -> tuple[Asset | None, datetime | None]:
    if not request.asset_id:
        return None, None
    asset = session.get(Asset, request.asset_id)
    facility = session.get(Facility, request.facility_id) if request.facility_id else None
    if asset is None or facility is None or request.status != "dispatched":
        return asset, None
    position = fleet_positions.latest_positions(session, mission_id=request.mission_id, assets=[asset], store=live).get(
        asset.id
    )
    option = dispatch_rules.evaluate(
        dispatch.need_from_request(request),
        dispatch._asset_state(asset, position),
        dispatch._facility_state(facility),
        now=clock.now(),
        road_factor=settings.ROAD_FACTOR,
    )
    return asset, clock.as_utc(request.dispatched_at or clock.now()) + timedelta(minutes=option.pickup_eta_minutes)


def status_text(session, request: CasevacRequest, *, settings, live: LiveStore) -> str:
    parts = [
        f"{request.status.upper().replace('_', ' ')}: {request.precedence.replace('_', ' ')}, "
        f"{request.patients_total} patient(s)"
    ]
    asset, eta = _eta(session, request, settings=settings, live=live)
    if asset is not None:
        parts.append(f"asset {asset.callsign}")
    if eta is not None:
        parts.append(f"pickup ETA {eta:%H:%M}Z")
    if request.facility_id:
        facility = session.get(Facility, request.facility_id)
        if facility is not None:
            parts.append(f"to {facility.name}")
    if request.deadline is not None and request.status not in FINAL_STATUSES:
        parts.append(f"deadline {clock.as_utc(request.deadline):%H:%M}Z")
    parts.append(f"request {request.id[:8]}")
    return "; ".join(parts)


def status_chat(
    session, ctx: Context, request: CasevacRequest, *, status: str, at: datetime, settings, live: LiveStore
) -> bytes | None:
    """GeoChat to the filing callsign: to the device that filed it from TAK, else to a TAK contact seen
    with the request's callsign; None when neither is known."""
    link = session.get(TakRequestLink, request.id)
    to_uid = link.sender_uid if link and link.sender_uid else ctx.contacts.get(request.callsign.lower())
    if not to_uid:
        return None
    to_callsign = link.sender_callsign if link and link.sender_callsign else request.callsign
    ref = request.id[:8]
    if status == "acknowledged":
        text = f"MEDEVAC {ref} ({request.callsign}) acknowledged by the coordination cell: an asset is being assigned."
    elif status == "dispatched":
        asset, eta = _eta(session, request, settings=settings, live=live)
        text = f"MEDEVAC {ref} dispatched: {asset.callsign if asset else 'asset'}"
        text += f", pickup ETA {eta:%H:%M}Z" if eta else ""
        facility = session.get(Facility, request.facility_id) if request.facility_id else None
        text += f", to {facility.name}." if facility else "."
    elif status == "at_pickup":
        asset = session.get(Asset, request.asset_id) if request.asset_id else None
        text = f"MEDEVAC {ref}: {asset.callsign if asset else 'the asset'} is at the pickup site."
    elif status == "delivered":
        facility = session.get(Facility, request.facility_id) if request.facility_id else None
        text = f"MEDEVAC {ref}: patients delivered{' to ' + facility.name if facility else ''}."
    else:
        text = f"MEDEVAC {ref} cancelled."
    return writing.chat(
        sender_uid=ctx.uid,
        sender_callsign=ctx.callsign,
        to_uid=to_uid,
        to_callsign=to_callsign,
        message_id=f"medevac-{request.id}-{status}",
        text=text,
        time=at,
    )


def asset_marker(session, ctx: Context, asset: Asset, *, live: LiveStore) -> bytes:
    position = fleet_positions.latest_positions(session, mission_id=asset.mission_id, assets=[asset], store=live).get(
        asset.id
    )
    lat, lon = (position["lat"], position["lon"]) if position else (asset.base_lat, asset.base_lon)
    at = clock.as_utc(position["reported_at"]) if position else clock.as_utc(asset.updated_at)
    time = max(at, clock.as_utc(asset.updated_at))
    remarks = f"{asset.kind.replace('_', ' ')}, {asset.status}"
    if asset.tasked_request_id:
        remarks += f" (request {asset.tasked_request_id[:8]})"
    return writing.asset(
        uid=f"medevac-asset-{asset.id}",
        callsign=asset.callsign,
        kind=asset.kind,
        status=asset.status,
        lat=lat,
        lon=lon,
        time=time,
        stale=max(time, clock.now()) + MARKER_STALE,
        heading=position.get("heading") if position else None,
        speed_kmh=position.get("speed_kmh") if position else None,
        remarks=remarks,
    )


def facility_marker(facility: Facility) -> bytes:
    time = clock.as_utc(facility.updated_at)
    return writing.facility(
        uid=f"medevac-facility-{facility.id}",
        name=facility.name,
        level=facility.level,
        status=facility.status,
        beds=facility.beds_available,
        lat=facility.lat,
        lon=facility.lon,
        time=time,
        stale=max(time, clock.now()) + MARKER_STALE,
        capabilities=list(facility.capabilities or []),
    )


def picture(session, ctx: Context, *, settings, live: LiveStore) -> list[bytes]:
    """Everything current: active requests, assets, facilities (after every (re)connection)."""
    out = []
    requests = (
        session.execute(
            select(CasevacRequest)
            .where(CasevacRequest.mission_id == ctx.mission_id, CasevacRequest.status.not_in(FINAL_STATUSES))
            .options(selectinload(CasevacRequest.casualties).selectinload(Casualty.signs_history))
            .order_by(CasevacRequest.created_at)
        )
        .scalars()
        .all()
    )
    out += [request_marker(session, ctx, r, settings=settings, live=live) for r in requests]
    assets = session.execute(select(Asset).where(Asset.mission_id == ctx.mission_id)).scalars().all()
    out += [asset_marker(session, ctx, a, live=live) for a in assets]
    facilities = session.execute(select(Facility).where(Facility.mission_id == ctx.mission_id)).scalars().all()
    out += [facility_marker(f) for f in facilities]
    session.rollback()
    return out


def asset_positions(session, ctx: Context, *, live: LiveStore) -> dict:
    """asset id -> (reported_at, marker) for the live-position poll (asset.position is not logged)."""
    assets = session.execute(select(Asset).where(Asset.mission_id == ctx.mission_id)).scalars().all()
    positions = fleet_positions.latest_positions(session, mission_id=ctx.mission_id, assets=assets, store=live)
    out = {a.id: (positions[a.id]["reported_at"], a) for a in assets if a.id in positions}
    return out


def readiness() -> dict:
    """/readyz: each gateway's connection, from its state row (a gateway silent for 2 minutes is "silent")."""
    from config.extensions import db as _db

    try:
        rows = _db.session.execute(
            select(Mission.code, TakGatewayState.server, TakGatewayState.connected, TakGatewayState.heartbeat_at).join(
                Mission, Mission.id == TakGatewayState.mission_id
            )
        ).all()
        _db.session.rollback()
    except Exception:  # noqa: BLE001 - informative only
        _db.session.rollback()
        return {}
    if not rows:
        return {}
    now = clock.now()
    out = {}
    for code, server, connected, heartbeat in rows:
        if heartbeat is None or now - heartbeat > timedelta(minutes=2):
            out[f"{code} {server}"] = "silent"
        else:
            out[f"{code} {server}"] = "connected" if connected else "disconnected"
    return {"tak": out}
