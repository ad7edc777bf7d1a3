"""The sweeper task casevac.escalate (API.md "Escalation"), run directly with a controlled `now`."""

import threading
from datetime import datetime, timedelta, timezone

from casevac.requests import lifecycle
from casevac.requests.models import PRECEDENCES, CasevacRequest
from config.extensions import db
from realtime import sweeper
from realtime.models import Event
from tests.casevac.conftest import body

T = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
URL = "/api/v1/casevac/requests"


def one(precedence):
    return {name: int(name == precedence) for name in PRECEDENCES}


def escalations():
    return (
        db.session.execute(db.select(Event).where(Event.type == "casevac.escalated").order_by(Event.id)).scalars().all()
    )


def test_registered_with_the_sweeper():
    assert sweeper.TASKS["casevac.escalate"] is lifecycle.escalate


def test_unacknowledged_urgent_requests_escalate_once(app, client, headers, medic, coordinator, frozen_clock):
    settings = app.extensions["settings"]
    after = timedelta(seconds=settings.ESCALATE_AFTER_SECONDS)
    frozen_clock(T)
    ids = {}
    for precedence in PRECEDENCES:
        ids[precedence] = client.post(
            URL, json=body(patients=one(precedence), litter=1, ambulatory=0), headers=headers(medic)
        ).get_json()["id"]
    acknowledged = client.post(
        URL, json=body(patients=one("urgent"), litter=1, ambulatory=0), headers=headers(medic)
    ).get_json()["id"]
    client.post(f"{URL}/{acknowledged}/status", json={"status": "acknowledged"}, headers=headers(coordinator))

    assert lifecycle.escalate(db.session, now=T + after - timedelta(seconds=1), settings=settings) == 0
    assert lifecycle.escalate(db.session, now=T + after, settings=settings) == 2
    assert lifecycle.escalate(db.session, now=T + after + timedelta(minutes=5), settings=settings) == 0
    events = escalations()
    assert sorted(e.data["id"] for e in events) == sorted([ids["urgent"], ids["urgent_surgical"]])
    event = events[0]
    assert set(event.rooms) == {
        f"mission:{medic.mission_id}:role:coordinator",
        f"mission:{medic.mission_id}:role:admin",
        f"user:{medic.id}",
    }
    assert event.data["reason"] == "not_acknowledged" and event.data["waited_seconds"] == after.total_seconds()
    escalated = client.get(f"{URL}/{ids['urgent']}", headers=headers(coordinator)).get_json()
    assert escalated["escalated_at"] == (T + after).isoformat()


def test_escalation_honours_the_setting(app, client, headers, medic, frozen_clock):
    settings = app.extensions["settings"].with_(ESCALATE_AFTER_SECONDS=30)
    frozen_clock(T)
    client.post(URL, json=body(), headers=headers(medic))
    assert lifecycle.escalate(db.session, now=T + timedelta(seconds=29), settings=settings) == 0
    assert lifecycle.escalate(db.session, now=T + timedelta(seconds=30), settings=settings) == 1


def test_dispatched_request_escalates_again_when_surgery_is_at_risk(
    app, client, headers, medic, coordinator, frozen_clock
):
    settings = app.extensions["settings"]
    frozen_clock(T + timedelta(minutes=10))
    casualty = {"time_of_injury": T.isoformat(), "precedence": "urgent_surgical"}
    request_id = client.post(URL, json=body(casualties=[casualty]), headers=headers(medic)).get_json()["id"]
    delivered_id = client.post(URL, json=body(casualties=[casualty]), headers=headers(medic)).get_json()["id"]
    for rid in (request_id, delivered_id):
        client.post(f"{URL}/{rid}/status", json={"status": "acknowledged"}, headers=headers(coordinator))
        lifecycle.mark_dispatched(
            db.session,
            actor=coordinator,
            request=db.session.get(CasevacRequest, rid),
            asset_id="a",
            facility_id="f",
            medical_crew=True,
            surgery_at_destination=True,
        )
        db.session.commit()
    for status in ("at_pickup", "in_transit", "delivered"):
        client.post(f"{URL}/{delivered_id}/status", json={"status": status}, headers=headers(coordinator))
    # Surgery is due 2 h after injury; the warning margin is 30 minutes.
    assert lifecycle.escalate(db.session, now=T + timedelta(minutes=90) - timedelta(seconds=1), settings=settings) == 0
    assert lifecycle.escalate(db.session, now=T + timedelta(minutes=90), settings=settings) == 1
    assert lifecycle.escalate(db.session, now=T + timedelta(minutes=100), settings=settings) == 0
    (event,) = escalations()
    assert event.data["id"] == request_id and event.data["reason"] == "surgery_deadline"
    assert event.data["surgery_due"] == (T + timedelta(hours=2)).isoformat()


def test_three_sweepers_escalate_each_request_exactly_once(pg_app, pg_make_user, headers):
    settings = pg_app.extensions["settings"]
    medic = pg_make_user("medic")
    client = pg_app.test_client()
    from core import clock

    clock.freeze(T)
    try:
        for _ in range(6):
            assert client.post(URL, json=body(), headers=headers(medic)).status_code == 201
    finally:
        clock.freeze(None)
    now = T + timedelta(seconds=settings.ESCALATE_AFTER_SECONDS + 1)
    barrier = threading.Barrier(3)
    counts = []

    def sweep():
        with pg_app.app_context():
            barrier.wait()
            counts.append(lifecycle.escalate(db.session, now=now, settings=settings))
            db.session.remove()

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(counts) == 6 and len(counts) == 3
    db.session.expire_all()
    events = escalations()
    assert len(events) == 6 and len({e.data["id"] for e in events}) == 6
