"""Login, tokens, and the role and mission guards every endpoint uses in one line."""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import Flask, request
from flask_jwt_extended import create_access_token, decode_token, get_jwt_identity, verify_jwt_in_request

from config.extensions import db, jwt
from core.errors import ApiError, forbidden, not_found, respond
from core.models import User

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both failures take the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0000")
LOGIN_FAILED = "invalid username or password"

# Named role groups: the one place a set of roles gets a name (the domains' policy modules build on them).
ADMINS = frozenset({"admin"})
COORDINATORS = frozenset({"coordinator", "admin"})  # run a mission's operations; admins stand in for them
FIELD_STAFF = frozenset({"medic", "coordinator", "admin"})  # see CASEVAC requests and the fleet
CLINICIANS = frozenset({"clinician"})
MEMBERS = frozenset({"member"})


def is_admin(user: User) -> bool:
    """A mission admin or a superadmin (who administers every mission)."""
    return user.role in ADMINS or bool(user.superadmin)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def authenticate(session, *, username: str, password: str) -> User:
    user = session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active:
        raise ApiError(401, LOGIN_FAILED)
    return user


def issue_token(user: User, expires_minutes: int) -> str:
    return create_access_token(
        identity=user.id,
        additional_claims={"role": user.role, "mission_id": user.mission_id},
        expires_delta=timedelta(minutes=expires_minutes),
    )


def user_from_token(token: str) -> User | None:
    """For sockets: the active user a raw token names, or None (bad, expired, unknown)."""
    try:
        claims = decode_token(token)
    except Exception:  # noqa: BLE001 - any decoding failure means "not authenticated"
        return None
    user = db.session.get(User, claims.get("sub"))
    return user if user is not None and user.active else None


def current_user(roles: set[str] | frozenset[str] | None = None) -> User:
    """The authenticated user (401 otherwise); 403 when roles is given and theirs is not in it."""
    # Cached per request (not on g: tests keep one app context across requests).
    user = request.environ.get("medevac.user")
    if user is None:
        verify_jwt_in_request()
        user = db.session.get(User, get_jwt_identity())
        if user is None or not user.active:
            raise ApiError(401, "the token's user no longer exists or is disabled")
        request.environ["medevac.user"] = user
    if roles is not None and user.role not in roles:
        raise forbidden(f"this needs one of the roles: {', '.join(sorted(roles))}")
    return user


def can_see_mission(user: User, mission_id: str | None) -> bool:
    return user.superadmin or (mission_id is not None and user.mission_id == mission_id)


def ensure_mission(user: User, mission_id: str | None, what: str = "resource") -> None:
    """Records of another mission are reported as unknown (404), never as forbidden."""
    if not can_see_mission(user, mission_id):
        raise not_found(what)


def public(view):
    """Mark a view method that answers without a bearer token (login, health checks)."""
    view._public = True
    return view


# flask-smorest's own endpoints (the OpenAPI document) are public.
_PUBLIC_BLUEPRINTS = {"api-docs"}


def register(app: Flask) -> None:
    @app.before_request
    def _token_first():
        """No valid token, no further look: 401 before the body is validated (a 422 would tell an anonymous
        caller about the endpoint). A bearer token is authenticated here (the view's current_user() reuses
        the result and checks the role); another scheme (a device token on the endpoints that take one) is
        the view's to judge."""
        from core.http import view_handler

        if request.method == "OPTIONS" or request.routing_exception is not None or request.endpoint is None:
            return None
        if request.blueprint in _PUBLIC_BLUEPRINTS or request.endpoint == "static":
            return None
        handler = view_handler(app)
        if handler is None or getattr(handler, "_public", False):
            return None
        header = request.headers.get("Authorization")
        if not header:
            return _error(401, "missing bearer token: send Authorization: Bearer <access_token>")
        if header.partition(" ")[0] == "Bearer":
            current_user()  # a bad, expired or disabled user's token is 401 here, before the body is validated
        return None

    @jwt.unauthorized_loader
    def _missing(reason):
        return _error(401, "missing bearer token: send Authorization: Bearer <access_token>")

    @jwt.invalid_token_loader
    def _invalid(reason):
        return _error(401, "invalid token")

    @jwt.expired_token_loader
    def _expired(header, payload):
        return _error(401, "token expired: log in again")

    @jwt.user_lookup_error_loader
    def _lookup(header, payload):
        return _error(401, "the token's user no longer exists")


def _error(code, message):
    return respond(code, message, headers={"WWW-Authenticate": "Bearer"})
