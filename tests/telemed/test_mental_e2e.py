"""The real server (bin/serve: migrate, seed, gunicorn) and real Socket.IO clients: a flagged screening's
alert reaches the mental-health clinician's socket and no coordinator's; the sweeper escalates it."""
from __future__ import annotations

import queue
import time

import pytest
import requests
import socketio

pytestmark = pytest.mark.e2e

PASSWORD = "demo-password-123"


def login(server, username: str) -> str:
    resp = requests.post(f"{server.url}/api/v1/auth/login", json={"username": username, "password": PASSWORD},
                         timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


class Listener:
    """A real python-socketio client recording every event it is sent."""

    def __init__(self, server, username: str):
        self.token = login(server, username)
        self.events: queue.Queue = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", lambda event, data: self.events.put((event, data)))
        self.client.connect(server.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=10)

    def wait_for(self, type_: str, timeout: float = 15, **match) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event, envelope = self.events.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            data = envelope.get("data", {})
            if event == type_ and all(data.get(k) == v for k, v in match.items()):
                return envelope
        raise AssertionError(f"no {type_} {match} within {timeout}s")

    def received(self, type_: str) -> list[dict]:
        seen = []
        while True:
            try:
                event, envelope = self.events.get_nowait()
            except queue.Empty:
                return seen
            if event == type_:
                seen.append(envelope)

    def synced(self, type_: str) -> list[dict]:
        ack = self.client.call("sync", {"since": 0}, timeout=10)
        return [e for e in ack["events"] if e["type"] == type_]

    def close(self):
        self.client.disconnect()


def test_alert_reaches_the_mental_health_clinician_and_no_coordinator_then_escalates(start_server):
    server = start_server(SCREENING_ACK_MINUTES="0", SWEEPER_INTERVAL_SECONDS="0.5")
    psychiatrist = Listener(server, "demo-psychiatrist")
    coordinator = Listener(server, "demo-coordinator")
    general = Listener(server, "demo-clinician")
    try:
        member_token = login(server, "demo-member")
        resp = requests.post(f"{server.url}/api/v1/telemed/screenings",
                             json={"instrument": "phq9", "answers": [0, 0, 0, 0, 0, 0, 0, 0, 1]},
                             headers={"Authorization": f"Bearer {member_token}"}, timeout=10)
        assert resp.status_code == 201, resp.text
        screening_id = resp.json()["id"]

        alert = psychiatrist.wait_for("screening.alert", screening_id=screening_id, escalated=False)
        assert alert["data"]["flags"] == ["suicidal_ideation"]
        assert "answers" not in alert["data"] and "score" not in alert["data"]
        # Nobody acknowledges within SCREENING_ACK_MINUTES (0 here): the sweeper escalates it, once,
        # now to every clinician of the mission as well.
        escalated = psychiatrist.wait_for("screening.alert", screening_id=screening_id, escalated=True)
        assert escalated["seq"] > alert["seq"]
        general.wait_for("screening.alert", screening_id=screening_id, escalated=True)
        time.sleep(1.5)  # a few more sweeper rounds: still exactly one escalation

        assert psychiatrist.received("screening.alert") == []
        assert [e["data"]["escalated"] for e in psychiatrist.synced("screening.alert")] == [False, True]
        assert [e["data"]["escalated"] for e in general.synced("screening.alert")] == [True]
        # The coordinator's socket got nothing, live or on replay.
        assert coordinator.received("screening.alert") == []
        assert coordinator.synced("screening.alert") == []
    finally:
        for listener in (psychiatrist, coordinator, general):
            listener.close()
