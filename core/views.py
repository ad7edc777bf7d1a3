"""Accounts, audit and health endpoints."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text

from config.extensions import db, limiter
from core import auth, device_tokens, service
from core.pagination import PageArgs
from core.schemas import (
    AuditArgs,
    AuditPage,
    LoginIn,
    LoginOut,
    MissionIn,
    MissionOut,
    MissionPage,
    ReadyOut,
    UserIn,
    UserListArgs,
    UserOut,
    UserPage,
    UserPatch,
)

blp = Blueprint("accounts", __name__, url_prefix="/api/v1", description="Accounts, missions, audit")
health = Blueprint("health", __name__, description="Liveness and readiness")


def _login_account_key() -> str:
    body = request.get_json(silent=True)
    username = body.get("username") if isinstance(body, dict) else None
    return f"login-account:{str(username)[:80].lower()}"


def _settings():
    return current_app.extensions["settings"]


@blp.route("/auth/login")
class Login(MethodView):
    decorators = [
        limiter.limit(lambda: _settings().LOGIN_LIMIT_PER_ADDRESS, scope="login-address"),
        limiter.limit(lambda: _settings().LOGIN_LIMIT_PER_ACCOUNT, key_func=_login_account_key, scope="login-account"),
    ]

    @blp.arguments(LoginIn)
    @blp.response(200, LoginOut)
    @blp.doc(security=[])  # public: the document's default bearer requirement does not apply
    @blp.alt_response(401, description="unknown user or wrong password (one message for both)")
    @blp.alt_response(429, description="too many attempts")
    @auth.public
    def post(self, body):
        """Exchange a username and password for a bearer token."""
        user = auth.authenticate(db.session, username=body["username"], password=body["password"])
        minutes = _settings().JWT_EXPIRES_MINUTES
        answer = {
            "access_token": auth.issue_token(user, minutes),
            "token_type": "Bearer",
            "expires_in": minutes * 60,
            "user": user,
        }
        if body.get("device"):
            answer["device_token"], _ = device_tokens.issue(db.session, user=user, minutes=minutes)
            db.session.commit()
        return answer


@blp.route("/auth/device-token")
class DeviceToken(MethodView):
    @blp.response(204)
    def delete(self):
        """Revoke the device token this request carries (with a JWT: every device token of the user)."""
        user = auth.current_user()
        token = auth.bearer_token()
        device_tokens.revoke(db.session, user=user, token=token if device_tokens.is_device_token(token) else None)
        return None


@blp.route("/auth/me")
class Me(MethodView):
    @blp.response(200, UserOut)
    def get(self):
        """The authenticated user."""
        return auth.current_user()


@blp.route("/missions")
class Missions(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, MissionPage)
    def get(self, args):
        """Missions visible to the caller (their own; all for a superadmin)."""
        return service.list_missions(db.session, actor=auth.current_user(), **args)

    @blp.arguments(MissionIn)
    @blp.response(201, MissionOut)
    def post(self, body):
        """Create a mission (superadmin)."""
        return service.create_mission(db.session, actor=auth.current_user(), **body)


@blp.route("/missions/<mission_id>")
class MissionById(MethodView):
    @blp.response(200, MissionOut)
    def get(self, mission_id):
        return service.get_mission(db.session, actor=auth.current_user(), mission_id=mission_id)


@blp.route("/users")
class Users(MethodView):
    @blp.arguments(UserListArgs, location="query")
    @blp.response(200, UserPage)
    def get(self, args):
        """Users of the admin's mission."""
        return service.list_users(db.session, actor=auth.current_user(roles={"admin"}), **args)

    @blp.arguments(UserIn)
    @blp.response(201, UserOut)
    def post(self, body):
        """Create a user in the admin's mission."""
        return service.create_user(db.session, actor=auth.current_user(roles={"admin"}), **body)


@blp.route("/users/<user_id>")
class UserById(MethodView):
    @blp.response(200, UserOut)
    def get(self, user_id):
        return service.get_user(db.session, actor=auth.current_user(), user_id=user_id)

    @blp.arguments(UserPatch)
    @blp.response(200, UserOut)
    @blp.alt_response(404, description="no such user in the admin's mission")
    @blp.alt_response(
        409, description="the phone, IMEI or email is registered to another user, or an admin disabling themself"
    )
    def patch(self, body, user_id):
        """Change a user of the admin's mission: `active: false` disables them at once (their tokens and open
        sockets stop working), `role`, display name, SMS phone (E.164), satellite IMEI, e-mail address (where
        consultation reminders and invitations are mailed)."""
        return service.update_user(db.session, actor=auth.current_user(roles={"admin"}), user_id=user_id, changes=body)


@blp.route("/audit")
class Audit(MethodView):
    @blp.arguments(AuditArgs, location="query")
    @blp.response(200, AuditPage)
    def get(self, args):
        """Who read or changed what, when, from where (admin; newest first)."""
        return service.list_audit(db.session, actor=auth.current_user(roles={"admin"}), **args)


@health.route("/healthz")
class Healthz(MethodView):
    @health.response(200)
    @health.doc(security=[])
    @auth.public
    def get(self):
        """Liveness: the process answers."""
        return {"status": "ok"}


@health.route("/readyz")
class Readyz(MethodView):
    @health.response(200, ReadyOut)
    @health.alt_response(503, schema=ReadyOut, description="the database is unreachable")
    @health.doc(security=[])
    @auth.public
    def get(self):
        """Readiness: database and Redis reachability."""
        status = readiness()
        return status, (200 if status["database"] == "ok" else 503)


def readiness() -> dict:
    database = "ok"
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception:  # noqa: BLE001 - any failure means not ready
        database = "error"
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001
            pass
    redis_state = "disabled"
    client = current_app.extensions.get("redis")
    if client is not None:
        try:
            client.ping()
            redis_state = "ok"
        except Exception:  # noqa: BLE001
            redis_state = "error"
    overall = "ok" if database == "ok" and redis_state in ("ok", "disabled") else "degraded"
    out = {"status": overall, "database": database, "redis": redis_state}
    for extra in READINESS_EXTRAS:  # informative lines registered by domains (the TAK gateway)
        if database == "ok":
            out.update(extra())
    return out


# Callables returning more keys for /readyz (they never change its status).
READINESS_EXTRAS: list = []
