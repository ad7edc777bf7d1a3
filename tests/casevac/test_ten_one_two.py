"""10-1-2 (DOMAIN.md section 3): states at the boundaries, with a controlled clock."""

from datetime import datetime, timedelta, timezone

import pytest

from casevac import ten_one_two
from tests.casevac.conftest import body

T = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)  # time of injury
US = timedelta(microseconds=1)
URL = "/api/v1/casevac/requests"


@pytest.mark.parametrize("leg,window,margin", [("first_aid", 10, 2), ("resuscitation", 60, 15), ("surgery", 120, 30)])
def test_leg_state_boundaries(leg, window, margin):
    spec = next(item for item in ten_one_two.LEGS if item.name == leg)
    due = T + timedelta(minutes=window)
    assert spec.window == timedelta(minutes=window) and spec.at_risk_before == timedelta(minutes=margin)

    def state(now, met_at=None):
        return ten_one_two.leg_state(due=due, met_at=met_at, now=now, at_risk_before=spec.at_risk_before)

    at_risk_from = due - timedelta(minutes=margin)
    assert state(T) == "pending"
    assert state(at_risk_from - US) == "pending"
    assert state(at_risk_from) == "at_risk"
    assert state(due) == "at_risk"
    assert state(due + US) == "breached"
    assert state(due + timedelta(hours=5), met_at=due) == "met"  # done exactly on time
    assert state(due + timedelta(hours=5), met_at=due + US) == "breached"  # done late
    assert state(T, met_at=T + timedelta(minutes=1)) == "met"


def casualty_timeline(client, headers, user, request_id):
    return client.get(f"{URL}/{request_id}", headers=headers(user)).get_json()["casualties"][0]


def test_timeline_follows_treatment_and_the_lifecycle(client, headers, medic, coordinator, frozen_clock):
    frozen_clock(T + timedelta(minutes=5))
    casualty = {"time_of_injury": T.isoformat(), "mechanism": "gunshot"}
    filed = client.post(URL, json=body(casualties=[casualty]), headers=headers(medic)).get_json()
    request_id, casualty_id = filed["id"], filed["casualties"][0]["id"]
    timeline = filed["casualties"][0]["timeline"]
    assert {leg: v["state"] for leg, v in timeline.items()} == {
        "first_aid": "pending",
        "resuscitation": "pending",
        "surgery": "pending",
    }
    assert timeline["first_aid"]["due"] == (T + timedelta(minutes=10)).isoformat()
    assert timeline["resuscitation"]["due"] == (T + timedelta(hours=1)).isoformat()
    assert timeline["surgery"]["due"] == (T + timedelta(hours=2)).isoformat()
    assert filed["casualties"][0]["clock_from"] == "time_of_injury"

    frozen_clock(T + timedelta(minutes=8))
    assert casualty_timeline(client, headers, medic, request_id)["timeline"]["first_aid"]["state"] == "at_risk"
    # A tourniquet at exactly 10 minutes meets the first leg (recorded a little later).
    frozen_clock(T + timedelta(minutes=11))
    client.patch(
        f"/api/v1/casevac/casualties/{casualty_id}",
        json={"treatments": [{"code": "tourniquet", "at": (T + timedelta(minutes=10)).isoformat()}]},
        headers=headers(medic),
    )
    first_aid = casualty_timeline(client, headers, medic, request_id)["timeline"]["first_aid"]
    assert first_aid == {
        "due": (T + timedelta(minutes=10)).isoformat(),
        "met_at": (T + timedelta(minutes=10)).isoformat(),
        "state": "met",
    }

    from casevac.requests import lifecycle
    from casevac.requests.models import CasevacRequest
    from config.extensions import db

    frozen_clock(T + timedelta(minutes=20))
    client.post(f"{URL}/{request_id}/status", json={"status": "acknowledged"}, headers=headers(coordinator))
    lifecycle.mark_dispatched(
        db.session,
        actor=coordinator,
        request=db.session.get(CasevacRequest, request_id),
        asset_id="a",
        facility_id="f",
        medical_crew=True,
        surgery_at_destination=True,
    )
    db.session.commit()
    frozen_clock(T + timedelta(minutes=45))
    assert casualty_timeline(client, headers, medic, request_id)["timeline"]["resuscitation"]["state"] == "at_risk"
    frozen_clock(T + timedelta(minutes=60))  # the asset reaches the casualty on the hour: met
    client.post(f"{URL}/{request_id}/status", json={"status": "at_pickup"}, headers=headers(coordinator))
    frozen_clock(T + timedelta(minutes=90))
    client.post(f"{URL}/{request_id}/status", json={"status": "in_transit"}, headers=headers(coordinator))
    timeline = casualty_timeline(client, headers, medic, request_id)["timeline"]
    assert timeline["resuscitation"]["state"] == "met"
    assert timeline["surgery"]["state"] == "at_risk"
    frozen_clock(T + timedelta(minutes=120) + US)
    assert casualty_timeline(client, headers, medic, request_id)["timeline"]["surgery"]["state"] == "breached"
    frozen_clock(T + timedelta(minutes=125))
    client.post(f"{URL}/{request_id}/status", json={"status": "delivered"}, headers=headers(coordinator))
    surgery = casualty_timeline(client, headers, medic, request_id)["timeline"]["surgery"]
    assert surgery["state"] == "breached" and surgery["met_at"] == (T + timedelta(minutes=125)).isoformat()


