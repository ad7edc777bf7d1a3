"""Mental-health support: screenings, alerts and their escalation, confidential self-referrals, the member's
access log, trends and k-anonymous metrics (DOMAIN.md section 6, issue 7).

Confidentiality, in one place (`_visible`): a screening or self-referral is visible to the member it belongs
to and to the mental-health clinicians of its mission, and to no one else: coordinators, medics, admins and
other clinicians get 404, the same answer as for an id that does not exist. Every read writes an audit row.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, update

from config.extensions import db
from core import audit, clock
from core.errors import ApiError, conflict, forbidden, invalid, not_found
from core.fields import UNSTORABLE
from core.models import AuditEntry, User
from core.pagination import Key, paginate
from realtime import audience, events
from telemed.mental import screening as instruments
from telemed.mental.models import Screening, ScreeningAlert, SelfReferral
from telemed.scheduling import availability, booking, clinicians
from telemed.scheduling.clinicians import is_mental_health_clinician
from telemed.scheduling.models import MENTAL_HEALTH_SPECIALTIES, Consultation

# Smallest group a metric may describe (k-anonymity): smaller counts could point at a person.
MIN_GROUP_SIZE = 5
# Offered slots: the earliest few within this horizon.
SLOT_HORIZON_DAYS = 14
SLOTS_OFFERED = 3


def mental_health_consultation_ids():
    """Mental-health consultations are telemed's "consultation" rows of kind mental_health: their audit rows
    are as confidential as a screening's (kept out of the admin's audit list)."""
    return db.select(Consultation.id).where(Consultation.kind == "mental_health")


# Who may see what -----------------------------------------------------------------------------------------


def _by_id(session, model, record_id: str):
    """The record with this id, or None; an id no record can have (too long, NUL, lone surrogate) is simply
    unknown, rather than an error from the database."""
    if not isinstance(record_id, str) or len(record_id) > 64 or UNSTORABLE.search(record_id):
        return None
    return session.get(model, record_id)


def _visible(session, actor: User, *, member_id: str, mission_id: str) -> bool:
    if actor.id == member_id:
        return True
    return actor.mission_id == mission_id and is_mental_health_clinician(session, actor)


def _require_clinician(session, actor: User) -> None:
    if not is_mental_health_clinician(session, actor):
        raise forbidden("only the mission's mental-health clinicians (psychiatry, psychology) may do this")


def _scoped(session, actor: User, model):
    """A member's own records; a mental-health clinician's mission's (403 for any other clinician)."""
    if actor.role == "member":
        return db.select(model).where(model.member_id == actor.id)
    _require_clinician(session, actor)
    return db.select(model).where(model.mission_id == actor.mission_id)


def _read_newest_first(session, actor: User, query, model, *, limit: int, cursor, action: str, subject: str):
    """One page of confidential records, newest first; every record listed is an audited read (committed)."""
    page = paginate(
        query,
        [Key(model.created_at, descending=True), Key(model.id, descending=True)],
        limit=limit,
        cursor=cursor,
        session=session,
    )
    for record in page["items"]:
        audit.record(
            session,
            actor=actor,
            action=action,
            subject_type=subject,
            subject_id=record.id,
            mission_id=record.mission_id,
        )
    session.commit()
    return page


def _member_of_mission(session, *, member_id: str, mission_id: str) -> User:
    member = _by_id(session, User, member_id)
    if member is None or member.mission_id != mission_id or member.role != "member":
        raise invalid("member_id", "unknown member of your mission")
    return member


# Screenings ---------------------------------------------------------------------------------------------


