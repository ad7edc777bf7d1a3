"""Socket.IO handlers: connect (authenticate auth.token, place the client in its rooms: never chosen by
it), disconnect (cleanup) and `sync` (replay from the event log, authorised again)."""

from __future__ import annotations

import logging
import threading

from flask import request
from flask_socketio import ConnectionRefusedError, disconnect, join_room

from config.extensions import db, socketio
from core import errors
from core.auth import token_expiry, user_from_token
from core.models import User
from realtime import audience, authority, replay, retention

log = logging.getLogger(__name__)

# sid -> user id of the clients connected to this process (cleared on disconnect).
_connections: dict[str, str] = {}
_connections_lock = threading.Lock()


def rooms_for(user) -> list[str]:
    """Every room a user is in; computed by the server from the user's role and mission (API.md, Audience)."""
    rooms = [
        audience.user(user.id),
        audience.mission(user.mission_id),
        audience.mission_role(user.mission_id, user.role),
    ]
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


def connected_count() -> int:
    with _connections_lock:
        return len(_connections)


def on_connect(auth=None):
    token = auth.get("token") if isinstance(auth, dict) else None
    if not token or not isinstance(token, str):
        raise ConnectionRefusedError("authentication required: connect with auth={'token': <access_token>}")
    # The session is removed when the handler's app context ends (Flask-SocketIO pushes one per event).
    user = user_from_token(token)
    if user is None:
        raise ConnectionRefusedError("invalid or expired token")
    for room in rooms_for(user):
        join_room(room)
    with _connections_lock:
        _connections[request.sid] = user.id
    authority.track(request.sid, user.id, token_expiry(token))
    retention.set_floor(request.sid, _current_seq())
    return True


def _current_seq() -> int:
    from realtime.relay import last_seq, relay

    return relay.cursor if relay.cursor is not None else last_seq(db.engine)


_disconnect_hooks: list = []


def on_disconnect_hook(func) -> None:
    """func(sid) runs when a connection ends (telemed's calls forget the participant)."""
    if func not in _disconnect_hooks:
        _disconnect_hooks.append(func)


def on_disconnect(*args):
    # Rooms are left by the server itself; this forgets the user bound to the connection.
    for hook in _disconnect_hooks:
        try:
            hook(request.sid)
        except Exception:
            log.exception("disconnect hook failed")
    with _connections_lock:
        _connections.pop(request.sid, None)
    authority.forget(request.sid)
    retention.forget(request.sid)
    from realtime.limits import buckets

    buckets.forget(request.sid)


def on_sync(payload=None):
    """Ack {"events": [envelopes with seq > since, oldest first], "last_seq", "more"}."""
    if not isinstance(payload, dict):
        message = 'send {"since": <last seq seen, 0 at first>}'
        return errors.payload(422, message, {"since": [message]})
    since, limit = payload.get("since", 0), payload.get("limit", replay.PAGE)
    if isinstance(since, bool) or not isinstance(since, int) or not 0 <= since < 2**63:
        message = "since must be an integer from 0 to 2^63 - 1"
        return errors.payload(422, message, {"since": [message]})
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= replay.MAX_PAGE:
        message = f"limit must be an integer from 1 to {replay.MAX_PAGE}"
        return errors.payload(422, message, {"limit": [message]})
    with _connections_lock:
        user_id = _connections.get(request.sid)
    # Authorised again at replay: the user as they are now (disabled users get nothing).
    user = db.session.get(User, user_id) if user_id else None
    if user is None or not user.active:
        disconnect()
        return errors.payload(401, "the connection's user no longer exists or is disabled", reason="user_disabled")
    if authority.expired(request.sid):
        authority.end(request.sid, "token_expired")
        return errors.payload(401, authority.MESSAGES["token_expired"], reason="token_expired")
    answer = replay.events_since(db.session, user=user, rooms=rooms_for(user), since=since, limit=limit)
    # Paging: the client needs what follows `since`; caught up: what follows the watermark.
    retention.set_floor(request.sid, since if answer["more"] else answer["last_seq"])
    oldest = retention.retained_from(db.session)
    if oldest is not None and since < oldest - 1:
        # Events between `since` and the oldest one kept were deleted by the retention task.
        answer.update(truncated=True, retained_from=oldest)
    return answer


def register() -> None:
    """Bind the handlers to the current Socket.IO server (create_app makes a new one for each app)."""
    socketio.on_event("connect", on_connect)
    socketio.on_event("disconnect", on_disconnect)
    socketio.on_event("sync", on_sync)
