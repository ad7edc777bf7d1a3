"""Authority follows the user on open sockets (issue 17, item 1), on SQLite and PostgreSQL: disabling, a role
change, the loss of the mental-health specialty and token expiry end the open socket at once, with a reason,
before any later event reaches it; and PATCH /api/v1/users/{id} (the access part)."""

from __future__ import annotations

import time
from datetime import timedelta

from flask_jwt_extended import create_access_token

from config.extensions import db, socketio
from core.models import AuditEntry, User
from realtime import audience
from realtime.relay import relay
from tests.factories import MissionFactory
from tests.helpers import assert_error
from tests.realtime.conftest import received
from tests.telemed.conftest import make_clinician  # noqa: F401 - fixture
from tests.telemed.mental.fixtures import make_mh_clinician  # noqa: F401 - fixture


def _patch(client, actor_headers, user_id, **body):
    return client.patch(f"/api/v1/users/{user_id}", json=body, headers=actor_headers)


def _packets(sock) -> list[dict]:
    """What the test client received, also once the server has disconnected it (get_received refuses then)."""
    packets, sock.queue = list(sock.queue), []
    return packets


def _revocations(sock) -> list[dict]:
    return [p["args"][0]["data"] for p in _packets(sock) if p["name"] == "session.revoked"]


def test_disabling_a_user_stops_their_tokens_and_ends_their_open_socket_at_once(
    app, client, mission, make_user, headers, connect, publish, fresh_relay
):
    admin, coordinator = make_user("admin"), make_user("coordinator")
    coordinator_id, mission_id = coordinator.id, mission.id
    coordinator_headers = headers(coordinator)
    sock = connect(coordinator)
    publish("asset.updated", audience.coordinators(mission_id), {"n": 1}, mission_id=mission_id)
    relay.run_once()
    assert [e["data"]["n"] for e in received(sock, "asset.updated")] == [1]

    response = _patch(client, headers(admin), coordinator_id, active=False)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["active"] is False
    # The same token, the next request: refused.
    assert_error(client.get("/api/v1/auth/me", headers=coordinator_headers), 401)

    publish("asset.updated", audience.coordinators(mission_id), {"n": 2}, mission_id=mission_id)
    relay.run_once()
    assert not sock.is_connected()
    packets = _packets(sock)
    assert [p["name"] for p in packets] == ["session.revoked"]  # the notice, and nothing after it
    assert packets[0]["args"][0]["data"]["reason"] == "user_disabled"
    # A new connection with the old token is refused.
    token = coordinator_headers["Authorization"].split(" ", 1)[1]
    assert not socketio.test_client(app, auth={"token": token}).is_connected()

    [entry] = db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "user.update")).scalars()
    assert entry.subject_id == coordinator_id and entry.detail["active"] is False


def test_a_role_change_ends_the_socket_and_a_reconnect_gets_the_new_rooms(
    app, client, mission, make_user, headers, connect, publish, fresh_relay
):
    admin, user = make_user("admin"), make_user("coordinator")
    user_id, mission_id = user.id, mission.id
    sock = connect(user)
    response = _patch(client, headers(admin), user_id, role="medic")
    assert response.status_code == 200 and response.get_json()["role"] == "medic"
    publish("asset.updated", audience.coordinators(mission_id), {"n": "coordinators only"}, mission_id=mission_id)
    relay.run_once()
    assert not sock.is_connected()
    assert [(p["name"], p["args"][0]["data"].get("reason")) for p in _packets(sock)] == [
        ("session.revoked", "role_changed")
    ]

    again = connect(db.session.get(User, user_id))
    publish("asset.updated", audience.coordinators(mission_id), {"n": "still coordinators only"}, mission_id=mission_id)
    publish("casevac.created", [audience.mission_role(mission_id, "medic")], {"n": "medics"}, mission_id=mission_id)
    relay.run_once()
    assert [e["data"]["n"] for e in received(again)] == ["medics"]


def test_the_revocation_is_in_the_event_log_and_replayed_by_sync(
    app, client, mission, make_user, headers, connect, fresh_relay
):
    """Each process ends its own sockets when its relay reads the revocation from the log (the request does
    nothing to sockets itself), so it reaches the sockets of every process, also with Redis down."""
    from realtime.models import Event

    admin, medic = make_user("admin"), make_user("medic")
    medic_id = medic.id
    sock = connect(medic)
    assert _patch(client, headers(admin), medic_id, active=False).status_code == 200
    assert sock.is_connected()  # nothing done in the request itself: the relay of each process does it
    [row] = db.session.execute(db.select(Event).where(Event.type == "session.revoked")).scalars()
    assert row.rooms == [audience.user(medic_id)] and row.data["reason"] == "user_disabled"
    relay.run_once()
    assert not sock.is_connected() and _revocations(sock)[0]["reason"] == "user_disabled"