def create_screening(
    session, *, actor: User, settings, instrument: str, answers, sex: str | None = None, member_id: str | None = None
) -> dict:
    """Score, store and, when flagged, alert the mission's mental-health clinicians (in one transaction).

    A member screens themself; a mental-health clinician may enter a screening they administered to a
    member of the mission (member_id)."""
    if actor.role == "member":
        if member_id not in (None, actor.id):
            raise invalid("member_id", "a member screens themself only: leave member_id out")
        member = actor
    else:
        _require_clinician(session, actor)
        if member_id is None:
            raise invalid("member_id", "required when a clinician enters a screening")
        member = _member_of_mission(session, member_id=member_id, mission_id=actor.mission_id)
    try:
        result = instruments.score(instrument, answers, sex=sex)
    except instruments.AnswersError as exc:
        errors = exc.errors if isinstance(exc.errors, list) else {str(k): v for k, v in exc.errors.items()}
        raise ApiError(422, "the answers are invalid: see errors", errors={"json": {"answers": errors}}) from None
    now = clock.now()
    record = Screening(
        mission_id=member.mission_id,
        member_id=member.id,
        entered_by=actor.id,
        instrument=instrument,
        answers=list(answers),
        sex=sex,
        score=result.score,
        severity=result.severity,
        positive=result.positive,
        criteria=result.criteria,
        clusters=result.clusters,
        flags=list(result.flags),
        recommended_action=result.recommended_action,
        created_at=now,
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="screening.create",
        subject_type="screening",
        subject_id=record.id,
        mission_id=record.mission_id,
        detail={"instrument": instrument},
    )
    alert, notified = None, False
    if result.flagged:
        alert = ScreeningAlert(
            screening_id=record.id,
            mission_id=record.mission_id,
            member_id=member.id,
            flags=list(result.flags),
            recommended_action=result.recommended_action,
            raised_at=now,
            ack_due_at=now + timedelta(minutes=settings.SCREENING_ACK_MINUTES),
        )
        session.add(alert)
        session.flush()
        notified = raise_alert(session, alert, member=member, instrument=instrument)
    slots = []
    if result.flagged or result.positive:
        slots = offered_slots(session, mission_id=record.mission_id, start=now)
    session.commit()
    return {**screening_view(record, alert), "offered_slots": slots, "clinician_notified": bool(alert and notified)}


def raise_alert(session, alert: ScreeningAlert, *, member: User, instrument: str) -> bool:
    """Publish screening.alert to the mission's mental-health clinicians; a mission without any has every
    clinician of the mission told at once rather than after the acknowledgement deadline. Returns whether
    anyone can receive it."""
    rooms = [audience.mission_mental_health(alert.mission_id)]
    receivers = bool(clinicians.mental_health_clinicians(session, mission_id=alert.mission_id))
    if not receivers:
        rooms.append(audience.mission_role(alert.mission_id, "clinician"))
        receivers = (
            session.execute(
                db.select(User.id)
                .where(User.mission_id == alert.mission_id, User.role == "clinician", User.active.is_(True))
                .limit(1)
            ).first()
            is not None
        )
    events.publish(
        session,
        "screening.alert",
        rooms,
        alert_data(alert, member=member, instrument=instrument),
        mission_id=alert.mission_id,
    )
    return receivers


def alert_data(alert: ScreeningAlert, *, member: User, instrument: str, escalated: bool = False) -> dict:
    """The minimum a clinician needs to act (DoDI 6490.08 spirit): who, what kind of risk, what to do.
    Never the answers, item scores or total."""
    return {
        "alert_id": alert.id,
        "screening_id": alert.screening_id,
        "member": {"id": member.id, "display_name": member.display_name},
        "instrument": instrument,
        "flags": list(alert.flags),
        "recommended_action": alert.recommended_action,
        "raised_at": alert.raised_at.isoformat(),
        "ack_due_at": alert.ack_due_at.isoformat(),
        "escalated": escalated,
    }


def screening_view(record: Screening, alert: ScreeningAlert | None) -> dict:
    return {
        "id": record.id,
        "mission_id": record.mission_id,
        "member_id": record.member_id,
        "entered_by": record.entered_by,
        "instrument": record.instrument,
        "answers": record.answers,
        "sex": record.sex,
        "score": record.score,
        "severity": record.severity,
        "positive": record.positive,
        "criteria": record.criteria,
        "clusters": record.clusters,
        "flags": record.flags,
        "recommended_action": record.recommended_action,
        "recommended_action_text": instruments.ACTION_TEXT[record.recommended_action],
        "created_at": record.created_at,
        "alert": alert,
    }


def _alerts_for(session, screening_ids: list[str]) -> dict[str, ScreeningAlert]:
    if not screening_ids:
        return {}
    rows = session.execute(db.select(ScreeningAlert).where(ScreeningAlert.screening_id.in_(screening_ids)))
    return {a.screening_id: a for a in rows.scalars()}


def _visible_screening(session, actor: User, screening_id: str) -> Screening:
    record = _by_id(session, Screening, screening_id)
    if record is None or not _visible(session, actor, member_id=record.member_id, mission_id=record.mission_id):
        raise not_found("screening")
    return record


