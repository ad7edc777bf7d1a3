"""The in-browser call's gate (telemed/scheduling/video.py) over Flask-SocketIO test clients: only a participant with
their own valid join token, inside its window, enters; the waiting room until the clinician admits; signals
reach only admitted members; TURN credentials in coturn's REST-API scheme."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import jwt as pyjwt
import pytest
from flask import current_app

from config.extensions import socketio
from telemed.scheduling import call_state, exports
from tests.helpers import auth_headers

API = "/api/v1/telemed"
ALL_DAY = [{"day": d, "start": "00:00", "end": "24:00"} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]


@pytest.fixture
def connect(app):
    clients = []

    def _connect(user):
        token = auth_headers(user)["Authorization"].split(" ", 1)[1]
        client = socketio.test_client(current_app._get_current_object(), auth={"token": token})
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        if client.is_connected():
            client.disconnect()


@pytest.fixture
def call_setup(client, make_clinician, make_user, book, headers):
    clinician = make_clinician(specialties=("psychiatry",), weekly=ALL_DAY)
    patient = make_user("member")
    start = (datetime.now(timezone.utc) + timedelta(minutes=10)).replace(second=0, microsecond=0)
    consultation = book(
        patient, clinician, start, kind="mental_health", patient={"user_id": patient.id}, duration=30
    ).get_json()
    assert "id" in consultation, consultation
    consent = client.post(
        f"{API}/consents", json={"kind": "mental_health", "version": "2026-12-01"}, headers=headers(patient)
    )
    assert consent.status_code == 201, consent.get_json()

    def ticket(user):
        response = client.get(f"{API}/consultations/{consultation['id']}/join", headers=headers(user))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return clinician, patient, consultation, ticket


@pytest.fixture(params=["memory", "redis"])
def call_store(request, app):
    """The call state in the process (no Redis) or in the shared test Redis (as with several processes)."""
    if request.param == "memory":
        yield None
        return
    import redis

    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    prefix = app.extensions["settings"].REDIS_PREFIX
    saved, app.extensions["redis"] = app.extensions.get("redis"), client
    try:
        yield client
    finally:
        app.extensions["redis"] = saved
        for key in client.scan_iter(f"{prefix}:call*"):
            client.delete(key)


def events(client, name):
    return [e["args"][0] for e in client.get_received() if e["name"] == name]


def test_waiting_room_admission_and_signals_only_between_members(app, connect, call_setup, call_store):
    clinician, patient, consultation, ticket = call_setup
    cid = consultation["id"]
    prefix = app.extensions["settings"].REDIS_PREFIX
    doctor = connect(clinician.user)
    ack = doctor.emit("call.join", {"consultation_id": cid, "token": ticket(clinician.user)["token"]}, callback=True)
    assert ack["ok"] and ack["role"] == "clinician" and ack["admitted"] and ack["waiting"] == []
    doctor_sid = ack["sid"]

    member = connect(patient)
    ack = member.emit("call.join", {"consultation_id": cid, "token": ticket(patient)["token"]}, callback=True)
    assert ack["ok"] and ack["admitted"] is False and ack["peers"] == []
    member_sid = ack["sid"]
    if call_store is not None:  # shared, and expiring with the consultation's window (plus the grace)
        assert set(call_store.hkeys(f"{prefix}:call:{cid}")) == {f"m:{doctor_sid}".encode(), f"w:{member_sid}".encode()}
        end = datetime.fromisoformat(consultation["end"]).timestamp()
        ttl = call_store.ttl(f"{prefix}:call:{cid}")
        assert end - time.time() < ttl <= end - time.time() + call_state.GRACE_SECONDS + 2
        assert 0 < call_store.ttl(f"{prefix}:call-sid:{member_sid}") <= ttl
    [waiting] = events(doctor, "call.waiting")
    assert [w["sid"] for w in waiting["waiting"]] == [member_sid]
    # Not admitted yet: no signal, no chat.
    refused = member.emit("call.signal", {"consultation_id": cid, "to": doctor_sid, "data": {"x": 1}}, callback=True)
    assert refused["code"] == 403
    # Only the clinician admits.
    assert member.emit("call.admit", {"consultation_id": cid, "sid": member_sid}, callback=True)["code"] == 403
    assert doctor.emit("call.admit", {"consultation_id": cid, "sid": "nobody"}, callback=True)["code"] == 409
    assert doctor.emit("call.admit", {"consultation_id": cid, "sid": member_sid}, callback=True)["ok"]
    [admitted] = events(member, "call.admitted")
    assert [p["sid"] for p in admitted["peers"]] == [doctor_sid]
    assert [p["sid"] for p in events(doctor, "call.peer")] == [member_sid]

    sent = member.emit(
        "call.signal",
        {"consultation_id": cid, "to": doctor_sid, "data": {"description": {"type": "offer"}}},
        callback=True,
    )
    assert sent["ok"]
    [signal] = events(doctor, "call.signal")
    assert signal == {"consultation_id": cid, "from": member_sid, "data": {"description": {"type": "offer"}}}
    assert member.emit("call.mode", {"consultation_id": cid, "mode": "radio"}, callback=True)["code"] == 422
    assert member.emit("call.mode", {"consultation_id": cid, "mode": "audio"}, callback=True)["ok"]
    assert events(doctor, "call.mode")[0]["mode"] == "audio"
    assert member.emit("call.chat", {"consultation_id": cid, "text": "hello"}, callback=True)["ok"]
    assert events(doctor, "call.chat")[0]["text"] == "hello"

    # The member leaves (disconnects) and comes back: admitted at once this time.
    member.disconnect()
    assert [e["sid"] for e in events(doctor, "call.left")] == [member_sid]
    if call_store is not None:  # a disconnect leaves no entry behind
        assert not call_store.exists(f"{prefix}:call-sid:{member_sid}")
        assert call_store.hget(f"{prefix}:call:{cid}", f"m:{member_sid}") is None
    again = connect(patient)
    ack = again.emit("call.join", {"consultation_id": cid, "token": ticket(patient)["token"]}, callback=True)
    assert ack["admitted"] is True and [p["sid"] for p in ack["peers"]] == [doctor_sid]


def test_no_token_a_stolen_token_an_outsider_or_an_expired_token_is_refused(
    app, connect, call_setup, make_user, headers
):
    clinician, patient, consultation, ticket = call_setup
    cid = consultation["id"]
    outsider = connect(make_user("clinician"))
    assert outsider.emit("call.join", {"consultation_id": cid}, callback=True)["code"] == 401
    assert outsider.emit("call.join", {"consultation_id": cid, "token": "a.b.c"}, callback=True)["code"] == 403
    stolen = ticket(patient)["token"]
    assert outsider.emit("call.join", {"consultation_id": cid, "token": stolen}, callback=True)["code"] == 403
    assert outsider.emit("call.chat", {"consultation_id": cid, "text": "hi"}, callback=True)["code"] == 403
    assert outsider.emit("call.signal", {"consultation_id": cid, "to": "x", "data": {}}, callback=True)["code"] == 403

    # The patient's own token, but signed for a time that is over (or not yet open).
    secret = exports._video_secret(app.extensions["settings"])
    claims = pyjwt.decode(stolen, secret, algorithms=["HS256"], audience="jitsi")
    member = connect(patient)
    now = int(datetime.now(timezone.utc).timestamp())
    for nbf, exp, message in ((now - 7200, now - 3600, "over"), (now + 3600, now + 7200, "opens")):
        token = pyjwt.encode({**claims, "nbf": nbf, "exp": exp}, secret, algorithm="HS256")
        answer = member.emit("call.join", {"consultation_id": cid, "token": token}, callback=True)
        assert answer["code"] == 409 and message in answer["message"], answer
    # A token for another consultation's room.
    token = pyjwt.encode({**claims, "room": "x" * 32}, secret, algorithm="HS256")
    assert member.emit("call.join", {"consultation_id": cid, "token": token}, callback=True)["code"] == 403


def test_join_returns_coturn_rest_api_credentials_per_participant(app, client, call_setup, headers):
    clinician, patient, consultation, ticket = call_setup
    assert ticket(patient)["ice_servers"] == []
    settings = app.extensions["settings"]
    app.extensions["settings"] = replace(
        settings, TURN_URLS="turn:turn.example.org:3478?transport=udp, turns:turn.example.org:5349", TURN_SECRET="s3"
    )
    try:
        mine, theirs = ticket(patient), ticket(clinician.user)
    finally:
        app.extensions["settings"] = settings
    [server] = mine["ice_servers"]
    assert server["urls"] == ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"]
    expiry = int(datetime.fromisoformat(mine["valid_until"]).timestamp())
    assert server["username"] == f"{expiry}:{patient.id}"
    expected = base64.b64encode(hmac.new(b"s3", server["username"].encode(), hashlib.sha1).digest()).decode()
    assert server["credential"] == expected
    assert theirs["ice_servers"][0]["username"] == f"{expiry}:{clinician.user.id}"
    assert "TURN_SECRET" not in settings.public()
    assert mine["ice_transport_policy"] == "all"


def test_turn_policy_relay_reaches_the_browser_only_with_a_turn_server(app, call_setup, monkeypatch):
    from config.settings import ConfigError, Settings

    clinician, patient, consultation, ticket = call_setup
    settings = app.extensions["settings"]
    try:
        app.extensions["settings"] = replace(settings, TURN_POLICY="relay")
        assert ticket(patient)["ice_transport_policy"] == "all"  # no TURN server: relay-only would never connect
        app.extensions["settings"] = replace(
            settings, TURN_POLICY="relay", TURN_URLS="turn:t.example:3478", TURN_SECRET="s"
        )
        assert ticket(patient)["ice_transport_policy"] == "relay"
    finally:
        app.extensions["settings"] = settings
    monkeypatch.setenv("TURN_POLICY", "relayed")
    with pytest.raises(ConfigError, match="TURN_POLICY must be one of all, relay"):
        Settings.from_env()


def test_an_unreachable_call_store_answers_503_not_an_error(app, connect, call_setup):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from tests.e2e.conftest import free_port

    clinician, patient, consultation, ticket = call_setup
    doctor = connect(clinician.user)
    token = ticket(clinician.user)["token"]
    saved = app.extensions.get("redis")
    app.extensions["redis"] = redis.Redis(
        port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )  # nothing listens there
    try:
        ack = doctor.emit("call.join", {"consultation_id": consultation["id"], "token": token}, callback=True)
        assert ack == {"code": 503, "message": "the call service is unavailable; retry shortly"}
        left = doctor.emit("call.leave", {"consultation_id": consultation["id"]}, callback=True)
        assert left["code"] == 503
    finally:
        app.extensions["redis"] = saved
