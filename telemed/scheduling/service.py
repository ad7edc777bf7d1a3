"""Telemedicine rules: clinicians, availability, booking, lifecycle, join, notes, store-and-forward.

Plain functions with an explicit session and keyword-only arguments. Who may see what:
- a diagnostic consultation: its participants (the clinician, the patient if a user, whoever booked it)
  and the mission's coordinators and admins;
- a mental-health consultation: its clinician and its patient only (404 for everyone else, admins
  included); every read of one is audited (DOMAIN.md section 6, confidentiality).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import statistics
from datetime import datetime, timedelta
from pathlib import Path

import jwt as pyjwt
from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from config.extensions import db
from core import audit, clock
from core.auth import can_see_mission, ensure_mission
from core.errors import ApiError, conflict, forbidden, invalid, not_found
from core.models import User
from core.pagination import Key, paginate
from realtime import audience, events
from telemed.scheduling import availability
from telemed.scheduling.models import (MENTAL_HEALTH_SPECIALTIES, RELEASED_STATUSES, Attachment, ClinicalNote, Clinician,
                            Consultation, PsychotherapyNote, Reply)

# API.md "Telemedicine" lifecycle (FHIR R4 Appointment, DOMAIN.md section 5).
TRANSITIONS = {
    "booked": ("checked_in", "cancelled", "noshow"),
    "checked_in": ("in_progress", "cancelled", "noshow"),
    "in_progress": ("fulfilled",),
    "fulfilled": (),
    "cancelled": (),
    "noshow": (),
}
# Moves only the consultation's clinician makes (the others: any participant).
CLINICIAN_MOVES = ("in_progress", "fulfilled", "noshow")
JOIN_OPENS_BEFORE = timedelta(minutes=15)
ACCEPTED_UPLOADS = ("image/jpeg", "image/png", "application/pdf")
CONFLICT_MESSAGES = {
    "too_soon": "the time is not free with that clinician: inside their minimum notice",
    "beyond_horizon": "the time is not free with that clinician: beyond how far ahead they take bookings",
    "outside_availability": "the time is not free with that clinician: outside their availability",
    "overlaps_booking": "the time is not free with that clinician: it overlaps another booking",
}
# Ids are UUID strings; anything else in a path is unknown (and never reaches the database: a NUL
# character in a query parameter is a PostgreSQL error, not a 404).
_ID = re.compile(r"^[0-9A-Za-z-]{1,36}$")


def _known(value: str) -> bool:
    return bool(_ID.match(value or ""))


BOOKING_ROLES = {"diagnostic": {"medic", "coordinator", "clinician", "admin"},
                 "mental_health": {"member", "medic", "coordinator", "clinician", "admin"}}


# ---------------------------------------------------------------------------------------------------
# Clinicians


def _default_kinds(specialties) -> list[str]:
    kinds = []
    if any(s not in MENTAL_HEALTH_SPECIALTIES for s in specialties):
        kinds.append("diagnostic")
    if any(s in MENTAL_HEALTH_SPECIALTIES for s in specialties):
        kinds.append("mental_health")
    return kinds


def matching_clinicians(session, *, mission_id: str, specialty: str | None = None, specialties=None,
                        language: str | None = None, kind: str | None = None,
                        clinician_id: str | None = None) -> list[Clinician]:
    """Active clinician profiles of the mission matching every filter given (specialties: any of them)."""
    query = db.select(Clinician).where(Clinician.mission_id == mission_id, Clinician.active.is_(True))
    if clinician_id:
        query = query.where(Clinician.id == clinician_id)
    wanted = set(specialties or ())
    result = []
    for clinician in session.execute(query.order_by(Clinician.id)).unique().scalars():
        if specialty and specialty not in clinician.specialties:
            continue
        if wanted and not wanted.intersection(clinician.specialties):
            continue
        if language and language not in clinician.languages:
            continue
        if kind and kind not in clinician.kinds:
            continue
        result.append(clinician)
    return result


def clinician_of_user(session, user_id: str) -> Clinician | None:
    return session.execute(db.select(Clinician).where(Clinician.user_id == user_id)).unique().scalar_one_or_none()


def is_mental_health_clinician(session, user) -> bool:
    """A clinician whose active profile has specialty psychiatry or psychology (API.md screenings)."""
    if user is None or user.role != "clinician":
        return False
    profile = clinician_of_user(session, user.id)
    return bool(profile and profile.active and set(profile.specialties) & set(MENTAL_HEALTH_SPECIALTIES))


def mental_health_clinicians(session, *, mission_id: str) -> list[User]:
    """The mission's active users who are mental-health clinicians."""
    return [c.user for c in matching_clinicians(session, mission_id=mission_id,
                                                specialties=MENTAL_HEALTH_SPECIALTIES)
            if c.user.active and c.user.role == "clinician"]


def _guard_credentials(actor: User, specialties, *, was=()) -> None:
    """A mental-health specialty opens confidential records (screenings, referrals, the mental-health
    room): only an admin grants it; a clinician cannot give it to themself."""
    added = set(specialties or ()) - set(was)
    if actor.role != "admin" and not actor.superadmin and added & set(MENTAL_HEALTH_SPECIALTIES):
        raise forbidden("only an admin grants the psychiatry or psychology specialty")


