"""Connect, rooms and sync through the in-process Socket.IO test client, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token

from config.extensions import db, socketio
from core.models import User
from realtime import audience, replay
from realtime.relay import relay
from tests.factories import MissionFactory
from tests.realtime.conftest import received, sync_all, token_of


def _refused(app, auth) -> bool:
    client = socketio.test_client(app, auth=auth)
    try:
        return not client.is_connected()
    finally:
        if client.is_connected():
            client.disconnect()


def test_connect_is_refused_without_a_valid_token(app, make_user):
    medic = make_user("medic")
    assert _refused(app, None)
    assert _refused(app, {})
    assert _refused(app, {"token": ""})
    assert _refused(app, {"token": 123})
    assert _refused(app, {"token": "not-a-jwt"})
    expired = create_access_token(identity=medic.id, expires_delta=timedelta(seconds=-5))
    assert _refused(app, {"token": expired})
    assert not _refused(app, {"token": token_of(medic)})


def test_connect_is_refused_for_a_disabled_user(app, make_user):
    medic = make_user("medic")
    token = token_of(medic)
    medic.active = False
    db.session.commit()
    assert _refused(app, {"token": token})


def test_rooms_follow_role_and_mission_never_the_client(app, mission, make_user, connect, publish, fresh_relay):
    other_mission = MissionFactory()
    coordinator, medic = make_user("coordinator"), make_user("medic")
    other_coordinator = make_user("coordinator", other_mission)
    mission_id, medic_id = mission.id, medic.id
    c, m, o = connect(coordinator), connect(medic), connect(other_coordinator)

    publish(
        "casevac.created",
        audience.coordinators(mission_id) + [audience.user(medic_id)],
        {"n": 1},
        mission_id=mission_id,
    )
    publish("asset.updated", audience.coordinators(mission_id), {"n": 2}, mission_id=mission_id)
    relay.run_once()

    assert [e["data"]["n"] for e in received(c)] == [1, 2]
    assert [e["data"]["n"] for e in received(m)] == [1]  # the filing medic, never coordinators-only events
    assert received(o) == []  # another mission's coordinator gets nothing

    # A client cannot pick a room: there is no join event, and emitting one changes nothing.
    o.emit("join", {"room": audience.mission_role(mission_id, "coordinator")})
    publish("asset.updated", audience.coordinators(mission_id), {"n": 3}, mission_id=mission_id)
    relay.run_once()
    assert received(o) == []
    assert [e["data"]["n"] for e in received(c)] == [3]


def test_live_envelope_has_seq_type_at_data(app, mission, make_user, connect, publish, fresh_relay):
    coordinator = make_user("coordinator")
    c = connect(coordinator)
    publish("casevac.created", audience.coordinators(mission.id), {"id": "r1"}, mission_id=mission.id)
    relay.run_once()
    [packet] = c.get_received()
    assert packet["name"] == "casevac.created"
    envelope = packet["args"][0]
    assert set(envelope) == {"seq", "type", "at", "data"}
    assert envelope["type"] == "casevac.created" and envelope["data"] == {"id": "r1"}
    assert isinstance(envelope["seq"], int) and envelope["seq"] >= 1 and envelope["at"].endswith("+00:00")


def test_sync_replays_what_a_disconnected_client_missed_oldest_first(
    app, mission, make_user, connect, publish, fresh_relay
):
    coordinator = make_user("coordinator")
    mission_id = mission.id
    c = connect(coordinator)
    publish("casevac.created", audience.coordinators(mission_id), {"n": 1}, mission_id=mission_id)
    relay.run_once()
    [seen] = received(c)
    c.disconnect()
    for n in range(2, 6):
        publish("casevac.updated", audience.coordinators(mission_id), {"n": n}, mission_id=mission_id)
    relay.run_once()

    again = connect(coordinator)
    missed, last = sync_all(again, since=seen["seq"])
    assert [e["data"]["n"] for e in missed] == [2, 3, 4, 5]
    assert [e["seq"] for e in missed] == sorted(e["seq"] for e in missed)
    assert last == missed[-1]["seq"]
    # Nothing more after the watermark.
    assert again.emit("sync", {"since": last}, callback=True) == {"events": [], "last_seq": last, "more": False}


def test_sync_pages_with_more(app, mission, make_user, connect, publish, fresh_relay):
    coordinator = make_user("coordinator")
    mission_id = mission.id
    for n in range(7):
        publish("asset.updated", audience.coordinators(mission_id), {"n": n}, mission_id=mission_id)
    relay.run_once()
    c = connect(coordinator)
    first = c.emit("sync", {"since": 0, "limit": 3}, callback=True)
    assert [e["data"]["n"] for e in first["events"]] == [0, 1, 2] and first["more"] is True
    second = c.emit("sync", {"since": first["last_seq"], "limit": 3}, callback=True)
    assert [e["data"]["n"] for e in second["events"]] == [3, 4, 5] and second["more"] is True
    third = c.emit("sync", {"since": second["last_seq"], "limit": 3}, callback=True)
    assert [e["data"]["n"] for e in third["events"]] == [6] and third["more"] is False


def test_sync_is_authorised_again_and_mission_isolated(app, mission, make_user, connect, publish, fresh_relay):
    other_mission = MissionFactory()
    medic, coordinator = make_user("medic"), make_user("coordinator")
    other_medic = make_user("medic", other_mission)
    mission_id, other_id, medic_id = mission.id, other_mission.id, medic.id
    publish(
        "casevac.created",
        audience.coordinators(mission_id) + [audience.user(medic_id)],
        {"n": "mine"},
        mission_id=mission_id,
    )
    publish("asset.updated", audience.coordinators(mission_id), {"n": "coordinators-only"}, mission_id=mission_id)
    publish("casevac.created", audience.coordinators(other_id), {"n": "other mission"}, mission_id=other_id)
    # An event of another mission addressed to this medic's user room is still not theirs.
    publish("casevac.created", [audience.user(medic_id)], {"n": "foreign"}, mission_id=other_id)
    relay.run_once()

    medic_events, medic_last = sync_all(connect(medic))
    assert [e["data"]["n"] for e in medic_events] == ["mine"]
    assert medic_last == 4  # the watermark passes the events that were not for them
    assert [e["data"]["n"] for e in sync_all(connect(coordinator))[0]] == ["mine", "coordinators-only"]
    assert sync_all(connect(other_medic))[0] == []


def test_sync_refuses_a_user_disabled_since_connecting(app, make_user, connect):
    medic = make_user("medic")
    c = connect(medic)
    db.session.get(User, medic.id).active = False
    db.session.commit()
    ack = c.emit("sync", {"since": 0}, callback=True)
    assert ack["code"] == 401 and "events" not in ack
    assert not c.is_connected()


@pytest.mark.parametrize(
    "payload, field",
    [
        ("0", "since"),
        (None, "since"),
        ({"since": "abc"}, "since"),
        ({"since": -1}, "since"),
        ({"since": True}, "since"),
        ({"since": 1.5}, "since"),
        ({"since": 0, "limit": 0}, "limit"),
        ({"since": 0, "limit": replay.MAX_PAGE + 1}, "limit"),
        ({"since": 0, "limit": "10"}, "limit"),
    ],
)
def test_bad_sync_requests_are_answered_with_422_naming_the_field(app, make_user, connect, payload, field):
    c = connect(make_user("coordinator"))
    ack = c.emit("sync", payload, callback=True)
    assert ack["code"] == 422 and field in ack["errors"], ack
    assert c.is_connected()


def test_disconnect_forgets_the_connection(app, make_user, connect):
    from realtime import sockets

    before = sockets.connected_count()
    c = connect(make_user("medic"))
    assert sockets.connected_count() == before + 1
    c.disconnect()
    assert sockets.connected_count() == before