def test_unknown_time_of_injury_runs_from_filing_and_says_so(client, headers, medic, frozen_clock):
    frozen_clock(T)
    filed = client.post(URL, json=body(casualties=[{"zap": "X-1"}]), headers=headers(medic)).get_json()
    casualty = filed["casualties"][0]
    assert casualty["time_of_injury"] is None and casualty["clock_from"] == "filed_at"
    assert casualty["clock_start"] == T.isoformat()
    assert casualty["timeline"]["first_aid"]["due"] == (T + timedelta(minutes=10)).isoformat()


def test_cancelled_request_clocks_stop(client, headers, medic, coordinator, frozen_clock):
    frozen_clock(T)
    filed = client.post(
        URL, json=body(casualties=[{"time_of_injury": T.isoformat()}]), headers=headers(medic)
    ).get_json()
    frozen_clock(T + timedelta(minutes=3))
    client.post(
        f"{URL}/{filed['id']}/status", json={"status": "cancelled", "note": "false alarm"}, headers=headers(coordinator)
    )
    frozen_clock(T + timedelta(hours=6))
    timeline = casualty_timeline(client, headers, coordinator, filed["id"])["timeline"]
    assert {leg: v["state"] for leg, v in timeline.items()} == {
        "first_aid": "pending",
        "resuscitation": "pending",
        "surgery": "pending",
    }


def _evacuate(client, headers, medic, coordinator, frozen_clock, *, medical_crew, surgery_at_destination):
    """A casualty injured at T, dispatched at T+20 min, picked up at T+40, delivered at T+80."""
    from casevac.requests import lifecycle
    from casevac.requests.models import CasevacRequest
    from config.extensions import db

    frozen_clock(T + timedelta(minutes=5))
    filed = client.post(URL, json=body(casualties=[{"time_of_injury": T.isoformat()}]), headers=headers(medic))
    request_id = filed.get_json()["id"]
    frozen_clock(T + timedelta(minutes=20))
    lifecycle.mark_dispatched(
        db.session,
        actor=coordinator,
        request=db.session.get(CasevacRequest, request_id),
        asset_id="a",
        facility_id="f",
        medical_crew=medical_crew,
        surgery_at_destination=surgery_at_destination,
    )
    db.session.commit()
    for minutes, status in ((40, "at_pickup"), (60, "in_transit"), (80, "delivered")):
        frozen_clock(T + timedelta(minutes=minutes))
        assert (
            client.post(f"{URL}/{request_id}/status", json={"status": status}, headers=headers(coordinator)).status_code
            == 200
        )
    return request_id


def test_pickup_without_a_medical_crew_leaves_resuscitation_to_the_facility(
    client, headers, medic, coordinator, frozen_clock
):
    # DOMAIN.md section 3: resuscitation begins when medical staff reach the casualty. A pickup at T+40 by an
    # asset without a medical crew does not meet it; only the delivery at T+80 does, 20 minutes late.
    request_id = _evacuate(
        client, headers, medic, coordinator, frozen_clock, medical_crew=False, surgery_at_destination=True
    )
    frozen_clock(T + timedelta(minutes=50))
    timeline = casualty_timeline(client, headers, medic, request_id)["timeline"]
    assert timeline["resuscitation"] == {
        "due": (T + timedelta(hours=1)).isoformat(),
        "met_at": (T + timedelta(minutes=80)).isoformat(),
        "state": "breached",
    }
    assert timeline["surgery"]["state"] == "met"


def test_pickup_with_a_medical_crew_meets_resuscitation_at_pickup(client, headers, medic, coordinator, frozen_clock):
    request_id = _evacuate(
        client, headers, medic, coordinator, frozen_clock, medical_crew=True, surgery_at_destination=True
    )
    timeline = casualty_timeline(client, headers, medic, request_id)["timeline"]
    assert timeline["resuscitation"]["met_at"] == (T + timedelta(minutes=40)).isoformat()
    assert timeline["resuscitation"]["state"] == "met"


def test_delivery_to_a_facility_without_surgery_leaves_surgery_pending_then_breached(
    client, headers, medic, coordinator, frozen_clock
):
    # A Level 1 without damage-control surgery: the handover at T+80 is not surgery.
    request_id = _evacuate(
        client, headers, medic, coordinator, frozen_clock, medical_crew=True, surgery_at_destination=False
    )
    frozen_clock(T + timedelta(minutes=85))
    surgery = casualty_timeline(client, headers, medic, request_id)["timeline"]["surgery"]
    assert surgery["met_at"] is None and surgery["state"] == "pending"
    frozen_clock(T + timedelta(hours=2) + US)
    assert casualty_timeline(client, headers, medic, request_id)["timeline"]["surgery"]["state"] == "breached"
