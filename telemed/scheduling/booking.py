"""Booking, the consultation lifecycle, rescheduling, reminders and the consultation metrics.

The database decides races: the clinician's row lock serialises one clinician's bookings and the
exclusion constraint (PostgreSQL) is the second line of defence; status moves are conditional updates."""

from __future__ import annotations

import secrets
import statistics
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError

from config.extensions import db
from core import audit, clock
from core.auth import COORDINATORS
from core.db import is_id
from core.errors import ApiError, conflict, forbidden, invalid
from core.models import User
from core.pagination import Key, paginate, where_given
from core.records import flush_or_conflict, update_where
from telemed import policy
from telemed.scheduling import access, availability, notices
from telemed.scheduling.clinicians import is_mental_health_clinician
from telemed.scheduling.models import RELEASED_STATUSES, Clinician, Consultation

# API.md "Telemedicine" lifecycle (FHIR R4 Appointment, DOMAIN.md section 5).
TRANSITIONS = {
    "booked": ("checked_in", "cancelled", "noshow"),
    "checked_in": ("in_progress", "cancelled", "noshow"),
    "in_progress": ("fulfilled",),
    "fulfilled": (),
    "cancelled": (),
    "noshow": (),
}


CONFLICT_MESSAGES = {
    "too_soon": "the time is not free with that clinician: inside their minimum notice",
    "beyond_horizon": "the time is not free with that clinician: beyond how far ahead they take bookings",
    "outside_availability": "the time is not free with that clinician: outside their availability",
    "overlaps_booking": "the time is not free with that clinician: it overlaps another booking",
}


def _lock_clinician(session, clinician_id: str) -> Clinician:
    """Take the clinician's row lock for the rest of the transaction and re-read the profile.

    The UPDATE is the first write of the transaction: on PostgreSQL it locks the row, on SQLite it takes
    the database's write lock; either way one clinician's bookings run one after the other, and the
    check below sees every booking committed before it (cal.com issue 13397: never check-then-insert
    without it). On PostgreSQL the exclusion constraint is the second line of defence."""
    update_where(
        session,
        Clinician,
        Clinician.id == clinician_id,
        booking_seq=Clinician.booking_seq + 1,
        updated_at=Clinician.updated_at,
    )
    return (
        session.execute(
            db.select(Clinician).where(Clinician.id == clinician_id).execution_options(populate_existing=True)
        )
        .unique()
        .scalar_one()
    )


def _check_time(
    session, clinician: Clinician, *, start: datetime, duration_minutes: int, exclude_consultation_id: str | None = None
) -> None:
    plan = availability.Plan.of(clinician)
    s = availability.to_epoch(start)
    d = duration_minutes * 60
    busy = availability.load_busy(
        session,
        [clinician.id],
        s - d - plan.buffer_seconds - 86400,
        s + d + plan.buffer_seconds + 86400,
        exclude_consultation_id=exclude_consultation_id,
    )[clinician.id]
    why = availability.fits(plan, busy, start=s, duration=d, now=availability.to_epoch(clock.now()))
    if why:
        session.rollback()
        raise conflict(CONFLICT_MESSAGES[why], reason=why)


def _integrity_conflict(session) -> ApiError:
    session.rollback()
    return conflict(CONFLICT_MESSAGES["overlaps_booking"], reason="overlaps_booking")


