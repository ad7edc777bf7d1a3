"""GET /api/v1/casevac/metrics against hand-computed figures."""

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from casevac.requests import lifecycle
from casevac.requests.models import PRECEDENCES, CasevacRequest
from config.extensions import db
from tests.casevac.conftest import body
from tests.helpers import assert_error

T = datetime(2026, 11, 28, 6, 0, tzinfo=timezone.utc)
URL = "/api/v1/casevac/requests"


def one(precedence):
    return {name: int(name == precedence) for name in PRECEDENCES}


def run(client, headers, coordinator, frozen_clock, request_id, steps):
    for minute, status in steps:
        frozen_clock(T + timedelta(minutes=minute))
        if status == "dispatched":
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
        else:
            note = {"note": "stood down"} if status == "cancelled" else {}
            response = client.post(
                f"{URL}/{request_id}/status", json={"status": status, **note}, headers=headers(coordinator)
            )
            assert response.status_code == 200, response.get_json()


def test_metrics_figures(client, headers, medic, coordinator, make_user, frozen_clock):
    frozen_clock(T)
    on_time = {
        "time_of_injury": (T - timedelta(minutes=5)).isoformat(),
        "treatments": [{"code": "tourniquet", "at": (T - timedelta(minutes=1)).isoformat()}],
    }
    a = client.post(
        URL, json=body(patients=one("urgent"), litter=1, ambulatory=0, casualties=[on_time]), headers=headers(medic)
    ).get_json()["id"]
    frozen_clock(T + timedelta(minutes=10))
    b = client.post(
        URL,
        json=body(patients=one("priority"), litter=1, ambulatory=0, casualties=[{"zap": "B"}]),
        headers=headers(medic),
    ).get_json()["id"]
    frozen_clock(T + timedelta(minutes=20))
    c = client.post(URL, json=body(patients=one("routine"), litter=1, ambulatory=0), headers=headers(medic)).get_json()[
        "id"
    ]
    run(
        client,
        headers,
        coordinator,
        frozen_clock,
        a,
        [(2, "acknowledged"), (5, "dispatched"), (30, "at_pickup"), (40, "in_transit"), (50, "delivered")],
    )
    run(
        client,
        headers,
        coordinator,
        frozen_clock,
        b,
        [(14, "acknowledged"), (20, "dispatched"), (110, "at_pickup"), (200, "in_transit"), (310, "delivered")],
    )
    run(client, headers, coordinator, frozen_clock, c, [(25, "cancelled")])
    frozen_clock(T + timedelta(hours=8))

    metrics = client.get("/api/v1/casevac/metrics", headers=headers(coordinator)).get_json()
    assert metrics["total"] == 3
    assert metrics["by_precedence"] == {
        "urgent": 1,
        "urgent_surgical": 0,
        "priority": 1,
        "routine": 1,
        "convenience": 0,
    }
    assert metrics["by_status"]["delivered"] == 2 and metrics["by_status"]["cancelled"] == 1
    # Filed -> stage: A 2/5/30/50 min, B 4/10/100/300 min.
    assert metrics["median_minutes"] == {"acknowledged": 3.0, "dispatched": 7.5, "at_pickup": 65.0, "delivered": 175.0}
    # A delivered within 1 h; B after 5 h against 4 h; C cancelled: not counted.
    assert metrics["within_deadline"] == {"counted": 2, "met": 1, "share": 0.5}
    # A's casualty meets every leg; B's (time of injury unknown: its filing) misses every leg.
    for leg in ("first_aid", "resuscitation", "surgery"):
        assert metrics["ten_one_two"][leg] == {"counted": 2, "met": 1, "share": 0.5}, leg

    window = client.get(
        f"/api/v1/casevac/metrics?from={quote((T + timedelta(minutes=15)).isoformat())}"
        f"&to={quote((T + timedelta(hours=1)).isoformat())}",
        headers=headers(coordinator),
    ).get_json()
    assert window["total"] == 1 and window["by_precedence"]["routine"] == 1
    assert window["median_minutes"]["acknowledged"] is None and window["within_deadline"]["share"] is None

    assert_error(
        client.get(
            f"/api/v1/casevac/metrics?from={quote(T.isoformat())}&to={quote(T.isoformat())}",
            headers=headers(coordinator),
        ),
        422,
        ("from",),
        "query",
    )
    assert_error(
        client.get("/api/v1/casevac/metrics?from=yesterday", headers=headers(coordinator)), 422, ("from",), "query"
    )
    assert_error(client.get("/api/v1/casevac/metrics", headers=headers(medic)), 403)
    # Another mission's coordinator sees none of it.
    from tests.factories import MissionFactory

    other = make_user("coordinator", MissionFactory())
    assert client.get("/api/v1/casevac/metrics", headers=headers(other)).get_json()["total"] == 0
