"""Short bearer tokens for field devices (issue 16, "Small requests"): a random 144-bit token of 26
characters, exchanged at login (`{"device": true}`), instead of the 460-character JWT in every request's
headers over 2G. The same security properties as the JWT, checked on every use:
- expiry: the JWT's lifetime (JWT_EXPIRES_MINUTES) from issue;
- revocation: DELETE /api/v1/auth/device-token (that token; with a JWT, all of the user's), and a disabled
  user's tokens stop at once (the user is read on every request, as for the JWT);
- mission binding: the mission at issue; a user moved to another mission must log in again.
Stored as sha256 (256-bit-class random secrets: a fast hash, looked up by its hash), never logged."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update

from core import clock
from core.models import DeviceSession, User

PREFIX = "d_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def is_device_token(token: str | None) -> bool:
    return bool(token) and token.startswith(PREFIX) and len(token) <= 64


def issue(session, *, user: User, minutes: int) -> tuple[str, int]:
    """A new device token for the user (committed by the caller); returns (token, seconds valid)."""
    token = PREFIX + secrets.token_urlsafe(18)
    now = clock.now()
    session.add(
        DeviceSession(
            token_hash=_hash(token),
            user_id=user.id,
            mission_id=user.mission_id,
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
    )
    return token, minutes * 60


def user_for(session, token: str) -> User | None:
    """The active user a live device token names, or None (unknown, expired, revoked, mission changed)."""
    if not is_device_token(token):
        return None
    row = session.get(DeviceSession, _hash(token))
    if row is None or row.revoked_at is not None or row.expires_at <= clock.now():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active or user.mission_id != row.mission_id:
        return None
    return user


def revoke(session, *, user: User, token: str | None) -> int:
    """Revoke that device token (or, without one, every device token of the user); returns how many."""
    query = update(DeviceSession).where(DeviceSession.user_id == user.id, DeviceSession.revoked_at.is_(None))
    if token is not None:
        query = query.where(DeviceSession.token_hash == _hash(token))
    count = session.execute(query.values(revoked_at=clock.now()).execution_options(synchronize_session=False)).rowcount
    session.commit()
    return count


def purge_expired(session, *, now, settings) -> int:
    """Sweeper task: drop tokens expired (or revoked) more than a day ago."""
    cutoff = now - timedelta(days=1)
    return session.execute(
        delete(DeviceSession).where((DeviceSession.expires_at < cutoff) | (DeviceSession.revoked_at < cutoff))
    ).rowcount


def current_token_row(session, token: str) -> DeviceSession | None:
    return session.execute(select(DeviceSession).where(DeviceSession.token_hash == _hash(token))).scalar_one_or_none()