def book(
    session,
    *,
    actor: User,
    kind: str,
    clinician_id: str,
    start: datetime | None,
    modality: str,
    reason: str,
    patient: dict,
    duration_minutes: int | None = None,
    commit: bool = True,
) -> Consultation:
    """POST /consultations: 201, or 409 when the time is not free with that clinician. commit=False leaves the
    booking in the caller's transaction (a self-referral claims its referral in the same one)."""
    if not policy.may_book(actor, kind):
        raise forbidden(f"a {actor.role} may not book a {kind} consultation")
    clinician = session.get(Clinician, clinician_id) if is_id(clinician_id) else None
    if clinician is None or clinician.mission_id != actor.mission_id or not clinician.active:
        raise invalid("clinician_id", "unknown clinician")
    if kind not in clinician.kinds:
        raise invalid("kind", f"this clinician takes: {', '.join(clinician.kinds) or 'none'}")
    patient = dict(patient or {})
    if kind == "mental_health":
        # A member books for themself; a mental-health clinician may book for a patient (DOMAIN.md 6:
        # self-referral without going through command). Nobody books one for someone else.
        patient["user_id"] = patient.get("user_id") or actor.id
        if patient["user_id"] != actor.id and not (
            actor.id == clinician.user_id or is_mental_health_clinician(session, actor)
        ):
            raise forbidden("a mental-health consultation is booked by the patient or a mental-health clinician")
    elif actor.role == "member":
        raise forbidden("a member may book a mental_health consultation for themselves only")
    if patient.get("user_id"):
        patient_user = session.get(User, patient["user_id"]) if is_id(patient["user_id"]) else None
        if patient_user is None or patient_user.mission_id != clinician.mission_id:
            raise invalid("patient.user_id", "unknown user")
    if patient.get("casualty_id"):
        from casevac.requests import casualties as casevac_casualties

        if not casevac_casualties.casualty_in_mission(
            session, casualty_id=patient["casualty_id"], mission_id=clinician.mission_id
        ):
            raise invalid(
                "patient.casualty_id", "unknown casualty: the id of a casualty of a CASEVAC request of this mission"
            )
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
        mission_id=clinician.mission_id,
        clinician_id=clinician.id,
        kind=kind,
        modality=modality,
        status="booked",
        start=start,
        end=start + timedelta(minutes=duration),
        duration_minutes=duration,
        block_start=block[0],
        block_end=block[1],
        reason=reason,
        patient_name=patient.get("name"),
        patient_user_id=patient.get("user_id"),
        patient_casualty_id=patient.get("casualty_id"),
        booked_by=actor.id,
        room=secrets.token_urlsafe(24),
        history=[],
        created_at=now,
        updated_at=now,
    )
    consultation.clinician = clinician
    access.add_history(consultation, "booked", actor)
    session.add(consultation)
    flush_or_conflict(session, CONFLICT_MESSAGES["overlaps_booking"], reason="overlaps_booking")
    audit.record(session, actor, "telemed.consultation.book", consultation, detail={"kind": kind})
    access.publish(session, consultation, "consult.booked")
    notices.changed(session, consultation)
    if commit:
        session.commit()
    return consultation


def get_consultation(session, *, actor: User, consultation_id: str):
    consultation = access.load_visible(session, actor, consultation_id)
    access.audit_read(session, actor, consultation, "consultation")
    session.commit()
    return access.as_seen_by(actor, consultation)


def list_consultations(
    session,
    *,
    actor: User,
    limit: int,
    cursor: str | None,
    status=None,
    kind=None,
    clinician_id=None,
    from_=None,
    to=None,
):
    """The caller's consultations (coordinators and admins: also every diagnostic one of the mission)."""
    query = (
        db.select(Consultation)
        .join(Clinician, Consultation.clinician_id == Clinician.id)
        .where(Consultation.mission_id == actor.mission_id)
    )
    mine = or_(
        Clinician.user_id == actor.id,
        Consultation.patient_user_id == actor.id,
        (Consultation.booked_by == actor.id) & (Consultation.kind != "mental_health"),
    )
    if actor.role in COORDINATORS:  # they oversee the mission's diagnostic consultations (telemed.policy)
        query = query.where(or_(mine, Consultation.kind != "mental_health"))
    else:
        query = query.where(mine)
    query = where_given(
        query, (Consultation.status, status), (Consultation.kind, kind), (Consultation.clinician_id, clinician_id)
    )
    if from_:
        query = query.where(Consultation.end > from_)
    if to:
        query = query.where(Consultation.start < to)
    page = paginate(query, [Key(Consultation.start), Key(Consultation.id)], limit=limit, cursor=cursor, session=session)
    for consultation in page["items"]:
        access.audit_read(session, actor, consultation, "list")
    session.commit()
    return page


# ---------------------------------------------------------------------------------------------------
# Lifecycle


def change_status(
    session, *, actor: User, consultation_id: str, status: str, reason: str | None = None
) -> Consultation:
    consultation = access.load_visible(session, actor, consultation_id)
    current = consultation.status
    allowed = TRANSITIONS[current]
    if status not in allowed:
        raise conflict(f"a {current} consultation cannot become {status}", allowed=list(allowed))
    if status in policy.CLINICIAN_MOVES and not policy.may_make_clinician_move(actor, consultation):
        raise forbidden(f"only the consultation's clinician marks it {status}")
    if not policy.may_change_consultation(actor, consultation):
        raise forbidden("only a participant changes a consultation")
    if status in RELEASED_STATUSES and not reason:
        raise invalid("reason", f"required when the status becomes {status}")
    values = {"status": status, "updated_at": clock.now()}
    if status in RELEASED_STATUSES:
        # Releasing the block frees the time for other bookings.
        values.update(status_reason=reason, block_start=None, block_end=None)
    # Conditional update: of two racing changes from the same state, one wins and the other gets 409.
    if (
        update_where(
            session, Consultation, Consultation.id == consultation.id, Consultation.status == current, **values
        )
        != 1
    ):
        session.rollback()
        fresh = access.load_visible(session, actor, consultation_id)
        raise conflict(f"the consultation is now {fresh.status}", allowed=list(TRANSITIONS[fresh.status]))
    consultation = access.load_visible(session, actor, consultation_id)
    access.add_history(consultation, status, actor, reason=reason)
    audit.record(session, actor, "telemed.consultation.status", consultation, detail={"from": current, "to": status})
    access.publish(session, consultation, "consult.updated", change="status")
    notices.changed(session, consultation)
    session.commit()
    return consultation


