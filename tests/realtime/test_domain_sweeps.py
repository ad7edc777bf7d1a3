"""The domains' real sweeper tasks under three concurrent runners (three processes' sweepers): each
escalation and each reminder happens once, and reaches its audience live once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import select

from config.extensions import db
from core import clock
from realtime import sweeper
from realtime.models import Event
from realtime.relay import relay
from tests.casevac.conftest import body
from tests.realtime.conftest import received
from tests.telemed.conftest import at, book, make_clinician, now_frozen  # noqa: F401 - fixtures


def run_three_sweepers(app, seconds: float = 0.6) -> None:
    runners = [sweeper.Sweeper() for _ in range(3)]
    threads = [threading.Thread(target=r.loop, args=(app,), kwargs={"interval": 0.005}) for r in runners]
    for t in threads:
        t.start()
    time.sleep(seconds)  # real concurrent runners: they race on every pass for this long
    for r in runners:
        r.stop()
    for t in threads:
        t.join(30)


def types_and_ids(event_type: str) -> list[str]:
    db.session.expire_all()
    return db.session.execute(select(Event.data["id"].as_string()).where(Event.type == event_type)).scalars().all()


def test_escalation_fires_once_with_three_sweepers(app, client, make_user, headers, connect, fresh_relay, frozen_clock):
    settings = app.extensions["settings"]
    medic, coordinator, admin = make_user("medic"), make_user("coordinator"), make_user("admin")
    c, a = connect(coordinator), connect(admin)
    filed_at = clock.now().replace(microsecond=0)
    frozen_clock(filed_at)
    ids = []
    for _ in range(4):
        response = client.post("/api/v1/casevac/requests", json=body(), headers=headers(medic))
        assert response.status_code == 201
        ids.append(response.get_json()["id"])
    frozen_clock(filed_at + timedelta(seconds=settings.ESCALATE_AFTER_SECONDS + 1))

    run_three_sweepers(app)
    relay.run_once()

    assert sorted(types_and_ids("casevac.escalated")) == sorted(ids)
    for client_ in (c, a):  # every coordinator and admin of the mission, once per request
        escalated = received(client_, "casevac.escalated")
        assert sorted(e["data"]["id"] for e in escalated) == sorted(ids)


def test_reminders_are_sent_once_with_three_sweepers(
    app, make_clinician, make_user, book, now_frozen, connect, fresh_relay, frozen_clock
):
    clinician = make_clinician()
    medic = make_user("medic")
    clinician_user = db.session.get(type(medic), clinician.user_id)
    soon = book(medic, clinician, at("2026-12-01T09:00")).get_json()
    later = book(medic, clinician, at("2026-12-01T11:00")).get_json()
    assert "id" in soon and "id" in later
    m, doc = connect(medic), connect(clinician_user)
    minutes = app.extensions["settings"].REMINDER_MINUTES_BEFORE
    frozen_clock(at("2026-12-01T09:00") - timedelta(minutes=minutes) + timedelta(seconds=30))

    run_three_sweepers(app)
    relay.run_once()

    assert types_and_ids("consult.reminder") == [soon["id"]]
    for participant in (m, doc):
        assert [e["data"]["id"] for e in received(participant, "consult.reminder")] == [soon["id"]]