def _may_edit_clinician(actor: User, clinician: Clinician) -> bool:
    return actor.id == clinician.user_id or (actor.role == "admin" and can_see_mission(actor, clinician.mission_id))


def create_clinician(session, *, actor: User, user_id: str, specialties: list[str], languages: list[str],
                     timezone: str, kinds: list[str] | None = None, display_name: str | None = None) -> Clinician:
    user = session.get(User, user_id) if _known(user_id) else None
    if user is None or not can_see_mission(actor, user.mission_id):
        raise invalid("user_id", "unknown user")
    if actor.id != user.id and not (actor.role == "admin" and can_see_mission(actor, user.mission_id)):
        raise forbidden("an admin of the mission or the clinician themself creates a profile")
    if user.role != "clinician":
        raise invalid("user_id", "the user's role is not clinician")
    _guard_credentials(actor, specialties)
    clinician = Clinician(user_id=user.id, mission_id=user.mission_id, specialties=list(dict.fromkeys(specialties)),
                          languages=list(dict.fromkeys(languages)), timezone=timezone,
                          kinds=list(dict.fromkeys(kinds or _default_kinds(specialties))),
                          display_name=display_name or user.display_name, weekly=[], overrides=[])
    session.add(clinician)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise conflict("this user already has a clinician profile") from None
    audit.record(session, actor=actor, action="telemed.clinician.create", subject_type="clinician",
                 subject_id=clinician.id, mission_id=clinician.mission_id)
    session.commit()
    return clinician


def get_clinician(session, *, actor: User, clinician_id: str) -> Clinician:
    clinician = session.get(Clinician, clinician_id) if _known(clinician_id) else None
    if clinician is None:
        raise not_found("clinician")
    ensure_mission(actor, clinician.mission_id, "clinician")
    return clinician


def list_clinicians(session, *, actor: User, limit: int, cursor: str | None, specialty=None, language=None,
                    kind=None):
    query = db.select(Clinician).where(Clinician.mission_id == actor.mission_id)
    if specialty or language or kind:
        ids = [c.id for c in matching_clinicians(session, mission_id=actor.mission_id, specialty=specialty,
                                                 language=language, kind=kind)]
        query = query.where(Clinician.id.in_(ids))
    page = paginate(query, [Key(Clinician.id)], limit=limit, cursor=cursor, session=session)
    return page


def update_clinician(session, *, actor: User, clinician_id: str, **changes) -> Clinician:
    clinician = get_clinician(session, actor=actor, clinician_id=clinician_id)
    if not _may_edit_clinician(actor, clinician):
        raise forbidden("an admin of the mission or the clinician themself edits a profile")
    if "specialties" in changes:
        _guard_credentials(actor, changes["specialties"], was=clinician.specialties)
    if "active" in changes and actor.role != "admin" and not actor.superadmin:
        raise forbidden("only an admin activates or deactivates a clinician")
    for name in ("specialties", "languages", "kinds"):
        if name in changes:
            changes[name] = list(dict.fromkeys(changes[name]))
    for name, value in changes.items():
        setattr(clinician, name, value)
    clinician.profile_version = Clinician.profile_version + 1
    audit.record(session, actor=actor, action="telemed.clinician.update", subject_type="clinician",
                 subject_id=clinician.id, mission_id=clinician.mission_id, detail={"fields": sorted(changes)})
    session.commit()
    return clinician


def set_availability(session, *, actor: User, clinician_id: str, weekly: list[dict], overrides: list[dict],
                     slot_minutes: int, buffer_minutes: int, min_notice_minutes: int,
                     horizon_days: int) -> Clinician:
    """Replace the weekly windows and overrides (times in the clinician's zone). Existing bookings stand."""
    clinician = get_clinician(session, actor=actor, clinician_id=clinician_id)
    if not _may_edit_clinician(actor, clinician):
        raise forbidden("an admin of the mission or the clinician themself sets availability")
    clinician.weekly = [dict(w) for w in weekly]
    clinician.overrides = [{"date": o["date"].isoformat(), "windows": [dict(w) for w in o["windows"]]}
                           for o in sorted(overrides, key=lambda o: o["date"])]
    clinician.slot_minutes = slot_minutes
    clinician.buffer_minutes = buffer_minutes
    clinician.min_notice_minutes = min_notice_minutes
    clinician.horizon_days = horizon_days
    clinician.profile_version = Clinician.profile_version + 1
    audit.record(session, actor=actor, action="telemed.scheduling.availability.set", subject_type="clinician",
                 subject_id=clinician.id, mission_id=clinician.mission_id)
    session.commit()
    return clinician


# ---------------------------------------------------------------------------------------------------
# Slots

MAX_SEARCH_DAYS = 31