def reschedule(session, *, actor: User, consultation_id: str, start: datetime) -> Consultation:
    """Move a booked consultation. Atomic: one transaction moves the row, so the old time is freed only
    if the new one is taken (a 409 leaves the booking where it was)."""
    consultation = access.load_visible(session, actor, consultation_id)
    if not policy.may_change_consultation(actor, consultation):
        raise forbidden("only a participant reschedules a consultation")
    if consultation.modality == "async":
        raise conflict("a store-and-forward consultation has no time to move", allowed=[])
    if consultation.status != "booked":
        raise conflict(
            f"only a booked consultation can be rescheduled; this one is {consultation.status}",
            allowed=list(TRANSITIONS[consultation.status]),
        )
    clinician = _lock_clinician(session, consultation.clinician_id)
    start = clock.as_utc(start)
    _check_time(
        session,
        clinician,
        start=start,
        duration_minutes=consultation.duration_minutes,
        exclude_consultation_id=consultation.id,
    )
    old_start = consultation.start
    end = start + timedelta(minutes=consultation.duration_minutes)
    try:
        # On PostgreSQL the exclusion constraint fires on this UPDATE (it is not deferred).
        moved = update_where(
            session,
            Consultation,
            Consultation.id == consultation.id,
            Consultation.status == "booked",
            start=start,
            end=end,
            block_start=start,
            block_end=end + timedelta(minutes=clinician.buffer_minutes),
            reminded_at=None,
            updated_at=clock.now(),
        )
    except IntegrityError:
        raise _integrity_conflict(session) from None
    if moved != 1:
        session.rollback()
        raise conflict("the consultation is no longer booked", allowed=[])
    consultation = access.load_visible(session, actor, consultation_id)
    access.add_history(consultation, "booked", actor, start=start.isoformat(), reason="rescheduled")
    audit.record(
        session,
        actor,
        "telemed.consultation.reschedule",
        consultation,
        detail={"from": old_start.isoformat(), "to": start.isoformat()},
    )
    access.publish(session, consultation, "consult.updated", change="reschedule")
    notices.changed(session, consultation)  # the old time's pending reminder goes, the new REQUEST is mailed
    try:
        session.commit()
    except IntegrityError:
        raise _integrity_conflict(session) from None
    return consultation


def send_reminders(session, *, now: datetime, settings) -> int:
    """consult.reminder (and its mail) to the participants REMINDER_MINUTES_BEFORE the start, exactly once per
    booking time: the conditional UPDATE (reminded_at IS NULL, still due: a move may have re-armed it for a later
    time) lets one process win across many."""
    due = now + timedelta(minutes=settings.REMINDER_MINUTES_BEFORE)
    ids = (
        session.execute(
            db.select(Consultation.id).where(
                Consultation.status.in_(("booked", "checked_in")),
                Consultation.modality != "async",
                Consultation.reminded_at.is_(None),
                Consultation.start <= due,
                Consultation.end > now,
            )
        )
        .scalars()
        .all()
    )
    sent = 0
    for consultation_id in ids:
        won = update_where(
            session,
            Consultation,
            Consultation.id == consultation_id,
            Consultation.reminded_at.is_(None),
            Consultation.start <= due,
            reminded_at=now,
        )
        if won != 1:
            continue
        consultation = session.get(Consultation, consultation_id)
        access.publish(
            session,
            consultation,
            "consult.reminder",
            minutes_to_start=max(0, int((consultation.start - now).total_seconds() // 60)),
        )
        notices.remind(session, consultation, now=now)
        sent += 1
    session.commit()
    return sent


def metrics(session, *, actor: User, from_: datetime | None = None, to: datetime | None = None) -> dict:
    """Counts and the store-and-forward response clock (median time to first reply, DOMAIN.md section 5:
    MSF teledermatology answered in a median 10.2 h). Mental-health consultations are only counted,
    and only when there are at least 5 (no small counts that could identify someone)."""
    query = db.select(
        Consultation.kind,
        Consultation.status,
        Consultation.modality,
        Consultation.created_at,
        Consultation.first_reply_at,
    ).where(Consultation.mission_id == actor.mission_id)
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
        "from_": from_,
        "to": to,
        "consultations": {"diagnostic": len(diagnostic)},
        "by_status": by_status,
        "by_modality": by_modality,
        "mental_health": mental if mental >= 5 else None,
        "store_and_forward": {
            "count": len(async_rows),
            "answered": len(waits),
            "median_minutes_to_first_reply": round(statistics.median(waits), 1) if waits else None,
        },
    }
