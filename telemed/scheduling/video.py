"""In-browser video for a consultation, out of the box: WebRTC between the participants' browsers,
signalled over the app's own Socket.IO connection (no third-party server). The consultation's join token
(GET .../join, the same JWT a Jitsi bridge would verify) gates the signalling: a connection may enter a
consultation's call only with a valid token issued to its own user for that consultation's room, inside
the token's window (nbf/exp). Media flows peer to peer, or through the mission's TURN server (coturn)
with time-limited credentials derived per participant (coturn's REST-API scheme, `use-auth-secret`).

Waiting room: the consultation's clinician enters directly; any other participant, invitees (interpreter,
second clinician) included, waits until the clinician admits them (and is admitted again at once if they
reconnect). The clinician's page sees who is waiting. A call is a mesh: each member already in the call
offers to each newcomer (a few participants: clinician, patient, interpreter).

An invitee's token names their invitation: it must still be in force when they join and at each later step
(admit, signal, mode, chat); a revoked invitee is refused and removed from the call, and the revocation
itself removes them at once (telemed.scheduling.participants.on_revoke).

Socket events (client -> server, each acknowledged with {"ok": true, ...} or {"code", "message"}):
  call.join {consultation_id, token}      -> {ok, sid, role, admitted, peers: [...], waiting: [...]}
  call.admit {consultation_id, sid}       (the clinician)
  call.signal {consultation_id, to, data} (SDP description or ICE candidate, to one admitted peer)
  call.mode {consultation_id, mode}       (video | audio | chat: the sender's switch, told to the others)
  call.chat {consultation_id, text}       (the chat fallback)
  call.leave {consultation_id}
Server -> client: call.peer, call.left, call.waiting (to the clinician), call.admitted, call.signal,
call.mode, call.chat, call.removed (to a revoked invitee). None of them goes through the event log: they are
live only, like the media.

The call's state (members, waiting room) is in telemed.scheduling.call_state: in Redis when REDIS_URL is
set, shared by every server process, so participants connected to different processes meet; each event
goes to each member's sid, which the Socket.IO message queue delivers on whichever process holds it (no
Socket.IO rooms: they are local to a process). Without Redis, one process holds it (docs/telemed.md).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import time

import jwt as pyjwt
from flask import current_app, request
from redis.exceptions import RedisError
from sqlalchemy import bindparam

from config.extensions import db, socketio
from core import clock
from core.models import User
from realtime import sockets
from telemed.scheduling import call_state, participants
from telemed.scheduling.exports import _video_secret
from telemed.scheduling.models import LIVE_STATUSES, Consultation, Participant

log = logging.getLogger(__name__)

MODES = ("video", "audio", "chat")
MAX_SIGNAL_BYTES = 64 * 1024
MAX_CHAT_CHARS = 2000


def ice_servers(settings, user_id: str, valid_until) -> list[dict]:
    """The ICE servers for one participant: TURN with coturn REST-API credentials when TURN_URLS is set
    (username "<expiry unix time>:<user id>", credential base64(HMAC-SHA1(TURN_SECRET, username))), valid
    until the join token expires; none otherwise (same network: host candidates suffice)."""
    urls = [u.strip() for u in (settings.TURN_URLS or "").split(",") if u.strip()]
    if not urls or not settings.TURN_SECRET:
        return []
    username = f"{int(valid_until.timestamp())}:{user_id}"
    credential = base64.b64encode(hmac.new(settings.TURN_SECRET.encode(), username.encode(), hashlib.sha1).digest())
    return [{"urls": urls, "username": username, "credential": credential.decode()}]


def _refuse(code: int, message: str) -> dict:
    return {"code": code, "message": message}


def _calls():
    return call_state.store_for(current_app)


def _to_members(event: str, data: dict, members, skip_sid: str | None = None) -> None:
    """To each member's connection, whichever process holds it (emits to a sid cross the message queue)."""
    for sid in members:
        if sid != skip_sid:
            socketio.emit(event, data, to=sid)


def _people(which: dict) -> list[dict]:
    return [{"sid": sid, **_public(p)} for sid, p in which.items()]


def _user_of_connection() -> User | None:
    with sockets._connections_lock:
        user_id = sockets._connections.get(request.sid)
    user = db.session.get(User, user_id) if user_id else None
    return user if user is not None and user.active else None


def _payload(payload) -> dict | None:
    return payload if isinstance(payload, dict) and isinstance(payload.get("consultation_id"), str) else None


