"""Invited participants of a live consultation: interpreters and second clinicians (telemed_participants).

The consultation's clinician (or an admin of its mission, for a diagnostic consultation) invites a user of
the same mission as interpreter (with the language they interpret) or as second clinician, and revokes the
invitation. An invitation is in force until revoked or until the consultation's end; what each part sees is
telemed.policy's. The invitee hears of it (consult.updated, change "participants"); a revocation also ends
the invitee's place in the live call at once (the hooks registered with on_revoke: telemed.scheduling.video).
"""

from __future__ import annotations

from collections.abc import Callable

from config.extensions import db
from core import audit, clock
from core.db import is_id
from core.errors import conflict, forbidden, invalid, not_found
from core.models import User
from core.records import flush_or_conflict, update_where
from telemed import policy
from telemed.scheduling import access, notices
from telemed.scheduling.clinicians import clinician_of_user, is_mental_health_clinician
from telemed.scheduling.models import LIVE_STATUSES, Consultation, Participant

_revoke_hooks: list[Callable[[str, str], None]] = []


def on_revoke(hook: Callable[[str, str], None]) -> None:
    """hook(consultation_id, user_id), called after a revocation is committed."""
    if hook not in _revoke_hooks:
        _revoke_hooks.append(hook)


def _guard(session, actor: User, consultation_id: str) -> Consultation:
    consultation = access.load_visible(session, actor, consultation_id)
    if not policy.may_invite(actor, consultation):
        raise forbidden("only the consultation's clinician (or an admin, for a diagnostic one) invites and revokes")
    return consultation


def _invitee(session, consultation: Consultation, user_id: str | None, username: str | None, part: str) -> User:
    """The user to invite, by id or username: an active user of the consultation's mission (422 otherwise,
    the same answer for a user of another mission as for no user)."""
    field = "user_id" if user_id is not None else "username"
    if user_id is not None:
        invitee = session.get(User, user_id) if is_id(user_id) else None
    else:
        query = db.select(User).where(User.username == username, User.mission_id == consultation.mission_id)
        invitee = session.execute(query).scalar_one_or_none()
    if invitee is None or not invitee.active or invitee.mission_id != consultation.mission_id:
        raise invalid(field, f"no active user of the consultation's mission has this {field.replace('_', ' ')}")
    if invitee.id in policy.participants(consultation):
        raise invalid(field, "this user already takes part in the consultation")
    if part != "clinician":
        return invitee
    profile = clinician_of_user(session, invitee.id)
    if invitee.role != "clinician" or profile is None or not profile.active:
        raise invalid(field, "a second clinician is a user with role clinician and an active clinician profile")
    if consultation.kind == "mental_health" and not is_mental_health_clinician(session, invitee):
        raise invalid(field, "a mental-health consultation's second clinician is a psychiatrist or psychologist")
    return invitee


def invite(
    session,
    *,
    actor: User,
    consultation_id: str,
    part: str,
    user_id: str | None = None,
    username: str | None = None,
    language: str | None = None,
) -> dict:
    consultation = _guard(session, actor, consultation_id)
    if consultation.modality == "async":
        raise conflict(
            "a store-and-forward consultation has no live session to invite into",
            allowed_modalities=["video", "audio", "chat"],
        )
    if consultation.status not in LIVE_STATUSES or clock.now() >= consultation.end:
        state = consultation.status if consultation.status not in LIVE_STATUSES else "over"
        raise conflict(
            f"the consultation is {state}: invitations are made while it is booked, checked in or in progress, "
            "before its end",
            allowed=list(LIVE_STATUSES),
        )
    if part == "interpreter" and not language:
        raise invalid("language", "an interpreter's language is required (ISO 639-1, e.g. fr, ar, sango: sg)")
    if part != "interpreter" and language:
        raise invalid("language", "only an interpreter has a language")
    invitee = _invitee(session, consultation, user_id, username, part)
    already = policy.invitation(invitee, consultation)
    if already is not None:
        raise conflict("this user is already invited: revoke that invitation first", participant_id=already.id)
    participant = Participant(
        consultation_id=consultation.id,
        mission_id=consultation.mission_id,
        user_id=invitee.id,
        part=part,
        language=language if part == "interpreter" else None,
        invited_by=actor.id,
        invited_at=clock.now(),
    )
    session.add(participant)
    # The partial unique index decides two racing invitations of one user.
    flush_or_conflict(session, "this user is already invited: revoke that invitation first")
    consultation.invitations.append(participant)
    audit.record(
        session,
        actor,
        "telemed.participant.invite",
        consultation,
        detail={"participant_id": participant.id, "user_id": invitee.id, "part": part, "language": language},
    )
    access.publish(session, consultation, "consult.updated", change="participants", participant_id=participant.id)
    notices.invited(session, consultation, invitee)
    session.commit()
    return out(participant, consultation)


