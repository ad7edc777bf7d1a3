"""Confidentiality of mental-health records, in one place (`visible`): a screening or self-referral is visible
to the member it belongs to and to the mental-health clinicians of its mission, and to no one else:
coordinators, medics, admins and other clinicians get 404, the same answer as for an id that does not exist.
Every read writes an audit row; the member's access log lists them (DOMAIN.md section 6, issue 7)."""

from __future__ import annotations

from sqlalchemy import or_

from config.extensions import db
from core import audit
from core.errors import forbidden, invalid, not_found
from core.fields import UNSTORABLE
from core.models import AuditEntry, User
from core.pagination import Key, paginate
from realtime import audience, events
from telemed.mental.models import Screening, SelfReferral
from telemed.scheduling import clinicians, consultations


def by_id(session, model, record_id: str):
    """The record with this id, or None; an id no record can have (too long, NUL, lone surrogate) is simply
    unknown, rather than an error from the database."""
    if not isinstance(record_id, str) or len(record_id) > 64 or UNSTORABLE.search(record_id):
        return None
    return session.get(model, record_id)


def visible(session, actor: User, *, member_id: str, mission_id: str) -> bool:
    if actor.id == member_id:
        return True
    return actor.mission_id == mission_id and clinicians.is_mental_health_clinician(session, actor)


def load_visible(session, actor: User, model, record_id: str, *, what: str):
    """A screening or self-referral the actor may see; 404 naming `what` otherwise, as for an unknown id."""
    record = by_id(session, model, record_id)
    if record is None or not visible(session, actor, member_id=record.member_id, mission_id=record.mission_id):
        raise not_found(what)
    return record


def require_clinician(session, actor: User) -> None:
    if not clinicians.is_mental_health_clinician(session, actor):
        raise forbidden("only the mission's mental-health clinicians (psychiatry, psychology) may do this")


def scoped(session, actor: User, model):
    """A member's own records; a mental-health clinician's mission's (403 for any other clinician)."""
    if actor.role == "member":
        return db.select(model).where(model.member_id == actor.id)
    require_clinician(session, actor)
    return db.select(model).where(model.mission_id == actor.mission_id)


def read_newest_first(session, actor: User, query, model, *, limit: int, cursor, action: str):
    """One page of confidential records, newest first; every record listed is an audited read (committed)."""
    page = paginate(
        query,
        [Key(model.created_at, descending=True), Key(model.id, descending=True)],
        limit=limit,
        cursor=cursor,
        session=session,
    )
    for record in page["items"]:
        audit.record(session, actor, action, record)
    session.commit()
    return page


def tell_clinicians(session, type_: str, mission_id: str, data: dict, *, every_clinician: bool = False) -> None:
    """Publish a mental-health event to the mission's mental-health clinicians, the only audience such events
    have; `every_clinician` adds all the mission's clinicians (an escalation, or a mission without any
    mental-health clinician). The payload is the minimum they need to act: never answers or reasons."""
    rooms = [audience.mission_mental_health(mission_id)]
    if every_clinician:
        rooms.append(audience.mission_role(mission_id, "clinician"))
    events.publish(session, type_, rooms, data, mission_id=mission_id)


def member_of_mission(session, *, member_id: str, mission_id: str) -> User:
    member = by_id(session, User, member_id)
    if member is None or member.mission_id != mission_id or member.role != "member":
        raise invalid("member_id", "unknown member of your mission")
    return member


def access_log(session, *, actor: User, limit: int, cursor: str | None) -> dict:
    """Every audited action on the caller's confidential records (reads above all): their screenings,
    self-referrals and the mental-health consultations they are the patient of; who, when, what."""
    own_screenings = db.select(Screening.id).where(Screening.member_id == actor.id)
    own_referrals = db.select(SelfReferral.id).where(SelfReferral.member_id == actor.id)
    own_consultations = consultations.mental_health_ids(patient_user_id=actor.id)
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
    actors = users_by_id(session, {e.actor_id for e in page["items"] if e.actor_id})
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


def users_by_id(session, ids: set[str]) -> dict[str, User]:
    if not ids:
        return {}
    return {u.id: u for u in session.execute(db.select(User).where(User.id.in_(ids))).scalars()}