def search_slots(session, *, actor: User, from_: datetime | None = None, to: datetime | None = None,
                 specialty=None, language=None, kind=None, duration: int | None = None, clinician_id=None,
                 limit: int = 50, cursor: str | None = None) -> dict:
    """Free slots in the caller's mission, sorted by start: {"items", "next_cursor"}."""
    from core.pagination import decode_cursor, encode_cursor

    start = clock.as_utc(from_) if from_ else clock.now()
    end = clock.as_utc(to) if to else start + timedelta(days=7)
    if end <= start:
        raise invalid("to", "must be after from", location="query")
    if end - start > timedelta(days=MAX_SEARCH_DAYS):
        raise invalid("to", f"at most {MAX_SEARCH_DAYS} days after from", location="query")
    after = None
    if cursor:
        at, cid = decode_cursor(cursor, 2)
        if not isinstance(at, datetime) or not isinstance(cid, str):
            raise invalid("cursor", "not a cursor returned by this list", location="query")
        after = (at, cid)
    items = availability.find_slots(session, mission_id=actor.mission_id, start=start, end=end,
                                    specialty=specialty, language=language, kind=kind,
                                    duration_minutes=duration, clinician_id=clinician_id, limit=limit + 1,
                                    after=after)
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor([items[-1]["start"], items[-1]["clinician_id"]])
    return {"items": items, "next_cursor": next_cursor}


