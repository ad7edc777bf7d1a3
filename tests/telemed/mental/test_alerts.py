"""Screening alerts: acknowledgement (one clinician wins), escalation once when nobody acknowledges in time
(the sweeper task, exactly-once under concurrent sweepers on PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from config.extensions import db
from realtime import sweeper
from telemed.mental import alerts as mental_alerts
from tests.factories import MissionFactory, UserFactory
from tests.helpers import assert_error
from tests.telemed.mental.fixtures import (  # noqa: F401
    PHQ9_ITEM9,
    PHQ9_MODERATE,
    events_of,
    make_mh_clinician,
    member,
    screen,
)

BASE = "/api/v1/telemed"
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)


def test_the_task_is_registered_with_the_sweeper(app):
    assert sweeper.TASKS["mental.escalate_alerts"] is mental_alerts.escalate_alerts


def test_alert_is_due_after_the_configured_minutes_and_escalates_once(
    app, screen, member, mission, frozen_clock, make_mh_clinician
):
    make_mh_clinician()
    frozen_clock(T0)
    settings = app.extensions["settings"]
    record = screen(member, "phq9", PHQ9_ITEM9).get_json()
    assert record["alert"]["ack_due_at"] == (T0 + timedelta(minutes=settings.SCREENING_ACK_MINUTES)).isoformat()
    due = T0 + timedelta(minutes=settings.SCREENING_ACK_MINUTES)
    assert mental_alerts.escalate_alerts(db.session, now=due - timedelta(seconds=1), settings=settings) == 0
    assert mental_alerts.escalate_alerts(db.session, now=due, settings=settings) == 1
    assert mental_alerts.escalate_alerts(db.session, now=due + timedelta(hours=1), settings=settings) == 0
    first, again = events_of("screening.alert")
    assert first.data["escalated"] is False and again.data["escalated"] is True
    assert first.rooms == [f"mission:{mission.id}:mental_health"]
    # Wider clinical audience (all the mission's clinicians), still no command and no answers.
    assert again.rooms == [f"mission:{mission.id}:mental_health", f"mission:{mission.id}:role:clinician"]
    assert "answers" not in again.data and "score" not in again.data
    assert again.data["screening_id"] == record["id"]


def test_the_setting_changes_the_deadline(app, client, headers, member, frozen_clock):
    frozen_clock(T0)
    settings = app.extensions["settings"]
    app.extensions["settings"] = settings.with_(SCREENING_ACK_MINUTES=3)
    try:
        resp = client.post(
            f"{BASE}/screenings", json={"instrument": "phq9", "answers": PHQ9_ITEM9}, headers=headers(member)
        )
    finally:
        app.extensions["settings"] = settings
    assert resp.get_json()["alert"]["ack_due_at"] == (T0 + timedelta(minutes=3)).isoformat()
    assert mental_alerts.escalate_alerts(db.session, now=T0 + timedelta(minutes=3), settings=settings) == 1


def test_an_acknowledged_alert_is_not_escalated(app, client, headers, screen, member, make_mh_clinician, frozen_clock):
    frozen_clock(T0)
    record = screen(member, "phq9", PHQ9_ITEM9).get_json()
    clinician = make_mh_clinician()
    resp = client.post(f"{BASE}/screenings/{record['id']}/acknowledge", headers=headers(clinician))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["acknowledged_by"] == clinician.id and body["acknowledged_at"] == T0.isoformat()
    assert body["member"] == {"id": member.id, "display_name": "Private Ada"}
    settings = app.extensions["settings"]
    assert mental_alerts.escalate_alerts(db.session, now=T0 + timedelta(days=1), settings=settings) == 0
    [ack] = events_of("screening.acknowledged")
    assert ack.data["acknowledged_by"] == clinician.id and ack.rooms == [f"mission:{member.mission_id}:mental_health"]


def test_acknowledge_is_once_and_for_mental_health_clinicians_of_the_mission(
    app, client, headers, screen, member, make_user, make_mh_clinician
):
    record = screen(member, "phq9", PHQ9_ITEM9).get_json()
    url = f"{BASE}/screenings/{record['id']}/acknowledge"
    for role in ("coordinator", "medic", "admin", "member"):
        assert_error(client.post(url, headers=headers(make_user(role))), 403)
    assert_error(client.post(url, headers=headers(make_user("clinician"))), 404)
    assert_error(client.post(url, headers=headers(make_mh_clinician(MissionFactory()))), 404)
    first, second = make_mh_clinician(), make_mh_clinician()
    assert client.post(url, headers=headers(first)).status_code == 200
    assert client.post(url, headers=headers(first)).status_code == 200  # idempotent for the same clinician
    body = assert_error(client.post(url, headers=headers(second)), 409)
    assert body["acknowledged_by"] == first.id
    assert len(events_of("screening.acknowledged")) == 1
    unflagged = screen(member, "phq9", PHQ9_MODERATE).get_json()
    assert_error(client.post(f"{BASE}/screenings/{unflagged['id']}/acknowledge", headers=headers(first)), 409)


def test_the_worklist_shows_open_alerts_oldest_first(
    app, client, headers, screen, member, make_user, make_mh_clinician, frozen_clock
):
    clinician = make_mh_clinician()
    frozen_clock(T0)
    first = screen(member, "phq9", PHQ9_ITEM9).get_json()
    frozen_clock(T0 + timedelta(minutes=1))
    second = screen(make_user("member"), "gad7", [3] * 7).get_json()
    items = client.get(f"{BASE}/screening-alerts", headers=headers(clinician)).get_json()["items"]
    assert [i["screening_id"] for i in items] == [first["id"], second["id"]]
    assert items[1]["flags"] == ["severe_symptoms"] and "answers" not in items[0]
    client.post(f"{BASE}/screenings/{first['id']}/acknowledge", headers=headers(clinician))
    items = client.get(f"{BASE}/screening-alerts", headers=headers(clinician)).get_json()["items"]
    assert [i["screening_id"] for i in items] == [second["id"]]
    done = client.get(f"{BASE}/screening-alerts?state=acknowledged", headers=headers(clinician)).get_json()
    assert [i["screening_id"] for i in done["items"]] == [first["id"]]
    assert_error(client.get(f"{BASE}/screening-alerts", headers=headers(make_user("clinician"))), 403)
    assert_error(client.get(f"{BASE}/screening-alerts", headers=headers(make_user("coordinator"))), 403)


def test_concurrent_sweepers_escalate_each_alert_exactly_once(pg_app):
    """Eight sweeper threads (own sessions, own connections) race over five overdue alerts."""
    from telemed.mental.models import Screening, ScreeningAlert

    mission = MissionFactory()
    member = UserFactory(role="member", mission_id=mission.id)
    for _ in range(5):
        record = Screening(
            mission_id=mission.id,
            member_id=member.id,
            entered_by=member.id,
            instrument="phq9",
            answers=PHQ9_ITEM9,
            score=1,
            severity="minimal",
            positive=False,
            criteria={"cut_off": False},
            flags=["suicidal_ideation"],
            recommended_action="same_day_safety_assessment",
            created_at=T0,
        )
        db.session.add(record)
        db.session.flush()
        db.session.add(
            ScreeningAlert(
                screening_id=record.id,
                mission_id=mission.id,
                member_id=member.id,
                flags=["suicidal_ideation"],
                recommended_action="same_day_safety_assessment",
                raised_at=T0,
                ack_due_at=T0 + timedelta(minutes=15),
            )
        )
    db.session.commit()
    settings = pg_app.extensions["settings"]
    barrier = threading.Barrier(8)
    counts, errors = [], []

    def sweep():
        with pg_app.app_context():
            try:
                barrier.wait()
                counts.append(mental_alerts.escalate_alerts(db.session, now=T0 + timedelta(hours=1), settings=settings))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=sweep) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(counts) == 5
    escalations = [e for e in events_of("screening.alert") if e.data["escalated"]]
    assert len(escalations) == 5 and len({e.data["alert_id"] for e in escalations}) == 5
