"""Confidential self-referrals (DOMAIN.md section 6): a member asks for a mental-health consultation
without going through command, is offered the earliest free mental-health slots, books one through
telemed's booking, or withdraws. Lifecycle: open -> booked -> closed; open -> closed."""

from __future__ import annotations

from datetime import datetime, timedelta

from core import audit, clock
from core.errors import conflict, forbidden, not_found
from core.models import User
from core.records import update_where
from telemed.mental import confidentiality
from telemed.mental.models import SelfReferral
from telemed.scheduling import booking, clinicians, consultations, slots

# Offered slots: the earliest few within this horizon.
SLOT_HORIZON_DAYS = 14
SLOTS_OFFERED = 3


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
    audit.record(session, actor, "self_referral.create", referral)
    confidentiality.tell_clinicians(
        session,
        "self_referral.created",
        referral.mission_id,
        {
            "referral_id": referral.id,
            "member": {"id": actor.id, "display_name": actor.display_name},
            "preferred_language": preferred_language,
            "created_at": now.isoformat(),
        },
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
    referral = confidentiality.load_visible(session, actor, SelfReferral, referral_id, what="self-referral")
    audit.record(session, actor, "self_referral.read", referral)
    session.commit()
    slots, consultation = [], None
    if referral.status == "open":
        slots = offered_slots(
            session, mission_id=referral.mission_id, start=clock.now(), language=referral.preferred_language
        )
    elif referral.consultation_id:
        consultation = consultations.get(session, referral.consultation_id)
    return {**referral_view(referral), "offered_slots": slots, "consultation": consultation}


def list_self_referrals(session, *, actor: User, limit: int, cursor: str | None, status: str | None = None) -> dict:
    query = confidentiality.scoped(session, actor, SelfReferral)
    if status:
        query = query.where(SelfReferral.status == status)
    page = confidentiality.read_newest_first(
        session, actor, query, SelfReferral, limit=limit, cursor=cursor, action="self_referral.read"
    )
    return {"items": [referral_view(r) for r in page["items"]], "next_cursor": page["next_cursor"]}


# Referral lifecycle: open -> booked (a mental-health consultation was booked for it) -> closed; open -> closed.
REFERRAL_TRANSITIONS = {"open": ("booked", "closed"), "booked": ("closed",), "closed": ()}


def close_self_referral(session, *, actor: User, referral_id: str) -> dict:
    """The member withdraws their request, or a mental-health clinician closes it once dealt with."""
    referral = confidentiality.load_visible(session, actor, SelfReferral, referral_id, what="self-referral")
    allowed = REFERRAL_TRANSITIONS[referral.status]
    if "closed" not in allowed:
        raise conflict(f"a {referral.status} self-referral cannot be closed", allowed=list(allowed))
    taken = update_where(
        session,
        SelfReferral,
        SelfReferral.id == referral.id,
        SelfReferral.status == referral.status,
        status="closed",
        updated_at=clock.now(),
    )
    if not taken:
        session.rollback()
        raise conflict("the self-referral changed meanwhile: reload it", allowed=[])
    audit.record(session, actor, "self_referral.close", referral)
    session.commit()
    session.refresh(referral)
    return {**referral_view(referral), "offered_slots": []}


def offered_slots(session, *, mission_id: str, start: datetime, language: str | None = None) -> list[dict]:
    """The earliest free mental-health slots (psychiatry or psychology clinicians taking mental_health
    consultations) over the next SLOT_HORIZON_DAYS; in the member's language when any clinician speaks it,
    else in any language (each slot names its clinician's languages, so the member can choose)."""
    end = start + timedelta(days=SLOT_HORIZON_DAYS)
    search = dict(
        mission_id=mission_id,
        start=start,
        end=end,
        specialties=clinicians.MENTAL_HEALTH_SPECIALTIES,
        kind="mental_health",
        limit=SLOTS_OFFERED,
    )
    found = slots.find_slots(session, language=language, **search) if language else []
    if not found:
        found = slots.find_slots(session, **search)
    if not found:
        return []
    profiles = {
        c.id: c
        for c in clinicians.matching_clinicians(
            session, mission_id=mission_id, specialties=clinicians.MENTAL_HEALTH_SPECIALTIES
        )
    }
    offered = []
    for slot in found:
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
    referral = confidentiality.by_id(session, SelfReferral, referral_id)
    if referral is None or referral.member_id != actor.id:
        raise not_found("self-referral")
    if referral.status != "open":
        raise conflict(
            f"a {referral.status} self-referral cannot be booked", allowed=list(REFERRAL_TRANSITIONS[referral.status])
        )
    # The referral is claimed first, in the booking's own transaction: of racing bookings of one referral the
    # database lets one through (the others wait on the row, then find it no longer open), and a booking that
    # fails (time taken, invalid) rolls the claim back. The status check above only spares a needless claim.
    claimed = update_where(
        session,
        SelfReferral,
        SelfReferral.id == referral.id,
        SelfReferral.status == "open",
        status="booked",
        updated_at=clock.now(),
    )
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
    update_where(session, SelfReferral, SelfReferral.id == referral.id, consultation_id=consultation.id)
    audit.record(session, actor, "self_referral.book", referral)
    session.commit()
    session.refresh(referral)
    return {**referral_view(referral), "offered_slots": [], "consultation": consultation}
