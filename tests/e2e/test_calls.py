"""A consultation's call across two server processes (bin/serve) sharing PostgreSQL and a private Redis, as
behind nginx's ip_hash: the clinician's Socket.IO connection on one process, the patient's and the
interpreter's on the other. The patient waits, the clinician sees them waiting and admits them, signals
cross both ways, a revocation made through the clinician's process removes the interpreter connected to
the other, call.left follows a leave, and no call state is left in Redis (issue 14)."""

from __future__ import annotations

import time

import pytest
import redis

from tests.e2e.conftest import Listener, deployment, login
from tests.web.conftest import SERVER_ENV
from tests.web.test_clinic import book_mental_health_video, call, me

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    with deployment(tmp_path_factory.mktemp("calls"), 2, **SERVER_ENV) as (servers, redis_server):
        yield servers, redis_server


def _wait(listener: Listener, name: str, predicate=lambda found: bool(found)) -> list[dict]:
    listener.wait_for(lambda _: predicate(listener.events(name)))
    return listener.events(name)


def test_clinician_and_patient_on_two_processes_meet_and_a_revocation_crosses(pair):
    (a, b), redis_server = pair
    psychiatrist, member, medic = (login(a, u) for u in ("demo-psychiatrist", "demo-member", "demo-medic"))
    cid = book_mental_health_video(a, psychiatrist, member, reason="Follow-up call", patient_user=True)["id"]
    consent = call(b, member, "POST", "/telemed/consents", json={"kind": "mental_health", "version": "2026-12-01"})
    assert consent.status_code == 201, consent.text
    invited = call(
        a,
        psychiatrist,
        "POST",
        f"/telemed/consultations/{cid}/participants",
        json={"username": "demo-medic", "part": "interpreter", "language": "fr"},
    )
    assert invited.status_code == 201, invited.text

    def ticket(server, token):
        response = call(server, token, "GET", f"/telemed/consultations/{cid}/join")
        assert response.status_code == 200, response.text
        return response.json()["token"]

    doctor, patient, interpreter = Listener(a.url, psychiatrist), Listener(b.url, member), Listener(b.url, medic)
    try:
        joined = doctor.client.call("call.join", {"consultation_id": cid, "token": ticket(a, psychiatrist)}, timeout=10)
        assert joined["ok"] and joined["admitted"] and joined["waiting"] == [], joined
        doctor_sid = joined["sid"]

        # The patient, on the other process, waits; the clinician sees them waiting and admits them.
        waiting = patient.client.call("call.join", {"consultation_id": cid, "token": ticket(b, member)}, timeout=10)
        assert waiting["ok"] and waiting["admitted"] is False and waiting["peers"] == [], waiting
        patient_sid = waiting["sid"]
        seen = _wait(doctor, "call.waiting", lambda found: any(w["waiting"] for w in found))
        assert [w["sid"] for w in seen[-1]["waiting"]] == [patient_sid]
        assert seen[-1]["waiting"][0]["name"] == "Demo peacekeeper"
        refused = patient.client.call(
            "call.signal", {"consultation_id": cid, "to": doctor_sid, "data": {"x": 1}}, timeout=10
        )
        assert refused["code"] == 403, refused
        assert doctor.client.call("call.admit", {"consultation_id": cid, "sid": patient_sid}, timeout=10)["ok"]
        [admitted] = _wait(patient, "call.admitted")
        assert [p["sid"] for p in admitted["peers"]] == [doctor_sid]
        assert [p["sid"] for p in _wait(doctor, "call.peer")] == [patient_sid]

        # Signals both ways, each from one process to the other.
        offer = {"description": {"type": "offer", "sdp": "v=0"}}
        assert doctor.client.call("call.signal", {"consultation_id": cid, "to": patient_sid, "data": offer})["ok"]
        assert _wait(patient, "call.signal") == [{"consultation_id": cid, "from": doctor_sid, "data": offer}]
        answer = {"description": {"type": "answer", "sdp": "v=0"}}
        assert patient.client.call("call.signal", {"consultation_id": cid, "to": doctor_sid, "data": answer})["ok"]
        assert _wait(doctor, "call.signal") == [{"consultation_id": cid, "from": patient_sid, "data": answer}]

        # The interpreter (process b) is admitted by the clinician (process a), then revoked through a.
        entered = interpreter.client.call("call.join", {"consultation_id": cid, "token": ticket(b, medic)}, timeout=10)
        assert entered["admitted"] is False, entered
        interpreter_sid = entered["sid"]
        _wait(doctor, "call.waiting", lambda found: any(w["sid"] == interpreter_sid for w in found[-1]["waiting"]))
        assert doctor.client.call("call.admit", {"consultation_id": cid, "sid": interpreter_sid}, timeout=10)["ok"]
        [admitted] = _wait(interpreter, "call.admitted")
        assert sorted(p["sid"] for p in admitted["peers"]) == sorted([doctor_sid, patient_sid])
        _wait(patient, "call.peer", lambda found: [p["sid"] for p in found] == [interpreter_sid])
        revoked = call(a, psychiatrist, "DELETE", f"/telemed/consultations/{cid}/participants/{invited.json()['id']}")
        assert revoked.status_code == 200, revoked.text
        [removed] = _wait(interpreter, "call.removed")
        assert removed["consultation_id"] == cid
        for listener in (doctor, patient):
            _wait(listener, "call.left", lambda found: [e["sid"] for e in found] == [interpreter_sid])
        after = interpreter.client.call("call.signal", {"consultation_id": cid, "to": doctor_sid, "data": offer})
        assert after["code"] == 403, after

        # The patient leaves: the clinician, on the other process, is told.
        assert patient.client.call("call.leave", {"consultation_id": cid}, timeout=10)["ok"]
        _wait(doctor, "call.left", lambda found: [e["sid"] for e in found] == [interpreter_sid, patient_sid])
        store = redis.Redis.from_url(redis_server.url)
        patient_id = me(a, member)["id"]  # admitted once: readmitted at once if they come back
        assert set(store.hkeys(f"medevac:call:{cid}")) == {f"m:{doctor_sid}".encode(), f"u:{patient_id}".encode()}
        doctor.close()
        deadline = time.monotonic() + 10  # the server forgets the connection once it sees it close
        while list(store.scan_iter("medevac:call*")):
            assert time.monotonic() < deadline, list(store.scan_iter("medevac:call*"))
            time.sleep(0.05)
    finally:
        for listener in (doctor, patient, interpreter):
            listener.close()
