"""Clinician profiles and their availability (who takes which consultations, where and when)."""

from __future__ import annotations

from config.extensions import db
from core import audit
from core.auth import can_see_mission, ensure_mission, is_admin
from core.db import is_id
from core.errors import forbidden, invalid, not_found
from core.models import User
from core.pagination import Key, paginate
from core.records import flush_or_conflict
from telemed import policy
from telemed.scheduling.models import Clinician

# The specialties that make a clinician a mental-health clinician (DOMAIN.md section 6): they see the
# mission's screenings and self-referrals and take mental_health consultations.
MENTAL_HEALTH_SPECIALTIES = ("psychiatry", "psychology")


def _default_kinds(specialties) -> list[str]:
    kinds = []
    if any(s not in MENTAL_HEALTH_SPECIALTIES for s in specialties):
        kinds.append("diagnostic")
    if any(s in MENTAL_HEALTH_SPECIALTIES for s in specialties):
        kinds.append("mental_health")
    return kinds


def matching_clinicians(
    session,
    *,
    mission_id: str,
    specialty: str | None = None,
    specialties=None,
    language: str | None = None,
    kind: str | None = None,
    clinician_id: str | None = None,
) -> list[Clinician]:
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
    return [
        c.user
        for c in matching_clinicians(session, mission_id=mission_id, specialties=MENTAL_HEALTH_SPECIALTIES)
        if c.user.active and c.user.role == "clinician"
    ]


# The credentials of a profile only an admin grants (docs/telemed.md, "Credentials"), on every path that sets
# them (create_clinician, update_clinician): a mental-health specialty opens confidential records
# (screenings, referrals, the mental-health room); the mental_health kind lets the clinician be booked for
# mental-health consultations; `active` puts a profile in or out of every search and room.
ADMIN_ONLY_KINDS = frozenset({"mental_health"})


def _guard_credentials(actor: User, specialties=None, *, was=(), kinds=None, had_kinds=()) -> None:
    """A clinician cannot give themself what only an admin grants."""
    if policy.may_grant_credentials(actor):
        return
    if (set(specialties or ()) - set(was)) & set(MENTAL_HEALTH_SPECIALTIES):
        raise forbidden("only an admin grants the psychiatry or psychology specialty")
    if (set(kinds or ()) - set(had_kinds)) & ADMIN_ONLY_KINDS:
        raise forbidden("only an admin lets a clinician take mental_health consultations")


def create_clinician(
    session,
    *,
    actor: User,
    user_id: str,
    specialties: list[str],
    languages: list[str],
    timezone: str,
    kinds: list[str] | None = None,
    display_name: str | None = None,
) -> Clinician:
    user = session.get(User, user_id) if is_id(user_id) else None
    if user is None or not can_see_mission(actor, user.mission_id):
        raise invalid("user_id", "unknown user")
    if actor.id != user.id and not (is_admin(actor) and can_see_mission(actor, user.mission_id)):
        raise forbidden("an admin of the mission or the clinician themself creates a profile")
    if user.role != "clinician":
        raise invalid("user_id", "the user's role is not clinician")
    _guard_credentials(actor, specialties, kinds=kinds or _default_kinds(specialties))
    clinician = Clinician(
        user_id=user.id,
        mission_id=user.mission_id,
        specialties=list(dict.fromkeys(specialties)),
        languages=list(dict.fromkeys(languages)),
        timezone=timezone,
        kinds=list(dict.fromkeys(kinds or _default_kinds(specialties))),
        display_name=display_name or user.display_name,
        weekly=[],
        overrides=[],
    )
    session.add(clinician)
    flush_or_conflict(session, "this user already has a clinician profile")
    audit.record(session, actor, "telemed.clinician.create", clinician)
    session.commit()
    return clinician


def get_clinician(session, *, actor: User, clinician_id: str) -> Clinician:
    clinician = session.get(Clinician, clinician_id) if is_id(clinician_id) else None
    if clinician is None:
        raise not_found("clinician")
    ensure_mission(actor, clinician.mission_id, "clinician")
    return clinician


def list_clinicians(session, *, actor: User, limit: int, cursor: str | None, specialty=None, language=None, kind=None):
    query = db.select(Clinician).where(Clinician.mission_id == actor.mission_id)
    if specialty or language or kind:
        ids = [
            c.id
            for c in matching_clinicians(
                session, mission_id=actor.mission_id, specialty=specialty, language=language, kind=kind
            )
        ]
        query = query.where(Clinician.id.in_(ids))
    page = paginate(query, [Key(Clinician.id)], limit=limit, cursor=cursor, session=session)
    return page


def update_clinician(session, *, actor: User, clinician_id: str, **changes) -> Clinician:
    clinician = get_clinician(session, actor=actor, clinician_id=clinician_id)
    if not policy.may_edit_clinician(actor, clinician):
        raise forbidden("an admin of the mission or the clinician themself edits a profile")
    _guard_credentials(
        actor,
        changes.get("specialties"),
        was=clinician.specialties,
        kinds=changes.get("kinds"),
        had_kinds=clinician.kinds,
    )
    if "active" in changes and not policy.may_grant_credentials(actor):
        raise forbidden("only an admin activates or deactivates a clinician")
    for name in ("specialties", "languages", "kinds"):
        if name in changes:
            changes[name] = list(dict.fromkeys(changes[name]))
    for name, value in changes.items():
        setattr(clinician, name, value)
    clinician.profile_version = Clinician.profile_version + 1
    audit.record(session, actor, "telemed.clinician.update", clinician, detail={"fields": sorted(changes)})
    session.commit()
    return clinician


def set_availability(
    session,
    *,
    actor: User,
    clinician_id: str,
    weekly: list[dict],
    overrides: list[dict],
    slot_minutes: int,
    buffer_minutes: int,
    min_notice_minutes: int,
    horizon_days: int,
) -> Clinician:
    """Replace the weekly windows and overrides (times in the clinician's zone). Existing bookings stand."""
    clinician = get_clinician(session, actor=actor, clinician_id=clinician_id)
    if not policy.may_edit_clinician(actor, clinician):
        raise forbidden("an admin of the mission or the clinician themself sets availability")
    clinician.weekly = [dict(w) for w in weekly]
    clinician.overrides = [
        {"date": o["date"].isoformat(), "windows": [dict(w) for w in o["windows"]]}
        for o in sorted(overrides, key=lambda o: o["date"])
    ]
    clinician.slot_minutes = slot_minutes
    clinician.buffer_minutes = buffer_minutes
    clinician.min_notice_minutes = min_notice_minutes
    clinician.horizon_days = horizon_days
    clinician.profile_version = Clinician.profile_version + 1
    audit.record(session, actor, "telemed.scheduling.availability.set", clinician)
    session.commit()
    return clinician