def on_join(payload=None):
    payload = _payload(payload)
    if payload is None or not isinstance(payload.get("token"), str) or not payload["token"]:
        return _refuse(401, 'send {"consultation_id", "token"}: the token from GET .../consultations/{id}/join')
    user = _user_of_connection()
    if user is None:
        return _refuse(401, "the connection's user no longer exists or is disabled")
    settings = current_app.extensions["settings"]
    try:
        claims = pyjwt.decode(
            payload["token"],
            _video_secret(settings),
            algorithms=["HS256"],
            audience="jitsi",
            issuer=settings.VIDEO_APP_ID,
        )
    except pyjwt.ImmatureSignatureError:
        return _refuse(409, "the call opens 15 minutes before the start")
    except pyjwt.ExpiredSignatureError:
        return _refuse(409, "the consultation's time is over")
    except pyjwt.InvalidTokenError:
        return _refuse(403, "not a valid join token")
    consultation = db.session.get(Consultation, payload["consultation_id"])
    token_user = ((claims.get("context") or {}).get("user") or {}).get("id")
    if consultation is None or claims.get("room") != consultation.room or token_user != user.id:
        # Someone else's token, or a token for another consultation: the same answer.
        return _refuse(403, "this token does not admit you to this consultation")
    if consultation.status not in LIVE_STATUSES:
        return _refuse(409, f"the consultation is {consultation.status}")
    claimed = (claims.get("context") or {}).get("user") or {}
    invitation = claimed.get("invitation")
    if invitation is not None and not _in_force(invitation, consultation.id, user.id):
        return _refuse(403, "your invitation to this consultation was revoked or has ended")
    clinician_user_id = consultation.clinician.user_id
    person = {
        "user_id": user.id,
        "name": user.display_name or user.username,
        "clinician": user.id == clinician_user_id,
        "part": claimed.get("part") or ("clinician" if user.id == clinician_user_id else "participant"),
        "invitation": invitation,
    }
    person["t"] = time.time()  # the order of arrival (the waiting room lists the first one first)
    admitted, call = _calls().join(consultation.id, request.sid, person, float(claims.get("exp") or time.time()))
    others = {sid: p for sid, p in call.members.items() if sid != request.sid}
    peers = _people(others) if admitted else []
    waiting = _people(call.waiting) if person["clinician"] else []
    if admitted:
        _to_members("call.peer", {"consultation_id": consultation.id, "sid": request.sid, **_public(person)}, others)
    else:
        _tell_waiting(consultation.id, call)
    return {
        "ok": True,
        "sid": request.sid,
        "role": "clinician" if person["clinician"] else "participant",
        "admitted": admitted,
        "peers": peers,
        "waiting": waiting,
        "modality": consultation.modality,
    }


def _public(person: dict) -> dict:
    return {"name": person["name"], "clinician": person["clinician"], "part": person["part"]}


# Built once (statement construction costs as much as the query): an invitation's revocation and its
# consultation's end, for this user and consultation.
_INVITATION = (
    db.select(Participant.revoked_at, Consultation.end)
    .join(Consultation, Participant.consultation_id == Consultation.id)
    .where(
        Participant.id == bindparam("invitation"),
        Participant.user_id == bindparam("user"),
        Participant.consultation_id == bindparam("consultation"),
    )
)


def _in_force(invitation_id, consultation_id: str, user_id: str) -> bool:
    """The invitation still holds: not revoked, this user's, this consultation's, the consultation not over.
    One indexed query of two columns (it runs at every step of an invitee)."""
    if not isinstance(invitation_id, str):
        return False
    params = {"invitation": invitation_id, "user": user_id, "consultation": consultation_id}
    row = db.session.execute(_INVITATION, params).first()
    return row is not None and row.revoked_at is None and clock.now() < row.end


def _tell_waiting(consultation_id: str, call: call_state.Snapshot) -> None:
    waiting = _people(call.waiting)
    for sid in call.clinician_sids():
        socketio.emit("call.waiting", {"consultation_id": consultation_id, "waiting": waiting}, to=sid)


def _my_call(payload) -> tuple[dict | None, dict | None]:
    """The caller (their person) if they are a member of the payload's call (an invitee whose invitation
    ended is removed first)."""
    payload = _payload(payload)
    if payload is None:
        return None, None
    person = _calls().member(payload["consultation_id"], request.sid)
    if person is None:
        return None, payload
    if person["invitation"] and not _in_force(person["invitation"], payload["consultation_id"], person["user_id"]):
        _remove(request.sid, payload["consultation_id"])
        return None, payload
    return person, payload


def _remove(sid: str, consultation_id: str) -> None:
    """A revoked invitee out of the call: told (call.removed, on whichever process their connection is), then
    gone like a leave."""
    socketio.emit(
        "call.removed",
        {"consultation_id": consultation_id, "reason": "your invitation was revoked or has ended"},
        to=sid,
    )
    _leave(sid)


