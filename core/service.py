"""Accounts: missions and users (plain functions, explicit session, keyword-only)."""

from __future__ import annotations

import re
from zoneinfo import available_timezones

from config.extensions import db
from core import audit
from core.auth import ensure_mission, hash_password
from core.errors import conflict, forbidden, invalid, not_found
from core.models import AuditEntry, Mission, User
from core.pagination import Key, paginate, where_given
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
    audit.record(session, actor, "mission.create", mission, mission_id=mission.id)
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
    email: str | None = None,
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
    email = checked_email(email)
    if email and session.execute(db.select(User.id).where(User.email == email)).first():
        raise conflict("this email is registered to another user: remove it there first", fields=["email"])
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        mission_id=mission_id,
        display_name=display_name,
        superadmin=superadmin,
        email=email,
    )
    return add_user(session, user, actor=actor)


def add_user(session, user: User, *, actor: User | None, audit_detail: dict | None = None) -> User:
    """A new user, with its `user.create` audit row (`audit_detail` adds to the role it names), committed;
    409 when the username is taken. Who may create it and whether its fields are valid is the caller's to
    check: create_user does for the API and the CLI; the system's own users (the TAK gateway's service user,
    demo users sharing one password hash) come here directly."""
    session.add(user)
    flush_or_conflict(session, f"the username {user.username} is taken")
    audit.record(session, actor, "user.create", user, detail={"role": user.role, **(audit_detail or {})})
    session.commit()
    return user


def get_user(session, *, actor: User, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None or not (
        actor.superadmin or (actor.role == "admin" and user.mission_id == actor.mission_id) or actor.id == user.id
    ):
        raise not_found("user")
    return user


PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
IMEI = re.compile(r"^\d{15}$")
# A pragmatic address (RFC 5321 sizes, ASCII only: no SMTPUTF8): local part, @, a domain with a dot.
EMAIL = re.compile(
    r"^(?=.{3,254}$)[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?=[^@]{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)


def normalise_phone(value: str) -> str | None:
    """E.164 (+ and 7-15 digits), with the spaces, dots, dashes and brackets people write dropped; None
    when it is not one."""
    phone = re.sub(r"[\s.\-()]", "", str(value))
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    return phone if PHONE.match(phone) else None


def checked_email(value: str | None) -> str | None:
    """The address trimmed and lower-cased (so unique per lower-case value); 422 naming `email` otherwise."""
    if value is None:
        return None
    email = value.strip().lower()
    local = email.split("@", 1)[0]
    if not EMAIL.match(email) or len(local) > 64:
        raise invalid("email", "an e-mail address: name@domain (e.g. medic.ndongo@mission.example), ASCII only")
    return email


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
    query = where_given(query, (User.role, role))
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
    query = where_given(
        query, (AuditEntry.subject_id, subject_id), (AuditEntry.actor_id, actor_id), (AuditEntry.action, action)
    )
    return paginate(query, [Key(AuditEntry.id, descending=True)], limit=limit, cursor=cursor, session=session)


# -- PATCH /users/{id}: access (active, role, display_name) ---------------------------------------------------

# Called in the same transaction when a user's access changes: callback(session, *, user, reason), reason
# "user_disabled" or "role_changed". The real-time layer registers the one that ends the user's open sockets.
ACCESS_CHANGED: list = []


def on_access_changed(callback) -> None:
    if callback not in ACCESS_CHANGED:
        ACCESS_CHANGED.append(callback)


def update_user(session, *, actor: User, user_id: str, changes: dict) -> User:
    """PATCH /users/{id}: an admin of the user's mission (or a superadmin) enables or disables a user, changes
    their role, display name, SMS phone, satellite IMEI or e-mail address; audited with the names of the fields changed.
    Disabling or a new role takes effect at once: the next request with any of the user's tokens is 401
    (core.auth checks `active` on every request) or sees the new role, and their open sockets are ended
    (ACCESS_CHANGED)."""
    user = session.get(User, user_id) if isinstance(user_id, str) else None
    if user is None or not (actor.superadmin or (actor.role == "admin" and user.mission_id == actor.mission_id)):
        raise not_found("user")
    if user.superadmin and not actor.superadmin:
        raise forbidden("only a superadmin changes a superadmin")
    if user.id == actor.id and (changes.get("active") is False or changes.get("role", user.role) != user.role):
        raise conflict("you cannot disable yourself or change your own role: another admin of the mission can")
    changes = dict(changes)
    if changes.get("phone") is not None:
        phone = normalise_phone(changes["phone"])
        if phone is None:
            raise invalid(
                "phone", "an E.164 number: + then the country code and number, 7 to 15 digits (e.g. +23670123456)"
            )
        changes["phone"] = phone
    if changes.get("imei") is not None:
        imei = re.sub(r"[\s\-]", "", changes["imei"])
        if not IMEI.match(imei):
            raise invalid("imei", "15 digits (e.g. 300234010753370)")
        changes["imei"] = imei
    if "email" in changes:
        changes["email"] = checked_email(changes["email"])
    changed = {name: value for name, value in changes.items() if getattr(user, name) != value}
    if not changed:
        return user
    reasons = []
    if changed.get("active") is False:
        reasons.append("user_disabled")
    if "role" in changed:
        reasons.append("role_changed")
    for name, value in changed.items():
        setattr(user, name, value)
    taken = [name for name in ("phone", "imei", "email") if name in changed]
    if taken:
        flush_or_conflict(
            session, f"this {' or '.join(taken)} is registered to another user: remove it there first", fields=taken
        )
    detail = {"fields": sorted(changed)}
    detail.update({k: changed[k] for k in ("active", "role") if k in changed})
    audit.record(session, actor, "user.update", user, detail=detail)
    for reason in reasons[:1]:  # disabled wins over a role change made in the same call
        for callback in list(ACCESS_CHANGED):
            callback(session, user=user, reason=reason)
    session.commit()
    return user