def get_screening(session, *, actor: User, screening_id: str) -> dict:
    record = _visible_screening(session, actor, screening_id)
    audit.record(
        session,
        actor=actor,
        action="screening.read",
        subject_type="screening",
        subject_id=record.id,
        mission_id=record.mission_id,
    )
    session.commit()
    return screening_view(record, _alerts_for(session, [record.id]).get(record.id))


def list_screenings(
    session,
    *,
    actor: User,
    limit: int,
    cursor: str | None,
    member_id: str | None = None,
    instrument: str | None = None,
    flagged: bool | None = None,
) -> dict:
    """A member's own screenings; for a mental-health clinician, the mission's. Each item listed is a read."""
    query = _scoped(session, actor, Screening)
    if actor.role != "member":
        if member_id:
            query = query.where(Screening.member_id == member_id)
    if instrument:
        query = query.where(Screening.instrument == instrument)
    if flagged is not None:
        alerted = db.select(ScreeningAlert.screening_id)
        query = query.where(Screening.id.in_(alerted) if flagged else Screening.id.not_in(alerted))
    page = _read_newest_first(
        session, actor, query, Screening, limit=limit, cursor=cursor, action="screening.read", subject="screening"
    )
    alerts = _alerts_for(session, [r.id for r in page["items"]])
    return {"items": [screening_view(r, alerts.get(r.id)) for r in page["items"]], "next_cursor": page["next_cursor"]}


# Alerts: acknowledgement and escalation ---------------------------------------------------------------------


def list_alerts(session, *, actor: User, limit: int, cursor: str | None, state: str = "open") -> dict:
    """The clinicians' worklist: alerts of the mission, oldest first (open: not yet acknowledged)."""
    _require_clinician(session, actor)
    query = db.select(ScreeningAlert).where(ScreeningAlert.mission_id == actor.mission_id)
    if state == "open":
        query = query.where(ScreeningAlert.acknowledged_at.is_(None))
    elif state == "acknowledged":
        query = query.where(ScreeningAlert.acknowledged_at.is_not(None))
    page = paginate(
        query, [Key(ScreeningAlert.raised_at), Key(ScreeningAlert.id)], limit=limit, cursor=cursor, session=session
    )
    members = _users(session, {a.member_id for a in page["items"]})
    for alert in page["items"]:
        audit.record(
            session,
            actor=actor,
            action="screening.alert_read",
            subject_type="screening",
            subject_id=alert.screening_id,
            mission_id=alert.mission_id,
        )
    session.commit()
    return {
        "items": [alert_item(a, members.get(a.member_id)) for a in page["items"]],
        "next_cursor": page["next_cursor"],
    }


def alert_item(alert: ScreeningAlert, member: User | None) -> dict:
    return {
        "id": alert.id,
        "screening_id": alert.screening_id,
        "member": {"id": alert.member_id, "display_name": member.display_name if member else None},
        "flags": alert.flags,
        "recommended_action": alert.recommended_action,
        "raised_at": alert.raised_at,
        "ack_due_at": alert.ack_due_at,
        "acknowledged_at": alert.acknowledged_at,
        "acknowledged_by": alert.acknowledged_by,
        "escalated_at": alert.escalated_at,
    }