def revoke(session, *, actor: User, consultation_id: str, participant_id: str) -> dict:
    consultation = _guard(session, actor, consultation_id)
    participant = next((p for p in consultation.invitations if p.id == participant_id), None)
    if participant is None:
        raise not_found("participant")
    now = clock.now()
    # Only the first of racing revocations changes the row (and tells anyone).
    changed = update_where(
        session,
        Participant,
        Participant.id == participant.id,
        Participant.revoked_at.is_(None),
        revoked_at=now,
        revoked_by=actor.id,
    )
    if not changed:
        session.rollback()
        raise conflict("this invitation is already revoked", allowed=[])
    session.refresh(participant)
    audit.record(
        session,
        actor,
        "telemed.participant.revoke",
        consultation,
        detail={"participant_id": participant.id, "user_id": participant.user_id, "part": participant.part},
    )
    access.publish(
        session,
        consultation,
        "consult.updated",
        also=(participant.user_id,),
        change="participants",
        participant_id=participant.id,
    )
    notices.uninvited(session, consultation, participant.user_id)
    session.commit()
    for hook in list(_revoke_hooks):
        hook(consultation.id, participant.user_id)
    return out(participant, consultation)


def out(participant: Participant, consultation: Consultation) -> dict:
    return {
        "id": participant.id,
        "consultation_id": participant.consultation_id,
        "user_id": participant.user_id,
        "name": participant.user.display_name or participant.user.username,
        "part": participant.part,
        "language": participant.language,
        "invited_by": participant.invited_by,
        "invited_at": participant.invited_at,
        "expires_at": consultation.end,
        "revoked_at": participant.revoked_at,
        "active": participant in policy.active_invitations(consultation),
    }


def list_participants(session, *, actor: User, consultation_id: str) -> dict:
    """Everyone invited into the consultation, revoked invitations included (whoever may see it)."""
    consultation = access.load_visible(session, actor, consultation_id)
    access.audit_read(session, actor, consultation, "participants")
    session.commit()
    return {"items": [out(p, consultation) for p in consultation.invitations]}


def my_invitations(session, *, actor: User) -> dict:
    """The caller's invitations in force, soonest first, with what a page needs to show and join them."""
    query = (
        db.select(Participant, Consultation)
        .join(Consultation, Participant.consultation_id == Consultation.id)
        .where(
            Participant.user_id == actor.id,
            Participant.mission_id == actor.mission_id,
            Participant.revoked_at.is_(None),
            Consultation.status.in_(LIVE_STATUSES),
            Consultation.end > clock.now(),
        )
        .order_by(Consultation.start, Participant.id)
        .limit(100)
    )
    items = []
    for participant, consultation in session.execute(query).unique().all():
        access.audit_read(session, actor, consultation, "invitation")
        items.append(
            {
                **out(participant, consultation),
                "consultation": access.event_data(consultation, clinician_name=consultation.clinician.display_name),
            }
        )
    session.commit()
    return {"items": items}
