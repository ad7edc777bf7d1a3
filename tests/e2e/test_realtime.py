"""Real-time alerts end to end: real gunicorn servers (bin/serve), real python-socketio clients over
websockets, a real Redis of the test's own, PostgreSQL for several processes (issue 5)."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
import socketio
from sqlalchemy import create_engine, insert

from core import clock
from realtime.models import Event
from tests.casevac.conftest import body
from tests.e2e.conftest import deployment, login, start_servers

pytestmark = pytest.mark.e2e

PASSWORD = "demo-password-123"
# Logins per account are rate limited; these tests log in often.
SERVER_ENV = {"LOGIN_LIMIT_PER_ACCOUNT": "1000 per minute", "LOGIN_LIMIT_PER_ADDRESS": "1000 per minute"}


def file_request(server, token: str, **overrides) -> dict:
    response = requests.post(
        f"{server.url}/api/v1/casevac/requests",
        json=body(client_ref=str(uuid.uuid4()), **overrides),
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )
    assert response.status_code == 201, response.text
    return response.json()


def make_user(server, admin_token: str, role: str, mission_id: str) -> str:
    """Create a user through the API (as the demo superadmin) and return their token."""
    username = f"{role}-{uuid.uuid4().hex[:8]}"
    response = requests.post(
        f"{server.url}/api/v1/users",
        json={"username": username, "password": PASSWORD, "role": role, "mission_id": mission_id},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return login(server, username)


def other_mission(server, admin_token: str) -> str:
    response = requests.post(
        f"{server.url}/api/v1/missions",
        json={"code": f"X{uuid.uuid4().hex[:6].upper()}", "name": "Another mission"},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One server as `make run` starts it (SQLite, no Redis), shared by this module's single-process tests."""
    [server] = start_servers(tmp_path_factory.mktemp("single"), 1, **SERVER_ENV)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three processes of one deployment: PostgreSQL, a private Redis, fast sweepers and escalation. The
    relay poll period is long, so only Redis (its messages or its reconnection) delivers across processes
    quickly."""
    with deployment(
        tmp_path_factory.mktemp("cluster"),
        3,
        **SERVER_ENV,
        RELAY_POLL_SECONDS="60",
        ESCALATE_AFTER_SECONDS="3",
        SWEEPER_INTERVAL_SECONDS="0.3",
    ) as (servers, redis_server):
        yield servers, redis_server


def created_ids(listener) -> list[str]:
    return [e["data"]["id"] for e in listener.events("casevac.created")]


def test_connect_refused_without_or_with_a_bad_token_then_rooms_and_live_delivery(single, listen):
    server = single
    with pytest.raises(socketio.exceptions.ConnectionError):
        listen(server, None)
    with pytest.raises(socketio.exceptions.ConnectionError):
        listen(server, "not-a-token")
    with pytest.raises(socketio.exceptions.ConnectionError):
        listen(server, login(server, "demo-medic") + "tampered")

    admin = login(server, "demo-admin")
    me = requests.get(f"{server.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {admin}"}, timeout=5).json()
    mission_id = me["mission_id"]
    coordinator = listen(server, login(server, "demo-coordinator"))
    filing_medic_token = login(server, "demo-medic")
    filing_medic = listen(server, filing_medic_token)
    other_medic = listen(server, make_user(server, admin, "medic", mission_id))
    foreign_mission = other_mission(server, admin)
    foreign_coordinator = listen(server, make_user(server, admin, "coordinator", foreign_mission))

    started = time.monotonic()
    request = file_request(server, filing_medic_token)
    coordinator.wait_for(lambda _: request["id"] in created_ids(coordinator), timeout=5)
    latency = time.monotonic() - started
    [envelope] = coordinator.events("casevac.created")
    assert set(envelope) == {"seq", "type", "at", "data"} and envelope["type"] == "casevac.created"
    assert envelope["data"]["id"] == request["id"] and envelope["data"]["mission_id"] == mission_id
    filing_medic.wait_for(lambda _: request["id"] in created_ids(filing_medic), timeout=5)
    # One payload per audience (issue 16), over a real websocket: the filer gets the state of their request.
    [to_filer] = filing_medic.events("casevac.created")
    assert to_filer["seq"] == envelope["seq"] and to_filer["data"] == {"id": request["id"], "status": "requested"}
    assert "filed_by" not in envelope["data"] and envelope["data"]["precedence"] == request["precedence"]

    # A coordinators-only event written by another program into the same database: the server's relay
    # catches it up (no wake-up reached it), to coordinators only.
    engine = create_engine(server.env["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(
            insert(Event.__table__).values(
                type="asset.updated",
                rooms=[f"mission:{mission_id}:role:coordinator"],
                data={"id": "asset-1"},
                mission_id=mission_id,
                at=clock.now(),
            )
        )
    engine.dispose()
    coordinator.wait_for(lambda _: coordinator.events("asset.updated"), timeout=5)
    time.sleep(1.5)  # a relay poll period: anything misaddressed would have arrived by now
    assert other_medic.events() == [] and foreign_coordinator.events() == []
    assert filing_medic.events("asset.updated") == []
    # Replay is authorised the same way.
    since = envelope["seq"] - 1  # the module's server is shared: look from this test's first event on
    assert [e["type"] for e in filing_medic.sync_all(since)[0]] == ["casevac.created"]
    assert other_medic.sync_all(since)[0] == [] and foreign_coordinator.sync_all(since)[0] == []
    assert [e["type"] for e in coordinator.sync_all(since)[0]] == ["casevac.created", "asset.updated"]
    print(f"filing -> casevac.created at the coordinator: {latency * 1000:.0f} ms")


def test_replay_after_disconnect_and_across_a_server_restart(single, listen):
    server = single
    medic = login(server, "demo-medic")
    coordinator_token = login(server, "demo-coordinator")
    coordinator = listen(server, coordinator_token)
    first = file_request(server, medic)
    [seen] = coordinator.wait_for(lambda events: len(events) >= 1)
    coordinator.close()

    while_away = file_request(server, medic)
    server.restart(MIGRATE=0, SEED_DEMO=0)
    after_restart = file_request(server, medic)

    back = listen(server, coordinator_token)  # the token outlives the restart
    missed, last = back.sync_all(since=seen["seq"])
    assert [e["data"]["id"] for e in missed if e["type"] == "casevac.created"] == [
        while_away["id"],
        after_restart["id"],
    ]
    assert last == missed[-1]["seq"] and all(e["seq"] > seen["seq"] for e in missed)
    assert first["id"] not in [e["data"]["id"] for e in missed]
    # Live again after the restart.
    live = file_request(server, medic)
    back.wait_for(lambda _: live["id"] in created_ids(back))


def test_two_processes_with_redis_deliver_across_processes_and_survive_a_redis_outage(cluster, listen):
    (a, b, _), private_redis = cluster
    medic_token = login(a, "demo-medic")
    on_b = listen(b, login(b, "demo-coordinator"))
    on_a = listen(a, login(a, "demo-coordinator"))

    first = file_request(a, medic_token)
    on_b.wait_for(lambda _: first["id"] in created_ids(on_b), timeout=5)
    on_a.wait_for(lambda _: first["id"] in created_ids(on_a), timeout=5)

    private_redis.stop()
    during = file_request(a, medic_token)  # filing succeeds with Redis down
    assert requests.get(f"{a.url}/readyz", timeout=5).json()["redis"] == "error"
    on_a.wait_for(lambda _: during["id"] in created_ids(on_a), timeout=5)  # same process: still live
    private_redis.start()
    # Process B hears nothing while Redis is down; when its listener is back it catches up from the log.
    on_b.wait_for(lambda _: during["id"] in created_ids(on_b), timeout=20)
    after = file_request(b, medic_token)
    for listener in (on_a, on_b):
        listener.wait_for(lambda _, listener=listener: after["id"] in created_ids(listener), timeout=5)
        seqs = [e["seq"] for e in listener.events()]
        assert len(seqs) == len(set(seqs))  # nothing twice
        assert created_ids(listener) == [first["id"], during["id"], after["id"]]
        replayed = listener.sync_all()[0]
        assert [e["data"]["id"] for e in replayed if e["type"] == "casevac.created"] == [
            first["id"],
            during["id"],
            after["id"],
        ]
        assert len({e["seq"] for e in replayed}) == len(replayed)


def test_escalation_fires_once_with_three_server_processes(cluster, listen):
    servers, _ = cluster
    coordinator = listen(servers[0], login(servers[0], "demo-coordinator"))
    admin = listen(servers[2], login(servers[2], "demo-admin"))
    request = file_request(servers[1], login(servers[1], "demo-medic"))
    assert request["precedence"] in ("urgent", "urgent_surgical")

    def escalations(listener):
        return [e["data"]["id"] for e in listener.events("casevac.escalated") if e["data"]["id"] == request["id"]]

    coordinator.wait_for(lambda _: escalations(coordinator), timeout=15)
    admin.wait_for(lambda _: escalations(admin), timeout=5)
    time.sleep(1.5)  # each process's sweeper passes over the request several more times
    assert escalations(coordinator) == [request["id"]] and escalations(admin) == [request["id"]]
    assert [
        e["data"]["id"]
        for e in coordinator.sync_all()[0]
        if e["type"] == "casevac.escalated" and e["data"]["id"] == request["id"]
    ] == [request["id"]]
