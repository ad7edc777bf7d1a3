"""Accounts: missions and users (plain functions, explicit session, keyword-only)."""

from __future__ import annotations

from zoneinfo import available_timezones

from config.extensions import db
from core import audit
from core.auth import ensure_mission, hash_password
from core.errors import forbidden, invalid, not_found
from core.models import AuditEntry, Mission, User
from core.pagination import Key, paginate
from core.records import flush_or_conflict


def create_mission(
    session, *, actor: User | None, code: str, name: str, lat=None, lon=None, timezone: str = "UTC"
) -> Mission:
    if actor is not None and not actor.superadmin:
        raise forbidden("only a superadmin creates missions")
    if timezone not in available_timezones():
        raise invalid("timezone", "not an IANA time zone name (e.g. Africa/Bangui)")
    mission = Mission(code=code, name=name, lat=lat, lon=lon, timezone=timezone)
    session.add(mission)
    flush_or_conflict(session, f"a mission with code {code} already exists")
    audit.record(
        session,
        actor=actor,
        action="mission.create",
        subject_type="mission",
        subject_id=mission.id,
        mission_id=mission.id,
    )
    session.commit()
    return mission


def get_mission(session, *, actor: User, mission_id: str) -> Mission:
    mission = session.get(Mission, mission_id)
    if mission is None:
        raise not_found("mission")
    ensure_mission(actor, mission.id, "mission")
    return mission


def list_missions(session, *, actor: User, limit: int, cursor: str | None):
    query = db.select(Mission)
    if not actor.superadmin:
        query = query.where(Mission.id == actor.mission_id)
    return paginate(query, [Key(Mission.code), Key(Mission.id)], limit=limit, cursor=cursor, session=session)


def create_user(
    session,
    *,
    actor: User | None,
    username: str,
    password: str,
    role: str,
    mission_id: str,
    display_name: str | None = None,
    superadmin: bool = False,
) -> User:
    if actor is not None:
        if actor.role != "admin" and not actor.superadmin:
            raise forbidden("only an admin of the mission creates users")
        if session.get(Mission, mission_id) is None or not (actor.superadmin or actor.mission_id == mission_id):
            # Another mission's id is reported as unknown: do not reveal it exists.
            raise invalid("mission_id", "unknown mission")
        if superadmin and not actor.superadmin:
            raise forbidden("only a superadmin grants superadmin")
    elif session.get(Mission, mission_id) is None:
        raise invalid("mission_id", "unknown mission")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        mission_id=mission_id,
        display_name=display_name,
        superadmin=superadmin,
    )
    session.add(user)
    flush_or_conflict(session, f"the username {username} is taken")
    audit.record(
        session,
        actor=actor,
        action="user.create",
        subject_type="user",
        subject_id=user.id,
        mission_id=mission_id,
        detail={"role": role},
    )
    session.commit()
    return user


def get_user(session, *, actor: User, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None or not (
        actor.superadmin or (actor.role == "admin" and user.mission_id == actor.mission_id) or actor.id == user.id
    ):
        raise not_found("user")
    return user


def list_users(
    session, *, actor: User, limit: int, cursor: str | None, role: str | None = None, mission_id: str | None = None
):
    query = db.select(User)
    if actor.superadmin:
        if mission_id:
            query = query.where(User.mission_id == mission_id)
    else:
        if mission_id and mission_id != actor.mission_id:
            return {"items": [], "next_cursor": None}
        query = query.where(User.mission_id == actor.mission_id)
    if role:
        query = query.where(User.role == role)
    return paginate(query, [Key(User.username), Key(User.id)], limit=limit, cursor=cursor, session=session)


def list_audit(
    session,
    *,
    actor: User,
    limit: int,
    cursor: str | None,
    subject_id: str | None = None,
    actor_id: str | None = None,
    action: str | None = None,
):
    # Admins (superadmins too) are never mental-health clinicians: confidential rows stay out of this list.
    query = db.select(AuditEntry).where(audit.not_confidential())
    if not actor.superadmin:
        query = query.where(AuditEntry.mission_id == actor.mission_id)
    if subject_id:
        query = query.where(AuditEntry.subject_id == subject_id)
    if actor_id:
        query = query.where(AuditEntry.actor_id == actor_id)
    if action:
        query = query.where(AuditEntry.action == action)
    return paginate(query, [Key(AuditEntry.id, descending=True)], limit=limit, cursor=cursor, session=session)
