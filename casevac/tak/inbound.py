"""What a TAK event does to the backend: plain functions on an explicit session, called by the connection
loop (casevac.tak.gateway) and by tests. `handle()` never raises: a malformed event is logged and counted.

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

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from casevac import codes, policy
from casevac.codes import LATER_LINES
from casevac.fleet import assets as fleet_assets
from casevac.fleet import positions as fleet_positions
from casevac.fleet.positions import DATABASE_ONLY, LiveStore
from casevac.requests import casualties, lifecycle, lookups, service
from casevac.tak.codec import reading, stream, vocabulary
from casevac.tak.context import Context
from casevac.tak.models import TakEmergency, TakRequestLink
from core import audit, clock
from core.errors import ApiError, forbidden
from core.models import User
from core.records import update_where
from realtime import audience, events

log = logging.getLogger("casevac.tak")

PATCHABLE = ("callsign", "frequency", "suffix", "equipment", "litter", "ambulatory", *LATER_LINES)
_PRINTABLE = re.compile(r"[\x21-\x7e]{1,64}")


def _user(session, ctx: Context) -> User:
    user = session.get(User, ctx.user_id)
    if not user.active:  # disabled by an admin while the gateway runs: nothing more is filed in its name
        raise forbidden("the TAK gateway user is disabled")
    return user


def client_ref(uid: str) -> str:
    if _PRINTABLE.fullmatch(uid):
        return uid
    return "tak-" + hashlib.sha256(uid.encode()).hexdigest()[:60]


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
    decoded = reading.nine_line(event, categories=tuple(codes.NATIONALITY_CATEGORIES))
    try:
        body = service.load_filing(decoded.body)
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
                user,
                "tak.file",
                request,
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


def _by_client_ref(session, ctx: Context, uid: str):
    return lookups.by_client_ref(session, user_id=ctx.user_id, client_ref=client_ref(uid))


def _ensure_link(session, ctx: Context, request, event: reading.Event, sender_uid) -> None:
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
    request = lookups.with_casualties(session, link.request_id)
    if request.status in policy.FINAL_STATUSES:
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
    request = lookups.find_request(session, link.request_id)
    session.refresh(request)
    existing = {c.zap: c for c in request.casualties if c.zap}
    for position, casualty in enumerate(body.get("casualties") or []):
        current = existing.get(casualty.get("zap")) or (
            request.casualties[position] if position < len(request.casualties) else None
        )
        if current is None:
            if len(request.casualties) < request.patients_total and request.status in policy.BEFORE_DISPATCH:
                casualties.add_casualty(session, actor=user, request_id=request.id, body=casualty)
                session.refresh(request)
                outcome = "updated"
            continue
        signs = casualty.get("signs")
        latest = current.signs
        if signs and (latest is None or any(latest.get(k) != v for k, v in signs.items())):
            casualties.update_casualty(session, actor=user, casualty_id=current.id, changes={"signs": signs})
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
    request = lookups.find_request(session, link.request_id)
    if request.status in policy.FINAL_STATUSES:
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
    request = service.append_remark(session, request_id=request.id, note=note)
    audit.record(
        session,
        ctx.user_id,
        "tak.delete_after_dispatch",
        request,
        mission_id=ctx.mission_id,
        detail={"status": request.status},
    )
    session.commit()
    return "noted"


def on_position(session, ctx: Context, event: reading.Event, live: LiveStore) -> str:
    asset_id = fleet_assets.id_by_callsign(session, mission_id=ctx.mission_id, callsign=event.callsign)
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
    existing = _beacon(session, ctx, event.uid)
    if existing is None:
        try:
            with session.begin_nested():
                session.add(TakEmergency(mission_id=ctx.mission_id, uid=event.uid[:200], raised_at=now, **values))
        except IntegrityError:
            session.rollback()
            return "duplicate"
    elif not _switched(session, existing, was_cancelled=True, cancelled_at=None, raised_at=now, **values):
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
    row = _beacon(session, ctx, event.uid)
    if row is None:
        session.rollback()
        return "ignored"
    if not _switched(session, row, was_cancelled=False, cancelled_at=now):
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


def _beacon(session, ctx: Context, uid: str) -> TakEmergency | None:
    """The mission's emergency of this beacon uid (kept to 200 characters)."""
    return session.execute(
        select(TakEmergency).where(TakEmergency.mission_id == ctx.mission_id, TakEmergency.uid == uid[:200])
    ).scalar_one_or_none()


def _switched(session, beacon: TakEmergency, *, was_cancelled: bool, **values) -> bool:
    """The conditional UPDATE of a beacon from cancelled (raised again) or from raised (cancelled): True when
    this call made the change; False when it was no longer in that state (another gateway, or a repeat,
    changed it first), and the transaction is rolled back."""
    state = TakEmergency.cancelled_at.is_not(None) if was_cancelled else TakEmergency.cancelled_at.is_(None)
    changed = update_where(session, TakEmergency, TakEmergency.id == beacon.id, state, **values)
    if not changed:
        session.rollback()
    return bool(changed)


def _alert_coordinators(session, ctx: Context, event: reading.Event, *, action: str, kind, type_: str, data: dict):
    """Audit an emergency change and tell the mission's coordinators and admins live; commits."""
    audit.record(
        session,
        ctx.user_id,
        action,
        subject_type="tak_emergency",
        subject_id=event.uid[:64],
        mission_id=ctx.mission_id,
        detail={"kind": kind},
    )
    events.publish(session, type_, audience.coordinators_and_admins(ctx.mission_id), data, mission_id=ctx.mission_id)
    session.commit()
