"""PATCH /casevac/requests/{id} corrects line 1 (location) and line 3 (patients): line 3 = line 5 still
holds; the filing medic before dispatch, a coordinator until a final state; the assigned asset is told."""

from datetime import datetime, timezone

from config.extensions import db
from realtime.models import Event
from tests.casevac.conftest import body
from tests.casevac.fleet.factories import AssetFactory, FacilityFactory
from tests.helpers import assert_error

URL = "/api/v1/casevac/requests"
THREE = {"urgent": 0, "urgent_surgical": 0, "priority": 2, "routine": 1, "convenience": 0}

BANGUI_NOON = datetime(2026, 11, 28, 10, 45, tzinfo=timezone.utc)


def filed(client, headers, medic, **overrides):
    response = client.post(URL, json=body(**overrides), headers=headers(medic))
    assert response.status_code == 201
    return response.get_json()


def test_the_medic_corrects_location_and_patients_before_dispatch(client, headers, medic):
    request = filed(client, headers, medic)
    url = f"{URL}/{request['id']}"
    moved = client.patch(url, json={"location": {"mgrs": "34N BK 34978 87318"}}, headers=headers(medic))
    assert moved.status_code == 200, moved.get_json()
    location = moved.get_json()["location"]
    assert location["source"] == "mgrs" and location["text"] == "34N BK 34978 87318"
    assert location["mgrs"] == "34NBK3497887318"
    recounted = client.patch(url, json={"patients": THREE, "litter": 1, "ambulatory": 2}, headers=headers(medic))
    answer = recounted.get_json()
    assert recounted.status_code == 200 and answer["patients"] == THREE and answer["precedence"] == "priority"
    assert answer["litter"] == 1 and answer["ambulatory"] == 2
    # The deadline follows the new precedence, from the filing time (4 h for priority).
    from datetime import datetime, timedelta

    deadline = datetime.fromisoformat(answer["deadline"])
    assert deadline - datetime.fromisoformat(answer["created_at"]) == timedelta(hours=4)
    event = (
        db.session.execute(db.select(Event).where(Event.type == "casevac.updated").order_by(Event.id.desc()))
        .scalars()
        .first()
    )
    assert event.data["fields"] == ["ambulatory", "litter", "patients", "precedence"]
    # A partial line 3 replaces it whole (the categories left out are 0).
    partial = client.patch(url, json={"patients": {"routine": 3}}, headers=headers(medic)).get_json()
    assert partial["patients"]["priority"] == 0 and partial["precedence"] == "routine"


def test_line_3_must_still_equal_line_5(client, headers, medic):
    request = filed(client, headers, medic)
    url = f"{URL}/{request['id']}"
    assert_error(client.patch(url, json={"patients": THREE}, headers=headers(medic)), 422, ("patients",))
    assert_error(client.patch(url, json={"patients": THREE, "litter": 2}, headers=headers(medic)), 422, ("litter",))
    assert_error(
        client.patch(url, json={"patients": {"urgent": 0}, "litter": 0, "ambulatory": 0}, headers=headers(medic)),
        422,
        ("patients",),
    )
    assert_error(
        client.patch(url, json={"location": {"lat": 95, "lon": 0}}, headers=headers(medic)), 422, ("location", "lat")
    )
    assert_error(
        client.patch(url, json={"location": {"mgrs": "nowhere"}}, headers=headers(medic)), 422, ("location", "mgrs")
    )
    assert_error(client.patch(url, json={"location": {}}, headers=headers(medic)), 422, ("location",))
    with_casualties = filed(client, headers, medic, client_ref="c", casualties=[{"zap": "A"}, {"zap": "B"}])
    assert_error(
        client.patch(
            f"{URL}/{with_casualties['id']}", json={"patients": {"urgent": 1}, "litter": 1}, headers=headers(medic)
        ),
        422,
        ("patients",),
    )
    unchanged = client.get(url, headers=headers(medic)).get_json()
    assert unchanged["patients"] == request["patients"] and unchanged["location"] == request["location"]


def test_after_dispatch_only_the_coordinator_and_the_asset_is_told(client, headers, medic, coordinator, frozen_clock):
    frozen_clock(BANGUI_NOON)  # a daylight dispatch: at night the asset would need the night capability
    request = filed(client, headers, medic)
    url = f"{URL}/{request['id']}"
    asset = AssetFactory(mission_id=medic.mission_id, capabilities=["hoist", "medical_crew"])
    facility = FacilityFactory(mission_id=medic.mission_id)
    assert (
        client.post(
            f"{url}/dispatch", json={"asset_id": asset.id, "facility_id": facility.id}, headers=headers(coordinator)
        ).status_code
        == 200
    )
    assert_error(client.patch(url, json={"location": {"lat": 4.4, "lon": 18.6}}, headers=headers(medic)), 409)
    corrected = client.patch(
        url,
        json={"location": {"lat": 4.4, "lon": 18.6}, "patients": {"urgent": 3}, "litter": 3},
        headers=headers(coordinator),
    )
    assert corrected.status_code == 200, corrected.get_json()
    told = db.session.execute(db.select(Event).where(Event.type == "casevac.corrected")).scalar_one()
    assert f"asset:{asset.id}" in told.rooms and f"mission:{medic.mission_id}:role:coordinator" in told.rooms
    assert told.data["fields"] == ["litter", "location", "patients"] and told.data["lat"] == 4.4
    assert told.data["patients"]["urgent"] == 3 and told.data["asset_id"] == asset.id
    # A change of another line tells the asset nothing.
    client.patch(url, json={"marking": "smoke"}, headers=headers(coordinator))
    assert (
        db.session.execute(
            db.select(db.func.count()).select_from(Event).where(Event.type == "casevac.corrected")
        ).scalar()
        == 1
    )
    assert (
        client.post(
            f"{url}/status", json={"status": "cancelled", "note": "x"}, headers=headers(coordinator)
        ).status_code
        == 200
    )
    assert_error(client.patch(url, json={"patients": {"urgent": 2}, "litter": 2}, headers=headers(coordinator)), 409)


def test_another_medic_cannot(client, headers, medic, make_user):
    request = filed(client, headers, medic)
    assert_error(
        client.patch(
            f"{URL}/{request['id']}", json={"location": {"lat": 4.4, "lon": 18.6}}, headers=headers(make_user("medic"))
        ),
        404,
    )
