"""Per-audience data (realtime.events.publish views): each socket gets the data of the first audience holding
one of its rooms, once, live (log read and Redis announcement) and by `sync`."""

from __future__ import annotations

import pytest

from config.extensions import db
from realtime import audience, events
from realtime.relay import Relay, relay
from tests.realtime.conftest import received, sync_all


@pytest.fixture
def people(mission, make_user):
    coordinator, medic, bystander = make_user("coordinator"), make_user("medic"), make_user("medic")
    # A coordinator who filed: in the coordinators' room and in their own user room.
    filer_coordinator = make_user("coordinator")
    return coordinator, medic, bystander, filer_coordinator


def publish_two_audiences(mission, medic, filer_coordinator, n=1):
    row = events.publish(
        db.session,
        "casevac.updated",
        audience.coordinators(mission.id),
        {"id": "r", "full": True, "n": n},
        mission_id=mission.id,
        views=[([audience.user(medic.id), audience.user(filer_coordinator.id)], {"id": "r", "n": n})],
    )
    db.session.commit()
    return row


def test_each_socket_gets_its_audience_data_once_live_and_by_sync(app, mission, people, connect, fresh_relay):
    coordinator, medic, bystander, filer_coordinator = people
    sockets = {user.id: connect(user) for user in people}
    publish_two_audiences(mission, medic, filer_coordinator)
    relay.run_once()
    live = {user.id: received(sockets[user.id], "casevac.updated") for user in people}
    assert [e["data"] for e in live[coordinator.id]] == [{"id": "r", "full": True, "n": 1}]
    assert [e["data"] for e in live[filer_coordinator.id]] == [{"id": "r", "full": True, "n": 1}]  # once
    assert [e["data"] for e in live[medic.id]] == [{"id": "r", "n": 1}]
    assert live[bystander.id] == []
    assert live[medic.id][0]["seq"] == live[coordinator.id][0]["seq"]
    for user in people:
        replayed, _ = sync_all(sockets[user.id])
        assert [e["data"] for e in replayed] == [e["data"] for e in live[user.id]], user.role


def test_announced_events_keep_their_audiences(app, mission, people, connect, fresh_relay):
    """The Redis fast path (another process's announcement) emits the same per-audience data."""
    coordinator, medic, _, filer_coordinator = people
    c, m = connect(coordinator), connect(medic)
    other = Relay()
    other.start_from_now(db.engine)
    announcements = []
    other.notify_others = announcements.append
    publish_two_audiences(mission, medic, filer_coordinator)
    other.run_once()
    received(c), received(m)  # what the other relay emitted in this shared test server
    relay.on_announced(announcements.pop())
    assert [e["data"] for e in received(c)] == [{"id": "r", "full": True, "n": 1}]
    assert [e["data"] for e in received(m)] == [{"id": "r", "n": 1}]


def test_a_room_belongs_to_one_audience(app, mission):
    rooms = audience.coordinators(mission.id)
    with pytest.raises(ValueError):
        events.publish(db.session, "x", rooms, {}, mission_id=mission.id, views=[(rooms, {})])
    with pytest.raises(ValueError):
        events.publish(db.session, "x", rooms, {}, mission_id=mission.id, views=[([], {})])
    db.session.rollback()
