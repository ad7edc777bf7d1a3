"""Socket.IO connect handler: authenticate auth.token, place the client in its rooms (never chosen by it)."""
from __future__ import annotations

from flask import request
from flask_socketio import ConnectionRefusedError, join_room

from config.extensions import db, socketio
from core.auth import user_from_token
from realtime import audience


def rooms_for(user) -> list[str]:
    rooms = [audience.user(user.id), audience.mission_role(user.mission_id, user.role)]
    if _is_mental_health_clinician(user):
        rooms.append(audience.mission_mental_health(user.mission_id))
    return rooms


def _is_mental_health_clinician(user) -> bool:
    """Telemed registers the real check (a clinician with specialty psychiatry or psychology)."""
    check = _mental_health_check[0]
    return bool(check and user.role == "clinician" and check(user))


_mental_health_check: list = [None]


def set_mental_health_check(func) -> None:
    _mental_health_check[0] = func


@socketio.on("connect")
def on_connect(auth=None):
    token = auth.get("token") if isinstance(auth, dict) else None
    if not token or not isinstance(token, str):
        raise ConnectionRefusedError("authentication required: connect with auth={'token': <access_token>}")
    try:
        user = user_from_token(token)
        if user is None:
            raise ConnectionRefusedError("invalid or expired token")
        for room in rooms_for(user):
            join_room(room)
    finally:
        db.session.remove()
    return True