def fhir_slot_bundle(slots: list[dict]) -> dict:
    """A FHIR R4 searchset Bundle of Slot resources (status free; the Schedule is the clinician's)."""
    entries = []
    for slot in slots:
        slot_id = hashlib.sha256(f"{slot['clinician_id']}|{slot['start'].isoformat()}".encode()).hexdigest()[:32]
        entries.append({"fullUrl": f"urn:uuid:{_uuid_like(slot_id)}", "resource": {
            "resourceType": "Slot", "id": slot_id,
            "schedule": {"reference": f"Schedule/{slot['clinician_id']}"},
            "status": "free",
            "start": _fhir_instant(slot["start"]), "end": _fhir_instant(slot["end"])}})
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def _uuid_like(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"


def _fhir_instant(value: datetime) -> str:
    return clock.as_utc(value).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------------
# Consultations: access


def participants(consultation: Consultation) -> set[str]:
    ids = {consultation.clinician.user_id}
    if consultation.patient_user_id:
        ids.add(consultation.patient_user_id)
    if consultation.kind != "mental_health":
        ids.add(consultation.booked_by)
    return ids


def _visible(actor: User, consultation: Consultation) -> bool:
    if not can_see_mission(actor, consultation.mission_id):
        return False
    if actor.id in participants(consultation):
        return True
    # Mental-health consultations: participants only, whatever the role (DOMAIN.md section 6).
    return consultation.kind != "mental_health" and actor.role in ("coordinator", "admin")


def _load(session, actor: User, consultation_id: str) -> Consultation:
    if not _known(consultation_id):
        raise not_found("consultation")
    query = db.select(Consultation).where(Consultation.id == consultation_id)
    consultation = session.execute(query.execution_options(populate_existing=True)).unique().scalar_one_or_none()
    if consultation is None or not _visible(actor, consultation):
        raise not_found("consultation")
    return consultation


def _audit_read(session, actor: User, consultation: Consultation, what: str) -> None:
    """Every read of a mental-health record is audited (issue 6/7; the member can see who read it)."""
    if consultation.kind == "mental_health":
        audit.record(session, actor=actor, action="telemed.consultation.read", subject_type="consultation",
                     subject_id=consultation.id, mission_id=consultation.mission_id,
                     detail={"kind": "mental_health", "what": what})


def _event_data(consultation: Consultation, **extra) -> dict:
    # No reason, notes or replies: events carry what a client needs to refresh, never clinical text.
    data = {"id": consultation.id, "kind": consultation.kind, "status": consultation.status,
            "modality": consultation.modality, "clinician_id": consultation.clinician_id,
            "start": consultation.start.isoformat(), "end": consultation.end.isoformat()}
    data.update(extra)
    return data


def _publish(session, consultation: Consultation, type_: str, **extra) -> None:
    rooms = sorted(audience.user(uid) for uid in participants(consultation))
    events.publish(session, type_, rooms, _event_data(consultation, **extra), mission_id=consultation.mission_id)


def _history(consultation: Consultation, status: str, actor: User | None, **extra) -> None:
    entry = {"status": status, "at": clock.now().isoformat(), "by": getattr(actor, "id", None)}
    entry.update({k: v for k, v in extra.items() if v is not None})
    consultation.history = [*(consultation.history or []), entry]


# ---------------------------------------------------------------------------------------------------
# Booking


def _lock_clinician(session, clinician_id: str) -> Clinician:
    """Take the clinician's row lock for the rest of the transaction and re-read the profile.

    The UPDATE is the first write of the transaction: on PostgreSQL it locks the row, on SQLite it takes
    the database's write lock; either way one clinician's bookings run one after the other, and the
    check below sees every booking committed before it (cal.com issue 13397: never check-then-insert
    without it). On PostgreSQL the exclusion constraint is the second line of defence."""
    session.execute(update(Clinician).where(Clinician.id == clinician_id)
                    .values(booking_seq=Clinician.booking_seq + 1, updated_at=Clinician.updated_at)
                    .execution_options(synchronize_session=False))
    return session.execute(db.select(Clinician).where(Clinician.id == clinician_id)
                           .execution_options(populate_existing=True)).unique().scalar_one()


def _check_time(session, clinician: Clinician, *, start: datetime, duration_minutes: int,
                exclude_consultation_id: str | None = None) -> None:
    plan = availability.Plan.of(clinician)
    s = availability.to_epoch(start)
    d = duration_minutes * 60
    busy = availability.load_busy(session, [clinician.id], s - d - plan.buffer_seconds - 86400,
                                  s + d + plan.buffer_seconds + 86400,
                                  exclude_consultation_id=exclude_consultation_id)[clinician.id]
    why = availability.fits(plan, busy, start=s, duration=d, now=availability.to_epoch(clock.now()))
    if why:
        session.rollback()
        raise conflict(CONFLICT_MESSAGES[why], reason=why)


def _integrity_conflict(session) -> ApiError:
    session.rollback()
    return conflict(CONFLICT_MESSAGES["overlaps_booking"], reason="overlaps_booking")


def book(session, *, actor: User, kind: str, clinician_id: str, start: datetime | None, modality: str,
         reason: str, patient: dict, duration_minutes: int | None = None) -> Consultation:
    """POST /consultations: 201, or 409 when the time is not free with that clinician."""
    if actor.role not in BOOKING_ROLES[kind]:
        raise forbidden(f"a {actor.role} may not book a {kind} consultation")
    clinician = session.get(Clinician, clinician_id) if _known(clinician_id) else None
    if clinician is None or clinician.mission_id != actor.mission_id or not clinician.active:
        raise invalid("clinician_id", "unknown clinician")
    if kind not in clinician.kinds:
        raise invalid("kind", f"this clinician takes: {', '.join(clinician.kinds) or 'none'}")
    patient = dict(patient or {})
    if kind == "mental_health":
        # A member books for themself; a mental-health clinician may book for a patient (DOMAIN.md 6:
        # self-referral without going through command). Nobody books one for someone else.
        patient["user_id"] = patient.get("user_id") or actor.id
        if patient["user_id"] != actor.id and not (actor.id == clinician.user_id or
                                                   is_mental_health_clinician(session, actor)):
            raise forbidden("a mental-health consultation is booked by the patient or a mental-health clinician")
    elif actor.role == "member":
        raise forbidden("a member may book a mental_health consultation for themselves only")
    if patient.get("user_id"):
        patient_user = session.get(User, patient["user_id"]) if _known(patient["user_id"]) else None
        if patient_user is None or patient_user.mission_id != clinician.mission_id:
            raise invalid("patient.user_id", "unknown user")
    if not any(patient.get(k) for k in ("name", "user_id", "casualty_id")):
        raise invalid("patient", "give at least one of name, user_id, casualty_id")
    duration = duration_minutes or clinician.slot_minutes
    now = clock.now()
    if modality == "async":
        # Store-and-forward holds no time on the clinician's calendar: the clock runs from submission.
        start, block = now, (None, None)
    else:
        clinician = _lock_clinician(session, clinician.id)
        start = clock.as_utc(start)
        _check_time(session, clinician, start=start, duration_minutes=duration)
        block = (start, start + timedelta(minutes=duration + clinician.buffer_minutes))
    consultation = Consultation(
        mission_id=clinician.mission_id, clinician_id=clinician.id, kind=kind, modality=modality,
        status="booked", start=start, end=start + timedelta(minutes=duration), duration_minutes=duration,
        block_start=block[0], block_end=block[1], reason=reason, patient_name=patient.get("name"),
        patient_user_id=patient.get("user_id"), patient_casualty_id=patient.get("casualty_id"),
        booked_by=actor.id, room=secrets.token_urlsafe(24), history=[], created_at=now, updated_at=now)
    consultation.clinician = clinician
    _history(consultation, "booked", actor)
    session.add(consultation)
    try:
        session.flush()
    except IntegrityError:
        raise _integrity_conflict(session) from None
    audit.record(session, actor=actor, action="telemed.consultation.book", subject_type="consultation",
                 subject_id=consultation.id, mission_id=consultation.mission_id, detail={"kind": kind})
    _publish(session, consultation, "consult.booked")
    session.commit()
    return consultation


def get_consultation(session, *, actor: User, consultation_id: str) -> Consultation:
    consultation = _load(session, actor, consultation_id)
    _audit_read(session, actor, consultation, "consultation")
    session.commit()
    return consultation


def list_consultations(session, *, actor: User, limit: int, cursor: str | None, status=None, kind=None,
                       clinician_id=None, from_=None, to=None):
    """The caller's consultations (coordinators and admins: also every diagnostic one of the mission)."""
    query = db.select(Consultation).join(Clinician, Consultation.clinician_id == Clinician.id).where(
        Consultation.mission_id == actor.mission_id)
    mine = or_(Clinician.user_id == actor.id, Consultation.patient_user_id == actor.id,
               (Consultation.booked_by == actor.id) & (Consultation.kind != "mental_health"))
    if actor.role in ("coordinator", "admin"):
        query = query.where(or_(mine, Consultation.kind != "mental_health"))
    else:
        query = query.where(mine)
    if status:
        query = query.where(Consultation.status == status)
    if kind:
        query = query.where(Consultation.kind == kind)
    if clinician_id:
        query = query.where(Consultation.clinician_id == clinician_id)
    if from_:
        query = query.where(Consultation.end > from_)
    if to:
        query = query.where(Consultation.start < to)
    page = paginate(query, [Key(Consultation.start), Key(Consultation.id)], limit=limit, cursor=cursor,
                    session=session)
    for consultation in page["items"]:
        _audit_read(session, actor, consultation, "list")
    session.commit()
    return page


# ---------------------------------------------------------------------------------------------------
# Lifecycle


def change_status(session, *, actor: User, consultation_id: str, status: str,
                  reason: str | None = None) -> Consultation:
    consultation = _load(session, actor, consultation_id)
    current = consultation.status
    allowed = TRANSITIONS[current]
    if status not in allowed:
        raise conflict(f"a {current} consultation cannot become {status}", allowed=list(allowed))
    if status in CLINICIAN_MOVES and actor.id != consultation.clinician.user_id and not (
            consultation.kind != "mental_health" and actor.role in ("coordinator", "admin")):
        raise forbidden(f"only the consultation's clinician marks it {status}")
    if actor.id not in participants(consultation) and actor.role not in ("coordinator", "admin"):
        raise forbidden("only a participant changes a consultation")
    if status in RELEASED_STATUSES and not reason:
        raise invalid("reason", f"required when the status becomes {status}")
    values = {"status": status, "updated_at": clock.now()}
    if status in RELEASED_STATUSES:
        # Releasing the block frees the time for other bookings.
        values.update(status_reason=reason, block_start=None, block_end=None)
    # Conditional update: of two racing changes from the same state, one wins and the other gets 409.
    result = session.execute(update(Consultation).where(Consultation.id == consultation.id,
                                                        Consultation.status == current).values(**values)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        session.rollback()
        fresh = _load(session, actor, consultation_id)
        raise conflict(f"the consultation is now {fresh.status}", allowed=list(TRANSITIONS[fresh.status]))
    consultation = _load(session, actor, consultation_id)
    _history(consultation, status, actor, reason=reason)
    audit.record(session, actor=actor, action="telemed.consultation.status", subject_type="consultation",
                 subject_id=consultation.id, mission_id=consultation.mission_id,
                 detail={"from": current, "to": status})
    _publish(session, consultation, "consult.updated", change="status")
    session.commit()
    return consultation


def reschedule(session, *, actor: User, consultation_id: str, start: datetime) -> Consultation:
    """Move a booked consultation. Atomic: one transaction moves the row, so the old time is freed only
    if the new one is taken (a 409 leaves the booking where it was)."""
    consultation = _load(session, actor, consultation_id)
    if actor.id not in participants(consultation) and actor.role not in ("coordinator", "admin"):
        raise forbidden("only a participant reschedules a consultation")
    if consultation.modality == "async":
        raise conflict("a store-and-forward consultation has no time to move", allowed=[])
    if consultation.status != "booked":
        raise conflict(f"only a booked consultation can be rescheduled; this one is {consultation.status}",
                       allowed=list(TRANSITIONS[consultation.status]))
    clinician = _lock_clinician(session, consultation.clinician_id)
    start = clock.as_utc(start)
    _check_time(session, clinician, start=start, duration_minutes=consultation.duration_minutes,
                exclude_consultation_id=consultation.id)
    old_start = consultation.start
    end = start + timedelta(minutes=consultation.duration_minutes)
    try:
        # On PostgreSQL the exclusion constraint fires on this UPDATE (it is not deferred).
        result = session.execute(
            update(Consultation).where(Consultation.id == consultation.id, Consultation.status == "booked")
            .values(start=start, end=end, block_start=start,
                    block_end=end + timedelta(minutes=clinician.buffer_minutes), reminded_at=None,
                    updated_at=clock.now())
            .execution_options(synchronize_session=False))
    except IntegrityError:
        raise _integrity_conflict(session) from None
    if result.rowcount != 1:
        session.rollback()
        raise conflict("the consultation is no longer booked", allowed=[])
    consultation = _load(session, actor, consultation_id)
    _history(consultation, "booked", actor, start=start.isoformat(), reason="rescheduled")
    audit.record(session, actor=actor, action="telemed.consultation.reschedule", subject_type="consultation",
                 subject_id=consultation.id, mission_id=consultation.mission_id,
                 detail={"from": old_start.isoformat(), "to": start.isoformat()})
    _publish(session, consultation, "consult.updated", change="reschedule")
    try:
        session.commit()
    except IntegrityError:
        raise _integrity_conflict(session) from None
    return consultation


# ---------------------------------------------------------------------------------------------------
# Join (video bridge tokens)


def _video_secret(settings) -> str:
    if settings.VIDEO_APP_SECRET:
        return settings.VIDEO_APP_SECRET
    # Derived, so a default deployment works; set VIDEO_APP_SECRET to share it with the bridge.
    return hmac.new(settings.SECRET_KEY.encode(), b"telemed-video-bridge", hashlib.sha256).hexdigest()


def join(session, *, actor: User, consultation_id: str, settings) -> dict:
    """A room and this participant's token, valid from 15 minutes before the start to the end."""
    consultation = _load(session, actor, consultation_id)
    if actor.id not in participants(consultation):
        raise forbidden("only the consultation's participants join it")
    _audit_read(session, actor, consultation, "join")
    session.commit()
    if consultation.modality == "async":
        raise conflict("a store-and-forward consultation has no live session", allowed=[])
    if consultation.status not in ("booked", "checked_in", "in_progress"):
        raise conflict(f"the consultation is {consultation.status}", allowed=[])
    valid_from = consultation.start - JOIN_OPENS_BEFORE
    valid_until = consultation.end
    now = clock.now()
    if not valid_from <= now < valid_until:
        raise conflict("the join link is valid from 15 minutes before the start to the end",
                       valid_from=valid_from.isoformat(), valid_until=valid_until.isoformat())
    # Jitsi token authentication (prosody mod_auth_token): aud, iss = app id, sub = domain, room, nbf, exp.
    claims = {
        "aud": "jitsi", "iss": settings.VIDEO_APP_ID, "sub": settings.VIDEO_DOMAIN or "*",
        "room": consultation.room, "nbf": int(valid_from.timestamp()), "exp": int(valid_until.timestamp()),
        "iat": int(now.timestamp()), "jti": secrets.token_urlsafe(16),
        "context": {"user": {"id": actor.id, "name": actor.display_name or actor.username,
                             "moderator": actor.id == consultation.clinician.user_id}},
    }
    token = pyjwt.encode(claims, _video_secret(settings), algorithm="HS256")
    url = f"https://{settings.VIDEO_DOMAIN}/{consultation.room}?jwt={token}" if settings.VIDEO_DOMAIN else None
    return {"room": consultation.room, "token": token, "valid_from": valid_from, "valid_until": valid_until,
            "url": url}


# ---------------------------------------------------------------------------------------------------
# Notes


def add_note(session, *, actor: User, consultation_id: str, kind: str, text: str) -> dict:
    consultation = _load(session, actor, consultation_id)
    if actor.id != consultation.clinician.user_id:
        raise forbidden("only the consultation's clinician writes notes")
    if kind == "psychotherapy":
        if not is_mental_health_clinician(session, actor):
            raise forbidden("psychotherapy notes are written by mental-health clinicians")
        note = PsychotherapyNote(consultation_id=consultation.id, author_id=actor.id, text=text)
    else:
        note = ClinicalNote(consultation_id=consultation.id, author_id=actor.id, text=text)
    session.add(note)
    session.flush()
    # The audit row names the note, never its text.
    audit.record(session, actor=actor, action=f"telemed.note.{kind}.create", subject_type="consultation",
                 subject_id=consultation.id, mission_id=consultation.mission_id, detail={"note_id": note.id})
    session.commit()
    return _note_out(note, kind)


def _note_out(note, kind: str) -> dict:
    return {"id": note.id, "consultation_id": note.consultation_id, "kind": kind, "author_id": note.author_id,
            "text": note.text, "created_at": note.created_at}


def list_notes(session, *, actor: User, consultation_id: str) -> dict:
    """Clinical notes for the clinician and the patient; psychotherapy notes for their author alone."""
    consultation = _load(session, actor, consultation_id)
    readers = {consultation.clinician.user_id, consultation.patient_user_id}
    if actor.id not in readers:
        raise forbidden("clinical notes are read by the consultation's clinician and its patient")
    clinical = session.execute(db.select(ClinicalNote).where(ClinicalNote.consultation_id == consultation.id)
                               ).scalars().all()
    items = [_note_out(n, "clinical") for n in clinical]
    own = session.execute(db.select(PsychotherapyNote).where(
        PsychotherapyNote.consultation_id == consultation.id, PsychotherapyNote.author_id == actor.id)
    ).scalars().all()
    items += [_note_out(n, "psychotherapy") for n in own]
    items.sort(key=lambda n: (n["created_at"], n["id"]))
    _audit_read(session, actor, consultation, "notes")
    if own:
        audit.record(session, actor=actor, action="telemed.note.psychotherapy.read", subject_type="consultation",
                     subject_id=consultation.id, mission_id=consultation.mission_id, detail={"count": len(own)})
    session.commit()
    return {"items": items}


# ---------------------------------------------------------------------------------------------------
# Store-and-forward: replies, attachments, response clock


def add_reply(session, *, actor: User, consultation_id: str, text: str) -> Reply:
    consultation = _load(session, actor, consultation_id)
    if actor.id not in participants(consultation):
        raise forbidden("only the consultation's participants write in it")
    if consultation.status in RELEASED_STATUSES:
        raise conflict(f"the consultation is {consultation.status}", allowed=[])
    now = clock.now()
    reply = Reply(consultation_id=consultation.id, author_id=actor.id, text=text, created_at=now)
    session.add(reply)
    first = False
    if actor.id == consultation.clinician.user_id:
        # The response-time clock stops at the clinician's first reply (exactly once).
        first = session.execute(update(Consultation).where(Consultation.id == consultation.id,
                                                           Consultation.first_reply_at.is_(None))
                                .values(first_reply_at=now).execution_options(synchronize_session=False)
                                ).rowcount == 1
    session.flush()
    audit.record(session, actor=actor, action="telemed.reply.create", subject_type="consultation",
                 subject_id=consultation.id, mission_id=consultation.mission_id, detail={"reply_id": reply.id})
    _publish(session, consultation, "consult.updated", change="reply", first_reply=first)
    session.commit()
    return reply


def list_replies(session, *, actor: User, consultation_id: str) -> dict:
    consultation = _load(session, actor, consultation_id)
    if actor.id not in participants(consultation):
        raise forbidden("only the consultation's participants read its replies")
    _audit_read(session, actor, consultation, "replies")
    items = session.execute(db.select(Reply).where(Reply.consultation_id == consultation.id)
                            .order_by(Reply.created_at, Reply.id)).scalars().all()
    session.commit()
    return {"items": items}


def _upload_dir(settings) -> Path:
    path = Path(settings.UPLOAD_DIR)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def add_attachment(session, *, actor: User, consultation_id: str, stream, filename: str | None,
                   settings) -> Attachment:
    """Store an image or PDF: type from the content (filetype), size capped at MAX_UPLOAD_MB (413),
    saved outside the web root under a random name."""
    import filetype

    consultation = _load(session, actor, consultation_id)
    if actor.id not in participants(consultation):
        raise forbidden("only the consultation's participants add attachments")
    cap = settings.MAX_UPLOAD_MB * 1024 * 1024
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise ApiError(413, f"the file is larger than {settings.MAX_UPLOAD_MB} MB")
    if not data:
        raise invalid("file", "the file is empty", location="files")
    kind = filetype.guess(data)
    content_type = kind.mime if kind else None
    if content_type not in ACCEPTED_UPLOADS:
        raise ApiError(415, "only JPEG, PNG and PDF files are accepted (the type is read from the content)",
                       allowed=list(ACCEPTED_UPLOADS), detected=content_type)
    stored_name = secrets.token_hex(16)
    path = _upload_dir(settings) / stored_name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    safe_name = None
    if filename:
        safe_name = "".join(ch for ch in Path(filename).name if ch.isprintable() and ch not in '"\\/')[:200] or None
    attachment = Attachment(consultation_id=consultation.id, uploaded_by=actor.id, content_type=content_type,
                            size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                            stored_name=stored_name, filename=safe_name)
    session.add(attachment)
    try:
        session.flush()
        audit.record(session, actor=actor, action="telemed.attachment.create", subject_type="consultation",
                     subject_id=consultation.id, mission_id=consultation.mission_id,
                     detail={"attachment_id": attachment.id, "content_type": content_type, "size": len(data)})
        _publish(session, consultation, "consult.updated", change="attachment")
        session.commit()
    except Exception:
        session.rollback()
        path.unlink(missing_ok=True)
        raise
    return attachment


def list_attachments(session, *, actor: User, consultation_id: str) -> dict:
    consultation = _load(session, actor, consultation_id)
    if actor.id not in participants(consultation):
        raise forbidden("only the consultation's participants see its attachments")
    _audit_read(session, actor, consultation, "attachments")
    items = session.execute(db.select(Attachment).where(Attachment.consultation_id == consultation.id)
                            .order_by(Attachment.created_at, Attachment.id)).scalars().all()
    session.commit()
    return {"items": items}


def read_attachment(session, *, actor: User, consultation_id: str, attachment_id: str,
                    settings) -> tuple[Attachment, bytes]:
    consultation = _load(session, actor, consultation_id)
    if actor.id not in participants(consultation):
        raise forbidden("only the consultation's participants see its attachments")
    attachment = session.get(Attachment, attachment_id) if _known(attachment_id) else None
    if attachment is None or attachment.consultation_id != consultation.id:
        raise not_found("attachment")
    data = (Path(settings.UPLOAD_DIR) / attachment.stored_name).read_bytes()
    _audit_read(session, actor, consultation, "attachment")
    audit.record(session, actor=actor, action="telemed.attachment.read", subject_type="consultation",
                 subject_id=consultation.id, mission_id=consultation.mission_id,
                 detail={"attachment_id": attachment.id})
    session.commit()
    return attachment, data


def metrics(session, *, actor: User, from_: datetime | None = None, to: datetime | None = None) -> dict:
    """Counts and the store-and-forward response clock (median time to first reply, DOMAIN.md section 5:
    MSF teledermatology answered in a median 10.2 h). Mental-health consultations are only counted,
    and only when there are at least 5 (no small counts that could identify someone)."""
    query = db.select(Consultation.kind, Consultation.status, Consultation.modality, Consultation.created_at,
                      Consultation.first_reply_at).where(Consultation.mission_id == actor.mission_id)
    if from_:
        query = query.where(Consultation.created_at >= from_)
    if to:
        query = query.where(Consultation.created_at < to)
    rows = session.execute(query).all()
    diagnostic = [r for r in rows if r.kind == "diagnostic"]
    mental = len(rows) - len(diagnostic)
    by_status: dict[str, int] = {}
    by_modality: dict[str, int] = {}
    for r in diagnostic:
        by_status[r.status] = by_status.get(r.status, 0) + 1
        by_modality[r.modality] = by_modality.get(r.modality, 0) + 1
    async_rows = [r for r in diagnostic if r.modality == "async"]
    waits = [(r.first_reply_at - r.created_at).total_seconds() / 60 for r in async_rows if r.first_reply_at]
    return {
        "from_": from_, "to": to,
        "consultations": {"diagnostic": len(diagnostic)},
        "by_status": by_status, "by_modality": by_modality,
        "mental_health": mental if mental >= 5 else None,
        "store_and_forward": {"count": len(async_rows), "answered": len(waits),
                              "median_minutes_to_first_reply": round(statistics.median(waits), 1) if waits else None},
    }


# ---------------------------------------------------------------------------------------------------
# Exports: iCalendar and FHIR


def ics(session, *, actor: User, consultation_id: str) -> bytes:
    """An RFC 5545 invitation: DTSTART/DTEND in the clinician's zone (with its VTIMEZONE), UTC in the
    description. No reason or patient name: invitations get forwarded."""
    from zoneinfo import ZoneInfo

    import icalendar

    consultation = _load(session, actor, consultation_id)
    _audit_read(session, actor, consultation, "ics")
    session.commit()
    tz = ZoneInfo(consultation.clinician.timezone)
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Field medical coordination//telemed//EN")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if consultation.status in RELEASED_STATUSES else "REQUEST")
    event = icalendar.Event()
    event.add("uid", f"{consultation.id}@telemed")
    event.add("dtstamp", clock.now())
    event.add("dtstart", consultation.start.astimezone(tz))
    event.add("dtend", consultation.end.astimezone(tz))
    name = consultation.clinician.display_name or "clinician"
    kind = "Mental-health consultation" if consultation.kind == "mental_health" else "Telemedicine consultation"
    event.add("summary", f"{kind} ({consultation.modality}) with {name}")
    event.add("description", f"{kind}, {consultation.modality}. "
                             f"{_fhir_instant(consultation.start)} to {_fhir_instant(consultation.end)} UTC "
                             f"({consultation.clinician.timezone} for the clinician). Join from the app, "
                             f"from 15 minutes before the start.")
    event.add("status", "CANCELLED" if consultation.status in RELEASED_STATUSES else "CONFIRMED")
    event.add("sequence", sum(1 for h in consultation.history or [] if h.get("reason") == "rescheduled"))
    cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()


FHIR_STATUS = {"booked": "booked", "checked_in": "checked-in", "in_progress": "arrived",
               "fulfilled": "fulfilled", "cancelled": "cancelled", "noshow": "noshow"}


def fhir_appointment(session, *, actor: User, consultation_id: str) -> dict:
    """A FHIR R4 Appointment. In progress maps to `arrived` (the session itself is an Encounter of class VR);
    cancelationReason only when cancelled or noshow (DOMAIN.md section 5)."""
    consultation = _load(session, actor, consultation_id)
    _audit_read(session, actor, consultation, "fhir")
    session.commit()
    patient_actor = ({"reference": f"Patient/{consultation.patient_user_id}"} if consultation.patient_user_id
                     else {"display": consultation.patient_name or f"casualty {consultation.patient_casualty_id}"})
    resource = {
        "resourceType": "Appointment", "id": consultation.id,
        "status": FHIR_STATUS[consultation.status],
        "serviceCategory": [{"text": consultation.kind.replace("_", " ")}],
        "appointmentType": {"text": consultation.modality},
        "specialty": [{"text": s} for s in consultation.clinician.specialties],
        "start": _fhir_instant(consultation.start), "end": _fhir_instant(consultation.end),
        "minutesDuration": consultation.duration_minutes,
        "created": consultation.created_at.date().isoformat(),
        "participant": [
            {"actor": {"reference": f"Practitioner/{consultation.clinician_id}",
                       "display": consultation.clinician.display_name or "clinician"},
             "required": "required", "status": "accepted"},
            {"actor": patient_actor, "required": "required", "status": "accepted"},
        ],
    }
    if consultation.kind != "mental_health":
        resource["description"] = consultation.reason
    if consultation.status in RELEASED_STATUSES and consultation.status_reason:
        resource["cancelationReason"] = {"text": consultation.status_reason}
    return resource


# ---------------------------------------------------------------------------------------------------
# Reminders (sweeper task)


def send_reminders(session, *, now: datetime, settings) -> int:
    """consult.reminder to the participants REMINDER_MINUTES_BEFORE the start, exactly once per booking
    time: the conditional UPDATE (reminded_at IS NULL) lets one process win across many."""
    due = now + timedelta(minutes=settings.REMINDER_MINUTES_BEFORE)
    ids = session.execute(db.select(Consultation.id).where(
        Consultation.status.in_(("booked", "checked_in")), Consultation.modality != "async",
        Consultation.reminded_at.is_(None), Consultation.start <= due, Consultation.end > now)).scalars().all()
    sent = 0
    for consultation_id in ids:
        won = session.execute(update(Consultation).where(Consultation.id == consultation_id,
                                                         Consultation.reminded_at.is_(None))
                              .values(reminded_at=now).execution_options(synchronize_session=False)).rowcount
        if won != 1:
            continue
        consultation = session.get(Consultation, consultation_id)
        _publish(session, consultation, "consult.reminder",
                 minutes_to_start=max(0, int((consultation.start - now).total_seconds() // 60)))
        sent += 1
    session.commit()
    return sent


def _register_seams() -> None:
    from realtime import sockets, sweeper

    sockets.set_mental_health_check(lambda user: is_mental_health_clinician(db.session, user))
    sweeper.register("telemed.reminders", send_reminders)


_register_seams()

