"""Authority follows the user on open sockets (issue 17, item 1).

A socket is placed in its rooms once, at connect. What the user may see can change while it stays open:
the user is disabled, their role changes, a clinician loses the mental-health specialty, the token
expires. Each of these takes effect at once, on every process of a deployment:

- disabling and a role change (core.service.update_user) publish a `session.revoked` event to the
  user's room in the same transaction. It is in the event log, so every process's relay sees it in seq
  order: it emits it to the user's local sockets and then disconnects them, before any later event.
- the mental-health room is checked again on every emit to it (such events are few): a local socket whose
  user is no longer a mental-health clinician (specialty removed, profile deactivated, role changed, user
  disabled) is disconnected before the event goes out.
- token expiry: each process knows the expiry of its sockets' tokens; the relay disconnects the expired
  ones on every turn (at least every RELAY_POLL_SECONDS) and before every emit; `sync` refuses them.

The client is told why, before the disconnect: an event `session.revoked` with
`{"reason": "user_disabled" | "role_changed" | "access_changed" | "token_expired" | "rate_limited",
"message"}`. token_expired: log in again and reconnect; role_changed and access_changed: reconnect (the rooms
are computed anew); rate_limited: reconnect after a pause, emitting less (realtime.limits); user_disabled:
stop.
"""

from __future__ import annotations

import logging
import threading
import time

from config.extensions import socketio
from core import clock

log = logging.getLogger(__name__)

EVENT = "session.revoked"
NAMESPACE = "/"
MESSAGES = {
    "user_disabled": "your account was disabled",
    "role_changed": "your role changed: reconnect to receive the events of your new role",
    "access_changed": "what you may see changed: reconnect",
    "token_expired": "your token expired: log in again and reconnect",
    "rate_limited": "too many events from this connection: slow down, then reconnect",
}

# sid -> (user id, token expiry as a POSIX time) of this process's sockets.
_sockets: dict[str, tuple[str, float]] = {}
_lock = threading.Lock()


def track(sid: str, user_id: str, expires_at: float) -> None:
    with _lock:
        _sockets[sid] = (user_id, float(expires_at))


def forget(sid: str) -> None:
    with _lock:
        _sockets.pop(sid, None)


def user_of(sid: str) -> str | None:
    with _lock:
        entry = _sockets.get(sid)
    return entry[0] if entry else None


def expired(sid: str, now: float | None = None) -> bool:
    with _lock:
        entry = _sockets.get(sid)
    return entry is not None and entry[1] <= (time.time() if now is None else now)


def sids_of(user_id: str) -> list[str]:
    with _lock:
        return [sid for sid, (uid, _) in _sockets.items() if uid == user_id]


def envelope(reason: str) -> dict:
    """A live-only notice (seq null) for the expiry and the per-emit check."""
    return {
        "seq": None,
        "type": EVENT,
        "at": clock.now().isoformat(),
        "data": {"reason": reason, "message": MESSAGES[reason]},
    }


def end(sid: str, reason: str, *, notice: dict | None = None) -> None:
    """Tell the socket why (unless `notice` was already emitted to it) and disconnect it from this process."""
    forget(sid)
    try:
        if notice is None:
            socketio.emit(EVENT, envelope(reason), to=sid, namespace=NAMESPACE, ignore_queue=True)
        socketio.server.disconnect(sid, namespace=NAMESPACE, ignore_queue=True)
    except Exception:  # noqa: BLE001 - the socket may be gone already
        log.debug("disconnect of %s failed", sid, exc_info=True)


# -- writing: called by the service that changes a user's authority -----------------------------------------


def revoke(session, *, user_id: str, mission_id: str | None, reason: str) -> None:
    """Publish `session.revoked` for a user in the caller's transaction: on commit every process ends the
    user's open sockets (and `sync` replays the notice to a client that was away)."""
    from realtime import audience, events

    events.publish(
        session,
        EVENT,
        [audience.user(user_id)],
        {"user_id": user_id, "reason": reason, "message": MESSAGES[reason]},
        mission_id=mission_id,
    )


def on_access_changed(session, *, user, reason: str) -> None:
    """core.service's ACCESS_CHANGED callback (registered by realtime.setup)."""
    revoke(session, user_id=user.id, mission_id=user.mission_id, reason=reason)


# -- enforcing: called by the relay around every emit -------------------------------------------------------


def expire_due(now: float | None = None) -> int:
    """Disconnect this process's sockets whose token has expired; returns how many."""
    now = time.time() if now is None else now
    with _lock:
        due = [sid for sid, (_, expires_at) in _sockets.items() if expires_at <= now]
    for sid in due:
        end(sid, "token_expired")
    return len(due)


def needs_database(type_: str, rooms) -> bool:
    """Whether emitting this event needs the checks below (the Redis fast path then reads the log instead)."""
    return type_ == EVENT or any(_rechecked(room) for room in rooms)


def _rechecked(room: str) -> bool:
    return room.endswith(":mental_health")


def emit_logged(type_: str, env: dict, rooms: list[str], views: list[dict] | None = None) -> None:
    """The relay's emit of a logged event to this process's sockets, with authority enforced (the relay has
    ended the expired sockets just before the batch: expire_due)."""
    for room in rooms:
        if _rechecked(room):
            _recheck_room(room)
    emit_to_audiences(type_, env, rooms, views)
    if type_ == EVENT:
        user_id = (env.get("data") or {}).get("user_id")
        for sid in sids_of(user_id) if user_id else []:
            end(sid, env["data"].get("reason", "access_changed"), notice=env)


def emit_to_audiences(type_: str, env: dict, rooms: list[str], views: list[dict] | None = None) -> None:
    """Emit to this process's sockets in `rooms`; with `views` (realtime.events.publish), each socket gets the
    data of the first audience holding one of its rooms, and one emit only."""
    if not views:
        socketio.emit(type_, env, to=list(rooms), namespace=NAMESPACE, ignore_queue=True)
        return
    from realtime.events import audience_rooms

    first = audience_rooms(rooms, views)
    served = {sid for room in first for sid in _participants(room)}
    if first:
        socketio.emit(type_, env, to=first, namespace=NAMESPACE, ignore_queue=True)
    for view in views:
        sids = {sid for room in view["rooms"] for sid in _participants(room)} - served
        if sids:
            socketio.emit(type_, {**env, "data": view["data"]}, to=sorted(sids), namespace=NAMESPACE, ignore_queue=True)
        served |= sids


def _participants(room: str) -> list[str]:
    try:
        return [sid for sid, _ in socketio.server.manager.get_participants(NAMESPACE, room)]
    except (KeyError, AttributeError):
        return []


def _recheck_room(room: str) -> None:
    """End every local socket in `room` whose user, as they are now, would not be placed in it."""
    sids = _participants(room)
    if not sids:
        return
    from flask import current_app

    from config.extensions import db
    from core.models import User
    from realtime import sockets

    allowed: dict[str, bool] = {}
    # A context of its own: a fresh session, removed at the end (never the caller's).
    with current_app._get_current_object().app_context():
        for sid in sids:
            user_id = user_of(sid) or sockets._connections.get(sid)
            if user_id not in allowed:
                user = db.session.get(User, user_id) if user_id else None
                allowed[user_id] = bool(user is not None and user.active and room in sockets.rooms_for(user))
            if not allowed[user_id]:
                end(sid, "access_changed")