def acknowledge(session, *, actor: User, screening_id: str) -> dict:
    """A mental-health clinician takes the alert: exactly one acknowledgement wins (conditional UPDATE);
    the same clinician again gets the same answer, another one 409 naming who has it."""
    record = _by_id(session, Screening, screening_id)
    if record is None or record.mission_id != actor.mission_id or not is_mental_health_clinician(session, actor):
        raise not_found("screening")
    alert = _alerts_for(session, [record.id]).get(record.id)
    if alert is None:
        raise conflict("this screening raised no alert: there is nothing to acknowledge")
    now = clock.now()
    taken = session.execute(
        update(ScreeningAlert)
        .where(ScreeningAlert.id == alert.id, ScreeningAlert.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by=actor.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken:
        audit.record(
            session,
            actor=actor,
            action="screening.acknowledge",
            subject_type="screening",
            subject_id=record.id,
            mission_id=record.mission_id,
        )
        events.publish(
            session,
            "screening.acknowledged",
            [audience.mission_mental_health(record.mission_id)],
            {
                "alert_id": alert.id,
                "screening_id": record.id,
                "acknowledged_by": actor.id,
                "acknowledged_at": now.isoformat(),
            },
            mission_id=record.mission_id,
        )
        session.commit()
    else:
        session.rollback()
    session.refresh(alert)
    if alert.acknowledged_by != actor.id:
        raise conflict(
            "already acknowledged by another clinician",
            acknowledged_by=alert.acknowledged_by,
            acknowledged_at=alert.acknowledged_at.isoformat(),
        )
    return alert_item(alert, session.get(User, alert.member_id))


def escalate_alerts(session, *, now: datetime, settings) -> int:
    """Sweeper task: every alert past its acknowledgement deadline is escalated once, to the mission's
    mental-health clinicians and to all its clinicians (still only the minimum: no answers).

    Exactly-once across processes: the conditional UPDATE (`escalated_at IS NULL AND acknowledged_at IS
    NULL`) is the claim; only the transaction whose UPDATE changed the row publishes the event."""
    due = (
        session.execute(
            db.select(ScreeningAlert.id)
            .where(
                ScreeningAlert.acknowledged_at.is_(None),
                ScreeningAlert.escalated_at.is_(None),
                ScreeningAlert.ack_due_at <= now,
            )
            .order_by(ScreeningAlert.ack_due_at)
            .limit(200)
        )
        .scalars()
        .all()
    )
    session.rollback()
    escalated = 0
    for alert_id in due:
        claimed = session.execute(
            update(ScreeningAlert)
            .where(
                ScreeningAlert.id == alert_id,
                ScreeningAlert.acknowledged_at.is_(None),
                ScreeningAlert.escalated_at.is_(None),
            )
            .values(escalated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            session.rollback()
            continue
        alert = session.get(ScreeningAlert, alert_id, populate_existing=True)
        record = session.get(Screening, alert.screening_id)
        member = session.get(User, alert.member_id)
        rooms = [audience.mission_mental_health(alert.mission_id), audience.mission_role(alert.mission_id, "clinician")]
        events.publish(
            session,
            "screening.alert",
            rooms,
            alert_data(alert, member=member, instrument=record.instrument, escalated=True),
            mission_id=alert.mission_id,
        )
        audit.record(
            session,
            actor=None,
            action="screening.escalate",
            subject_type="screening",
            subject_id=alert.screening_id,
            mission_id=alert.mission_id,
        )
        session.commit()
        escalated += 1
    return escalated


# Trend ---------------------------------------------------------------------------------------------------


def trend(session, *, actor: User, member_id: str, instrument: str, limit: int = 100) -> dict:
    """Scores over time with reliable change between consecutive screenings and from first to last
    (DOMAIN.md section 6 / issue 7: 5 points on PHQ-9, 10 on PCL-5)."""
    member = _by_id(session, User, member_id)
    if member is None or not _visible(session, actor, member_id=member_id, mission_id=member.mission_id):
        raise not_found("member")
    rows = (
        session.execute(
            db.select(Screening)
            .where(Screening.member_id == member_id, Screening.instrument == instrument)
            .order_by(Screening.created_at.desc(), Screening.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )
    rows.reverse()
    points = []
    previous = None
    for record in rows:
        audit.record(
            session,
            actor=actor,
            action="screening.trend_read",
            subject_type="screening",
            subject_id=record.id,
            mission_id=record.mission_id,
        )
        point = {
            "screening_id": record.id,
            "at": record.created_at,
            "score": record.score,
            "severity": record.severity,
            "positive": record.positive,
            "flags": record.flags,
            "change": None,
            "reliable_change": None,
        }
        if previous is not None:
            point["change"] = record.score - previous.score
            point["reliable_change"] = instruments.reliable_change(instrument, previous.score, record.score)
        points.append(point)
        previous = record
    session.commit()
    overall = None
    if len(rows) >= 2:
        overall = {
            "from_score": rows[0].score,
            "to_score": rows[-1].score,
            "change": rows[-1].score - rows[0].score,
            "reliable_change": instruments.reliable_change(instrument, rows[0].score, rows[-1].score),
        }
    return {
        "member_id": member_id,
        "instrument": instrument,
        "reliable_change_points": instruments.INSTRUMENTS[instrument].reliable_change,
        "points": points,
        "overall": overall,
    }


# Self-referrals ------------------------------------------------------------------------------------------


def create_self_referral(
    session, *, actor: User, reason: str, preferred_language: str | None = None, contact: str | None = None
) -> dict:
    """A member asks for a mental-health consultation without going through command (DOMAIN.md section 6).
    The mission's mental-health clinicians are told that a request exists, never its reason."""
    if actor.role != "member":
        raise forbidden("self-referral is for members")
    now = clock.now()
    referral = SelfReferral(
        mission_id=actor.mission_id,
        member_id=actor.id,
        reason=reason,
        preferred_language=preferred_language,
        contact=contact,
        status="open",
        created_at=now,
        updated_at=now,
    )
    session.add(referral)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="self_referral.create",
        subject_type="self_referral",
        subject_id=referral.id,
        mission_id=referral.mission_id,
    )
    events.publish(
        session,
        "self_referral.created",
        [audience.mission_mental_health(referral.mission_id)],
        {
            "referral_id": referral.id,
            "member": {"id": actor.id, "display_name": actor.display_name},
            "preferred_language": preferred_language,
            "created_at": now.isoformat(),
        },
        mission_id=referral.mission_id,
    )
    slots = offered_slots(session, mission_id=referral.mission_id, start=now, language=preferred_language)
    session.commit()
    return {**referral_view(referral), "offered_slots": slots}


def referral_view(referral: SelfReferral) -> dict:
    return {
        c: getattr(referral, c)
        for c in (
            "id",
            "mission_id",
            "member_id",
            "reason",
            "preferred_language",
            "contact",
            "status",
            "consultation_id",
            "created_at",
            "updated_at",
        )
    }


def get_self_referral(session, *, actor: User, referral_id: str) -> dict:
    referral = _by_id(session, SelfReferral, referral_id)
    if referral is None or not _visible(session, actor, member_id=referral.member_id, mission_id=referral.mission_id):
        raise not_found("self-referral")
    audit.record(
        session,
        actor=actor,
        action="self_referral.read",
        subject_type="self_referral",
        subject_id=referral.id,
        mission_id=referral.mission_id,
    )
    session.commit()
    slots, consultation = [], None
    if referral.status == "open":
        slots = offered_slots(
            session, mission_id=referral.mission_id, start=clock.now(), language=referral.preferred_language
        )
    elif referral.consultation_id:
        consultation = session.get(Consultation, referral.consultation_id)
    return {**referral_view(referral), "offered_slots": slots, "consultation": consultation}


def list_self_referrals(session, *, actor: User, limit: int, cursor: str | None, status: str | None = None) -> dict:
    query = _scoped(session, actor, SelfReferral)
    if status:
        query = query.where(SelfReferral.status == status)
    page = _read_newest_first(
        session,
        actor,
        query,
        SelfReferral,
        limit=limit,
        cursor=cursor,
        action="self_referral.read",
        subject="self_referral",
    )
    return {"items": [referral_view(r) for r in page["items"]], "next_cursor": page["next_cursor"]}


# Referral lifecycle: open -> booked (a mental-health consultation was booked for it) -> closed; open -> closed.
REFERRAL_TRANSITIONS = {"open": ("booked", "closed"), "booked": ("closed",), "closed": ()}


def close_self_referral(session, *, actor: User, referral_id: str) -> dict:
    """The member withdraws their request, or a mental-health clinician closes it once dealt with."""
    referral = _by_id(session, SelfReferral, referral_id)
    if referral is None or not _visible(session, actor, member_id=referral.member_id, mission_id=referral.mission_id):
        raise not_found("self-referral")
    allowed = REFERRAL_TRANSITIONS[referral.status]
    if "closed" not in allowed:
        raise conflict(f"a {referral.status} self-referral cannot be closed", allowed=list(allowed))
    taken = session.execute(
        update(SelfReferral)
        .where(SelfReferral.id == referral.id, SelfReferral.status == referral.status)
        .values(status="closed", updated_at=clock.now())
        .execution_options(synchronize_session=False)
    ).rowcount
    if not taken:
        session.rollback()
        raise conflict("the self-referral changed meanwhile: reload it", allowed=[])
    audit.record(
        session,
        actor=actor,
        action="self_referral.close",
        subject_type="self_referral",
        subject_id=referral.id,
        mission_id=referral.mission_id,
    )
    session.commit()
    session.refresh(referral)
    return {**referral_view(referral), "offered_slots": []}


# Offered slots -------------------------------------------------------------------------------------------


def offered_slots(session, *, mission_id: str, start: datetime, language: str | None = None) -> list[dict]:
    """The earliest free mental-health slots (psychiatry or psychology clinicians taking mental_health
    consultations) over the next SLOT_HORIZON_DAYS; in the member's language when any clinician speaks it,
    else in any language (each slot names its clinician's languages, so the member can choose)."""
    end = start + timedelta(days=SLOT_HORIZON_DAYS)
    search = dict(
        mission_id=mission_id,
        start=start,
        end=end,
        specialties=MENTAL_HEALTH_SPECIALTIES,
        kind="mental_health",
        limit=SLOTS_OFFERED,
    )
    slots = availability.find_slots(session, language=language, **search) if language else []
    if not slots:
        slots = availability.find_slots(session, **search)
    if not slots:
        return []
    profiles = {
        c.id: c
        for c in clinicians.matching_clinicians(session, mission_id=mission_id, specialties=MENTAL_HEALTH_SPECIALTIES)
    }
    offered = []
    for slot in slots:
        profile = profiles.get(slot["clinician_id"])
        offered.append(
            {
                **slot,
                "display_name": getattr(profile, "display_name", None),
                "specialties": list(getattr(profile, "specialties", [])),
                "languages": list(getattr(profile, "languages", [])),
            }
        )
    return offered


def book_self_referral(
    session,
    *,
    actor: User,
    referral_id: str,
    clinician_id: str,
    start: datetime,
    modality: str = "video",
    duration_minutes: int | None = None,
) -> dict:
    """The member books a mental_health consultation for themself through telemed's booking, and the referral
    becomes `booked` and names it, in one transaction: the database decides races (409 when the time is
    taken, or when another booking or a close of the referral came first)."""
    referral = _by_id(session, SelfReferral, referral_id)
    if referral is None or referral.member_id != actor.id:
        raise not_found("self-referral")
    if referral.status != "open":
        raise conflict(
            f"a {referral.status} self-referral cannot be booked", allowed=list(REFERRAL_TRANSITIONS[referral.status])
        )
    # The referral is claimed first, in the booking's own transaction: of racing bookings of one referral the
    # database lets one through (the others wait on the row, then find it no longer open), and a booking that
    # fails (time taken, invalid) rolls the claim back. The status check above only spares a needless claim.
    claimed = session.execute(
        update(SelfReferral)
        .where(SelfReferral.id == referral.id, SelfReferral.status == "open")
        .values(status="booked", updated_at=clock.now())
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        session.rollback()
        session.refresh(referral)
        raise conflict(
            f"a {referral.status} self-referral cannot be booked", allowed=list(REFERRAL_TRANSITIONS[referral.status])
        )
    try:
        consultation = booking.book(
            session,
            actor=actor,
            kind="mental_health",
            clinician_id=clinician_id,
            start=start,
            modality=modality,
            reason=referral.reason,
            patient={"user_id": actor.id},
            duration_minutes=duration_minutes,
            commit=False,
        )
    except Exception:
        session.rollback()
        raise
    session.execute(
        update(SelfReferral)
        .where(SelfReferral.id == referral.id)
        .values(consultation_id=consultation.id)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor=actor,
        action="self_referral.book",
        subject_type="self_referral",
        subject_id=referral.id,
        mission_id=referral.mission_id,
    )
    session.commit()
    session.refresh(referral)
    return {**referral_view(referral), "offered_slots": [], "consultation": consultation}


# The member's access log ----------------------------------------------------------------------------------


def access_log(session, *, actor: User, limit: int, cursor: str | None) -> dict:
    """Every audited action on the caller's confidential records (reads above all): their screenings,
    self-referrals and the mental-health consultations they are the patient of; who, when, what."""
    own_screenings = db.select(Screening.id).where(Screening.member_id == actor.id)
    own_referrals = db.select(SelfReferral.id).where(SelfReferral.member_id == actor.id)
    own_consultations = db.select(Consultation.id).where(
        Consultation.patient_user_id == actor.id, Consultation.kind == "mental_health"
    )
    query = db.select(AuditEntry).where(
        or_(
            (AuditEntry.subject_type == "screening") & AuditEntry.subject_id.in_(own_screenings),
            (AuditEntry.subject_type == "self_referral") & AuditEntry.subject_id.in_(own_referrals),
            (AuditEntry.subject_type == "consultation")
            & AuditEntry.subject_id.in_(own_consultations)
            # Psychotherapy notes are kept apart from the record and are their author's alone (DOMAIN.md 6,
            # HIPAA 45 CFR 164.501): their author's own reads and writes are not the patient's record.
            & AuditEntry.action.not_like("telemed.note.psychotherapy.%"),
        )
    )
    page = paginate(query, [Key(AuditEntry.id, descending=True)], limit=limit, cursor=cursor, session=session)
    actors = _users(session, {e.actor_id for e in page["items"] if e.actor_id})
    items = []
    for entry in page["items"]:
        who = actors.get(entry.actor_id)
        items.append(
            {
                "at": entry.at,
                "action": entry.action,
                "subject_type": entry.subject_type,
                "subject_id": entry.subject_id,
                "actor": None
                if who is None
                else {"id": who.id, "display_name": who.display_name, "role": who.role, "you": who.id == actor.id},
            }
        )
    return {"items": items, "next_cursor": page["next_cursor"]}


def _users(session, ids: set[str]) -> dict[str, User]:
    if not ids:
        return {}
    return {u.id: u for u in session.execute(db.select(User).where(User.id.in_(ids))).scalars()}


# Aggregate metrics ----------------------------------------------------------------------------------------


def metrics(session, *, actor: User, month: str | None = None) -> dict:
    """Counts of people per instrument and result for one calendar month of the caller's mission, each
    person counted once per instrument (their latest screening that month). Any count under
    MIN_GROUP_SIZE people is withheld (null), and so is the next smallest when the withheld ones could be
    worked out from the total. Fixed calendar months (no arbitrary from/to) keep two overlapping queries
    from being subtracted to isolate one person."""
    if actor.role == "clinician":
        _require_clinician(session, actor)
    start, end, label = _month_bounds(month)
    rows = session.execute(
        db.select(Screening.member_id, Screening.instrument, Screening.severity, Screening.positive, Screening.flags)
        .where(Screening.mission_id == actor.mission_id, Screening.created_at >= start, Screening.created_at < end)
        .order_by(Screening.created_at, Screening.id)
    ).all()
    latest = {}
    for row in rows:
        latest[(row.member_id, row.instrument)] = row  # later rows overwrite: the month's latest
    per_instrument = []
    for code, inst in instruments.INSTRUMENTS.items():
        results = [r for (member, instrument), r in latest.items() if instrument == code]
        people = len(results)
        if inst.bands:
            groups = {band.name: sum(1 for r in results if r.severity == band.name) for band in inst.bands}
        else:
            groups = {
                "positive": sum(1 for r in results if r.positive),
                "negative": sum(1 for r in results if not r.positive),
            }
        flagged = {"flagged": sum(1 for r in results if r.flags), "not_flagged": sum(1 for r in results if not r.flags)}
        per_instrument.append(
            {
                "instrument": code,
                "people": people if people >= MIN_GROUP_SIZE else None,
                "results": suppress(groups, people),
                "flagged": suppress(flagged, people),
            }
        )
    referrers = session.execute(
        db.select(db.func.count(db.distinct(SelfReferral.member_id))).where(
            SelfReferral.mission_id == actor.mission_id, SelfReferral.created_at >= start, SelfReferral.created_at < end
        )
    ).scalar_one()
    return {
        "mission_id": actor.mission_id,
        "month": label,
        "min_group_size": MIN_GROUP_SIZE,
        "instruments": per_instrument,
        "self_referrals": {"people": referrers if referrers >= MIN_GROUP_SIZE else None},
    }


def suppress(groups: dict[str, int], total: int, k: int = MIN_GROUP_SIZE) -> dict[str, int | None]:
    """Small-cell suppression: cells of 1..k-1 people are withheld; if the withheld cells add up to fewer
    than k (so the total would reveal a small group), the smallest shown non-zero cells are withheld too."""
    if total < k:
        return {name: None for name in groups}
    hidden = {name for name, count in groups.items() if 0 < count < k}
    while hidden and sum(groups[n] for n in hidden) < k:
        shown = sorted((count, name) for name, count in groups.items() if name not in hidden and count > 0)
        if not shown:
            break
        hidden.add(shown[0][1])
    return {name: (None if name in hidden else count) for name, count in groups.items()}


def _month_bounds(month: str | None) -> tuple[datetime, datetime, str]:
    if month is None:
        today = clock.now()
        year, number = today.year, today.month
    else:
        year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=timezone.utc)
    days = calendar.monthrange(year, number)[1]
    return start, start + timedelta(days=days), f"{year:04d}-{number:02d}"