def test_losing_the_mental_health_specialty_ends_the_socket_before_the_next_alert(
    app, client, make_user, make_mh_clinician, headers, connect, publish, fresh_relay
):
    from telemed.scheduling.models import Clinician

    psychiatrist, colleague = make_mh_clinician(), make_mh_clinician()
    admin = make_user("admin")
    mission_id = psychiatrist.mission_id
    lost, kept = connect(psychiatrist), connect(colleague)
    profile = db.session.execute(db.select(Clinician).where(Clinician.user_id == psychiatrist.id)).scalar_one()
    response = client.patch(
        f"/api/v1/telemed/clinicians/{profile.id}",
        json={"specialties": ["general_medicine"], "kinds": ["diagnostic"]},
        headers=headers(admin),
    )
    assert response.status_code == 200, response.get_data(as_text=True)

    publish(
        "screening.alert",
        [audience.mission_mental_health(mission_id)],
        {"member": "Private Ada"},
        mission_id=mission_id,
    )
    relay.run_once()
    assert not lost.is_connected()
    assert [(p["name"], p["args"][0]["data"].get("reason")) for p in _packets(lost)] == [
        ("session.revoked", "access_changed")
    ]
    assert [e["data"] for e in received(kept, "screening.alert")] == [{"member": "Private Ada"}]
    assert kept.is_connected()


def test_an_expired_token_ends_the_socket_and_sync_refuses_it(app, mission, make_user, connect, publish, fresh_relay):
    coordinator = make_user("coordinator")
    mission_id = mission.id
    short = create_access_token(identity=coordinator.id, expires_delta=timedelta(seconds=2))
    sock = socketio.test_client(app, auth={"token": short})
    other = connect(make_user("coordinator"))
    assert sock.is_connected()
    assert sock.emit("sync", {"since": 0}, callback=True)["more"] is False
    time.sleep(2.2)
    expired_sync = sock.emit("sync", {"since": 0}, callback=True)
    assert expired_sync["code"] == 401 and expired_sync["reason"] == "token_expired" and "events" not in expired_sync
    assert not sock.is_connected()

    # Live: the relay ends an expired socket before it emits.
    late = socketio.test_client(
        app, auth={"token": create_access_token(identity=coordinator.id, expires_delta=timedelta(seconds=2))}
    )
    assert late.is_connected()
    time.sleep(2.2)
    publish("asset.updated", audience.coordinators(mission_id), {"n": 1}, mission_id=mission_id)
    relay.run_once()
    assert [p["name"] for p in _packets(late)] == ["session.revoked"]
    assert not late.is_connected()
    assert [e["data"]["n"] for e in received(other)] == [1]


def test_an_idle_relay_turn_ends_expired_sockets(app, make_user, fresh_relay):
    coordinator = make_user("coordinator")
    sock = socketio.test_client(
        app, auth={"token": create_access_token(identity=coordinator.id, expires_delta=timedelta(seconds=1))}
    )
    assert sock.is_connected()
    time.sleep(1.2)
    relay.run_once()  # no event at all
    assert not sock.is_connected() and _revocations(sock)[0]["reason"] == "token_expired"


def test_patch_user_access_rules(app, client, mission, make_user, headers):
    admin, medic, coordinator = make_user("admin"), make_user("medic"), make_user("coordinator")
    other_admin = make_user("admin", MissionFactory())
    superadmin = make_user("admin", superadmin=True)
    admin_id, medic_id, superadmin_id = admin.id, medic.id, superadmin.id
    assert_error(_patch(client, headers(coordinator), medic_id, active=False), 403)
    assert_error(_patch(client, headers(medic), medic_id, role="admin"), 403)
    assert_error(_patch(client, headers(other_admin), medic_id, active=False), 404)  # another mission's user
    assert_error(_patch(client, headers(admin), "no-such-user", active=False), 404)
    assert_error(_patch(client, headers(admin), superadmin_id, active=False), 403)
    assert_error(_patch(client, headers(admin), admin_id, active=False), 409)
    assert_error(_patch(client, headers(admin), admin_id, role="medic"), 409)
    assert_error(_patch(client, headers(admin), medic_id, role="general"), 422, ("role",))
    assert_error(_patch(client, headers(admin), medic_id, active="no"), 422, ("active",))
    assert_error(_patch(client, headers(admin), medic_id, display_name="a\x00b"), 422, ("display_name",))
    assert_error(_patch(client, headers(admin), medic_id, display_name="\ud800"), 422, ("display_name",))
    ok = _patch(client, headers(admin), medic_id, display_name="Medic One")
    assert ok.status_code == 200 and ok.get_json()["display_name"] == "Medic One"
    assert _patch(client, headers(superadmin), medic_id, active=False).get_json()["active"] is False
    again = _patch(client, headers(admin), medic_id, active=True)
    assert again.status_code == 200 and again.get_json()["active"] is True
    assert client.get("/api/v1/auth/me", headers=headers(db.session.get(User, medic_id))).status_code == 200
