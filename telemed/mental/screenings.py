"""Screenings: scored, stored and, when flagged, alerted in one transaction; read one, a page, or a member's
trend with reliable change (DOMAIN.md section 6, issue 7). Who may see them: telemed.mental.confidentiality."""

from __future__ import annotations

from config.extensions import db
from core import audit, clock
from core.errors import ApiError, invalid, not_found
from core.models import User
from telemed.mental import alerts, confidentiality, referrals
from telemed.mental import screening as instruments
from telemed.mental.models import Screening, ScreeningAlert


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
        confidentiality.require_clinician(session, actor)
        if member_id is None:
            raise invalid("member_id", "required when a clinician enters a screening")
        member = confidentiality.member_of_mission(session, member_id=member_id, mission_id=actor.mission_id)
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
    audit.record(session, actor, "screening.create", record, detail={"instrument": instrument})
    alert, notified = None, False
    if result.flagged:
        alert, notified = alerts.raise_alert(session, record, member=member, settings=settings)
    slots = []
    if result.flagged or result.positive:
        slots = referrals.offered_slots(session, mission_id=record.mission_id, start=now)
    session.commit()
    return {
        **screening_view(record, alert),
        "offered_slots": slots,
        "clinician_notified": bool(alert and notified),
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


def get_screening(session, *, actor: User, screening_id: str) -> dict:
    record = confidentiality.load_visible(session, actor, Screening, screening_id, what="screening")
    audit.record(session, actor, "screening.read", record)
    session.commit()
    return screening_view(record, alerts.alerts_for(session, [record.id]).get(record.id))


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
    query = confidentiality.scoped(session, actor, Screening)
    if actor.role != "member":
        if member_id:
            query = query.where(Screening.member_id == member_id)
    if instrument:
        query = query.where(Screening.instrument == instrument)
    if flagged is not None:
        alerted = db.select(ScreeningAlert.screening_id)
        query = query.where(Screening.id.in_(alerted) if flagged else Screening.id.not_in(alerted))
    page = confidentiality.read_newest_first(
        session, actor, query, Screening, limit=limit, cursor=cursor, action="screening.read"
    )
    by_screening = alerts.alerts_for(session, [r.id for r in page["items"]])
    return {
        "items": [screening_view(r, by_screening.get(r.id)) for r in page["items"]],
        "next_cursor": page["next_cursor"],
    }


def trend(session, *, actor: User, member_id: str, instrument: str, limit: int = 100) -> dict:
    """Scores over time with reliable change between consecutive screenings and from first to last
    (DOMAIN.md section 6 / issue 7: 5 points on PHQ-9, 10 on PCL-5)."""
    member = confidentiality.by_id(session, User, member_id)
    if member is None or not confidentiality.visible(session, actor, member_id=member_id, mission_id=member.mission_id):
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
        audit.record(session, actor, "screening.trend_read", record)
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