def _remove_user(consultation_id: str, user_id: str) -> None:
    """After a revocation: each of the user's connections out of the call (and no readmission on return),
    wherever they are connected. The revocation is committed already: a Redis failure here is logged (the
    invitee's next step is refused anyway, the invitation being checked at each one)."""
    try:
        call = _calls().forget_admission(consultation_id, user_id)
        sids = [sid for sid, p in [*call.members.items(), *call.waiting.items()] if p["user_id"] == user_id]
        for sid in sids:
            _remove(sid, consultation_id)
    except RedisError:
        log.exception("could not remove a revoked invitee from the call")


def on_admit(payload=None):
    me, payload = _my_call(payload)
    if me is None:
        return _refuse(403, "join the consultation's call first")
    if not me["clinician"]:
        return _refuse(403, "only the consultation's clinician admits")
    cid, target = payload["consultation_id"], payload.get("sid")
    person = _calls().snapshot(cid).waiting.get(target) if isinstance(target, str) else None
    if person is None:
        return _refuse(409, "nobody with that id is waiting")
    if person["invitation"] and not _in_force(person["invitation"], cid, person["user_id"]):
        _remove(target, cid)
        return _refuse(409, "that invitee's invitation was revoked or has ended")
    admitted = _calls().admit(cid, target)
    if admitted is None:
        return _refuse(409, "nobody with that id is waiting")
    person, call = admitted
    peers = _people({sid: p for sid, p in call.members.items() if sid != target})
    socketio.emit("call.admitted", {"consultation_id": cid, "peers": peers}, to=target)
    _to_members("call.peer", {"consultation_id": cid, "sid": target, **_public(person)}, call.members, target)
    _tell_waiting(cid, call)
    return {"ok": True}


def on_signal(payload=None):
    me, payload = _my_call(payload)
    if me is None:
        return _refuse(403, "join the consultation's call first (and be admitted)")
    target, data = payload.get("to"), payload.get("data")
    if not isinstance(data, dict) or len(str(data)) > MAX_SIGNAL_BYTES:
        return _refuse(422, "data must be an object (an SDP description or an ICE candidate) under 64 KB")
    cid = payload["consultation_id"]
    if not isinstance(target, str) or target == request.sid or _calls().member(cid, target) is None:
        return _refuse(409, "that peer is not in this call")
    socketio.emit("call.signal", {"consultation_id": cid, "from": request.sid, "data": data}, to=target)
    return {"ok": True}


def on_mode(payload=None):
    me, payload = _my_call(payload)
    if me is None:
        return _refuse(403, "join the consultation's call first")
    if payload.get("mode") not in MODES:
        return _refuse(422, f"mode must be one of {', '.join(MODES)}")
    cid = payload["consultation_id"]
    message = {"consultation_id": cid, "from": request.sid, "mode": payload["mode"]}
    _to_members("call.mode", message, _calls().snapshot(cid).members, request.sid)
    return {"ok": True}


def on_chat(payload=None):
    me, payload = _my_call(payload)
    if me is None:
        return _refuse(403, "join the consultation's call first")
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_CHAT_CHARS:
        return _refuse(422, f"text must be 1 to {MAX_CHAT_CHARS} characters")
    cid = payload["consultation_id"]
    message = {"consultation_id": cid, "from": request.sid, "name": me["name"], "text": text.strip(), "at": time.time()}
    _to_members("call.chat", message, _calls().snapshot(cid).members, request.sid)
    return {"ok": True}


def on_leave(payload=None):
    _leave(request.sid)
    return {"ok": True}


def _leave(sid: str) -> None:
    left = _calls().leave(sid)
    if left is None:
        return
    cid, was_member, call = left
    if was_member:
        _to_members("call.left", {"consultation_id": cid, "sid": sid}, call.members)
    else:
        _tell_waiting(cid, call)


def _guarded(handler):
    """A socket handler answering 503 when the shared call state (Redis) is unreachable, never an error."""

    @functools.wraps(handler)
    def run(payload=None):
        try:
            return handler(payload)
        except RedisError as exc:
            log.warning("the call state (Redis) failed: %s", exc)
            return _refuse(503, "the call service is unavailable; retry shortly")

    return run


def register() -> None:
    socketio.on_event("call.join", _guarded(on_join))
    socketio.on_event("call.admit", _guarded(on_admit))
    socketio.on_event("call.signal", _guarded(on_signal))
    socketio.on_event("call.mode", _guarded(on_mode))
    socketio.on_event("call.chat", _guarded(on_chat))
    socketio.on_event("call.leave", _guarded(on_leave))
    sockets.on_disconnect_hook(_leave)
    participants.on_revoke(_remove_user)
