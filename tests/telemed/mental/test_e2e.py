"""The real server (bin/serve: migrate, seed, gunicorn) and real python-socketio clients: a flagged screening's
alert reaches the mental-health clinician's socket and no coordinator's; the sweeper escalates it once."""

from __future__ import annotations

import time

import pytest
import requests

from tests.e2e.conftest import listen, login, start_server  # noqa: F401 - the e2e fixtures

pytestmark = pytest.mark.e2e


def alerts(envelopes: list[dict], screening_id: str) -> list[dict]:
    return [e for e in envelopes if e["type"] == "screening.alert" and e["data"]["screening_id"] == screening_id]


def test_alert_reaches_the_mental_health_clinician_and_no_coordinator_then_escalates_once(start_server, listen):
    # Acknowledgement deadline 0: the sweeper (every 0.5 s) escalates at its next round.
    server = start_server(SCREENING_ACK_MINUTES="0", SWEEPER_INTERVAL_SECONDS="0.5")
    psychiatrist = listen(server, login(server, "demo-psychiatrist"))
    general = listen(server, login(server, "demo-clinician"))  # general medicine: not mental health
    coordinator = listen(server, login(server, "demo-coordinator"))
    member_token = login(server, "demo-member")

    resp = requests.post(
        f"{server.url}/api/v1/telemed/screenings",
        json={"instrument": "phq9", "answers": [0, 0, 0, 0, 0, 0, 0, 0, 1]},
        headers={"Authorization": f"Bearer {member_token}"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["flags"] == ["suicidal_ideation"] and body["clinician_notified"] is True
    screening_id = body["id"]

    received = psychiatrist.wait_for(lambda evs: len(alerts(evs, screening_id)) == 2, timeout=20)
    first, escalated = alerts(received, screening_id)
    assert first["data"]["escalated"] is False and escalated["data"]["escalated"] is True
    assert escalated["seq"] > first["seq"]
    assert first["data"]["flags"] == ["suicidal_ideation"]
    assert first["data"]["recommended_action"] == "same_day_safety_assessment"
    assert not {"answers", "score", "criteria"} & set(first["data"])
    # The escalation widens to every clinician of the mission; the first alert did not reach them.
    general.wait_for(lambda evs: len(alerts(evs, screening_id)) == 1, timeout=20)
    time.sleep(1.5)  # three more sweeper rounds: still exactly one escalation

    assert len(alerts(psychiatrist.events(), screening_id)) == 2
    assert [e["data"]["escalated"] for e in alerts(general.events(), screening_id)] == [True]
    synced, _ = psychiatrist.sync_all()
    assert [e["data"]["escalated"] for e in alerts(synced, screening_id)] == [False, True]
    # The coordinator's socket got nothing, live or on replay, though it is connected and in its rooms.
    assert coordinator.events("screening.alert") == []
    synced, _ = coordinator.sync_all()
    assert [e for e in synced if e["type"].startswith("screening.")] == []

    # A clinician acknowledges: the others' screens are told, by event, to clear it.
    psychiatrist_token = login(server, "demo-psychiatrist")
    ack = requests.post(
        f"{server.url}/api/v1/telemed/screenings/{screening_id}/acknowledge",
        headers={"Authorization": f"Bearer {psychiatrist_token}"},
        timeout=10,
    )
    assert ack.status_code == 200, ack.text
    psychiatrist.wait_for(lambda evs: any(e["type"] == "screening.acknowledged" for e in evs), timeout=20)
    assert coordinator.events("screening.acknowledged") == []
