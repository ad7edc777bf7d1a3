"""Screening alerts: raised to the mission's mental-health clinicians, acknowledged by exactly one of them,
escalated once when nobody acknowledges in time (a sweeper task). An alert carries the minimum a clinician
needs to act, never the answers or the score."""

from __future__ import annotations

from datetime import datetime, timedelta

from config.extensions import db
from core import audit, clock
from core.errors import conflict, not_found
from core.models import User
from core.pagination import Key, paginate
from core.records import update_where
from telemed.mental import confidentiality
from telemed.mental.models import Screening, ScreeningAlert
from telemed.scheduling import clinicians


def raise_alert(session, screening: Screening, *, member: User, settings) -> tuple[ScreeningAlert, bool]:
    """The alert of a flagged screening, raised as it is taken and due for acknowledgement within
    SCREENING_ACK_MINUTES: screening.alert goes to the mission's mental-health clinicians; a mission without
    any has every clinician of the mission told at once rather than after the acknowledgement deadline.
    Returns the alert and whether anyone can receive it."""
    alert = ScreeningAlert(
        screening_id=screening.id,
        mission_id=screening.mission_id,
        member_id=screening.member_id,
        flags=list(screening.flags),
        recommended_action=screening.recommended_action,
        raised_at=screening.created_at,
        ack_due_at=screening.created_at + timedelta(minutes=settings.SCREENING_ACK_MINUTES),
    )
    session.add(alert)
    session.flush()
    specialists = bool(clinicians.mental_health_clinicians(session, mission_id=alert.mission_id))
    receivers = specialists or (
        session.execute(
            db.select(User.id)
            .where(User.mission_id == alert.mission_id, User.role == "clinician", User.active.is_(True))
            .limit(1)
        ).first()
        is not None
    )
    confidentiality.tell_clinicians(
        session,
        "screening.alert",
        alert.mission_id,
        alert_data(alert, member=member, instrument=screening.instrument),
        every_clinician=not specialists,
    )
    return alert, receivers


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


def alerts_for(session, screening_ids: list[str]) -> dict[str, ScreeningAlert]:
    if not screening_ids:
        return {}
    rows = session.execute(db.select(ScreeningAlert).where(ScreeningAlert.screening_id.in_(screening_ids)))
    return {a.screening_id: a for a in rows.scalars()}


def list_alerts(session, *, actor: User, limit: int, cursor: str | None, state: str = "open") -> dict:
    """The clinicians' worklist: alerts of the mission, oldest first (open: not yet acknowledged)."""
    confidentiality.require_clinician(session, actor)
    query = db.select(ScreeningAlert).where(ScreeningAlert.mission_id == actor.mission_id)
    if state == "open":
        query = query.where(ScreeningAlert.acknowledged_at.is_(None))
    elif state == "acknowledged":
        query = query.where(ScreeningAlert.acknowledged_at.is_not(None))
    page = paginate(
        query, [Key(ScreeningAlert.raised_at), Key(ScreeningAlert.id)], limit=limit, cursor=cursor, session=session
    )
    members = confidentiality.users_by_id(session, {a.member_id for a in page["items"]})
    for alert in page["items"]:
        _audit(session, actor, "screening.alert_read", alert)
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
    record = confidentiality.by_id(session, Screening, screening_id)
    if (
        record is None
        or record.mission_id != actor.mission_id
        or not clinicians.is_mental_health_clinician(session, actor)
    ):
        raise not_found("screening")
    alert = alerts_for(session, [record.id]).get(record.id)
    if alert is None:
        raise conflict("this screening raised no alert: there is nothing to acknowledge")
    now = clock.now()
    taken = update_where(
        session,
        ScreeningAlert,
        ScreeningAlert.id == alert.id,
        ScreeningAlert.acknowledged_at.is_(None),
        acknowledged_at=now,
        acknowledged_by=actor.id,
    )
    if taken:
        audit.record(session, actor, "screening.acknowledge", record)
        confidentiality.tell_clinicians(
            session,
            "screening.acknowledged",
            record.mission_id,
            {
                "alert_id": alert.id,
                "screening_id": record.id,
                "acknowledged_by": actor.id,
                "acknowledged_at": now.isoformat(),
            },
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
        claimed = update_where(
            session,
            ScreeningAlert,
            ScreeningAlert.id == alert_id,
            ScreeningAlert.acknowledged_at.is_(None),
            ScreeningAlert.escalated_at.is_(None),
            escalated_at=now,
        )
        if not claimed:
            session.rollback()
            continue
        alert = session.get(ScreeningAlert, alert_id, populate_existing=True)
        record = session.get(Screening, alert.screening_id)
        member = session.get(User, alert.member_id)
        confidentiality.tell_clinicians(
            session,
            "screening.alert",
            alert.mission_id,
            alert_data(alert, member=member, instrument=record.instrument, escalated=True),
            every_clinician=True,
        )
        _audit(session, None, "screening.escalate", alert)
        session.commit()
        escalated += 1
    return escalated


def _audit(session, actor: User | None, action: str, alert: ScreeningAlert) -> None:
    # An alert's audit rows are its screening's: the member's access log lists them with the screening.
    audit.record(
        session, actor, action, subject_type="screening", subject_id=alert.screening_id, mission_id=alert.mission_id
    )
