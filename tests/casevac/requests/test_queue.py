"""The coordinator's queue: order, filters, distance, pagination, GeoJSON, visibility, ETag."""

from datetime import datetime, timedelta, timezone

from casevac.requests.models import PRECEDENCES
from tests.casevac.conftest import body
from tests.factories import MissionFactory
from tests.helpers import assert_error

URL = "/api/v1/casevac/requests"
T0 = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)


def one(precedence):
    return {name: int(name == precedence) for name in PRECEDENCES}


def file_at(client, headers, user, minute, precedence="routine", location=None, frozen_clock=None):
    frozen_clock(T0 + timedelta(minutes=minute))
    response = client.post(
        URL,
        json=body(patients=one(precedence), litter=1, ambulatory=0, location=location or {"lat": 4.36, "lon": 18.55}),
        headers=headers(user),
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_most_urgent_first_then_oldest_with_cursor_pages(client, headers, medic, coordinator, frozen_clock):
    ids = {}
    for minute, precedence in [
        (0, "routine"),
        (1, "urgent"),
        (2, "priority"),
        (3, "urgent"),
        (4, "convenience"),
        (5, "urgent_surgical"),
        (6, "routine"),
    ]:
        ids[minute] = file_at(client, headers, medic, minute, precedence, frozen_clock=frozen_clock)
    expected = [ids[1], ids[3], ids[5], ids[2], ids[0], ids[6], ids[4]]
    first = client.get(f"{URL}?limit=3", headers=headers(coordinator)).get_json()
    assert [r["id"] for r in first["items"]] == expected[:3] and first["next_cursor"]
    second = client.get(f"{URL}?limit=3&cursor={first['next_cursor']}", headers=headers(coordinator)).get_json()
    third = client.get(f"{URL}?limit=3&cursor={second['next_cursor']}", headers=headers(coordinator)).get_json()
    assert [r["id"] for r in second["items"] + third["items"]] == expected[3:]
    assert third["next_cursor"] is None
    assert "casualties" not in first["items"][0] and "history" not in first["items"][0]  # compact entries
    assert_error(client.get(f"{URL}?cursor=garbage", headers=headers(coordinator)), 422, ("cursor",), "query")


def test_filters_status_precedence_active(client, headers, medic, coordinator, frozen_clock):
    urgent = file_at(client, headers, medic, 0, "urgent", frozen_clock=frozen_clock)
    routine = file_at(client, headers, medic, 1, "routine", frozen_clock=frozen_clock)
    cancelled = file_at(client, headers, medic, 2, "priority", frozen_clock=frozen_clock)
    client.post(f"{URL}/{urgent}/status", json={"status": "acknowledged"}, headers=headers(coordinator))
    client.post(f"{URL}/{cancelled}/status", json={"status": "cancelled", "note": "dup"}, headers=headers(coordinator))

    def ids(query):
        response = client.get(f"{URL}?{query}", headers=headers(coordinator))
        assert response.status_code == 200, response.get_json()
        return [r["id"] for r in response.get_json()["items"]]

    assert ids("status=acknowledged") == [urgent]
    assert ids("precedence=routine") == [routine]
    assert ids("active=true") == [urgent, routine]
    assert ids("active=false") == [cancelled]
    assert ids("status=requested&precedence=urgent") == []
    assert_error(client.get(f"{URL}?status=flying", headers=headers(coordinator)), 422, ("status",), "query")
    assert_error(client.get(f"{URL}?precedence=A", headers=headers(coordinator)), 422, ("precedence",), "query")
    assert_error(client.get(f"{URL}?limit=501", headers=headers(coordinator)), 422, ("limit",), "query")


def test_near_and_radius_use_geodesic_distance_across_the_antimeridian(
    client, headers, medic, coordinator, frozen_clock
):
    bangui = file_at(client, headers, medic, 0, location={"lat": 4.3612, "lon": 18.555}, frozen_clock=frozen_clock)
    # 0.25 degrees of longitude at 4 N: about 27.7 km east of Bangui.
    east = file_at(client, headers, medic, 1, location={"lat": 4.3612, "lon": 18.805}, frozen_clock=frozen_clock)
    fiji = file_at(client, headers, medic, 2, location={"lat": -16.5, "lon": 179.95}, frozen_clock=frozen_clock)

    def found(query):
        response = client.get(f"{URL}?{query}", headers=headers(coordinator))
        assert response.status_code == 200, response.get_json()
        return {r["id"]: r["distance_km"] for r in response.get_json()["items"]}

    assert set(found("near=4.3612,18.555&radius_km=10")) == {bangui}
    both = found("near=4.3612,18.555&radius_km=30")
    assert set(both) == {bangui, east} and 27.0 < both[east] < 28.5
    across = found("near=-16.5,-179.95&radius_km=20")  # the other side of the antimeridian
    assert set(across) == {fiji} and 10 < across[fiji] < 11.5
    assert set(found("near=4.3612,18.555")) == {bangui, east}  # default radius 50 km
    assert_error(client.get(f"{URL}?near=95,0", headers=headers(coordinator)), 422, ("near",), "query")
    assert_error(client.get(f"{URL}?near=abc", headers=headers(coordinator)), 422, ("near",), "query")
    assert_error(client.get(f"{URL}?radius_km=5", headers=headers(coordinator)), 422, ("radius_km",), "query")
    assert_error(
        client.get(f"{URL}?near=4,18&radius_km=-1", headers=headers(coordinator)), 422, ("radius_km",), "query"
    )


def test_near_pages_do_not_lose_or_repeat_requests(client, headers, medic, coordinator, frozen_clock):
    inside = []
    for minute in range(9):
        lon = 18.55 if minute % 3 else 25.0  # every third one is far away
        request_id = file_at(
            client, headers, medic, minute, location={"lat": 4.36, "lon": lon}, frozen_clock=frozen_clock
        )
        if minute % 3:
            inside.append(request_id)
    seen, cursor = [], None
    while True:
        query = "near=4.36,18.55&radius_km=5&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"{URL}?{query}", headers=headers(coordinator)).get_json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == inside


def test_geojson_feature_collection(client, headers, medic, coordinator, frozen_clock):
    request_id = file_at(
        client, headers, medic, 0, "urgent", location={"lat": 4.3612, "lon": 18.555}, frozen_clock=frozen_clock
    )
    for response in (
        client.get(f"{URL}?format=geojson", headers=headers(coordinator)),
        client.get(URL, headers={**headers(coordinator), "Accept": "application/geo+json"}),
    ):
        assert response.status_code == 200 and response.mimetype == "application/geo+json"
        collection = response.get_json(force=True)
        assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 1
        feature = collection["features"][0]
        assert feature["type"] == "Feature" and feature["id"] == request_id
        assert feature["geometry"] == {"type": "Point", "coordinates": [18.555, 4.3612]}  # longitude first
        assert feature["properties"]["precedence"] == "urgent" and feature["properties"]["mgrs"]
        assert "location" not in feature["properties"]
        assert response.headers.get("ETag")
    # Plain JSON stays the default.
    assert client.get(URL, headers={**headers(coordinator), "Accept": "*/*"}).mimetype == "application/json"


def test_visibility_medic_sees_own_coordinator_own_mission(
    client, headers, medic, coordinator, make_user, frozen_clock
):
    mine = file_at(client, headers, medic, 0, frozen_clock=frozen_clock)
    other_medic = make_user("medic")
    theirs = file_at(client, headers, other_medic, 1, frozen_clock=frozen_clock)
    foreign_mission = MissionFactory()
    foreign_medic = make_user("medic", foreign_mission)
    foreign = file_at(client, headers, foreign_medic, 2, frozen_clock=frozen_clock)
    foreign_coordinator = make_user("coordinator", foreign_mission)

    def listed(user):
        return [r["id"] for r in client.get(URL, headers=headers(user)).get_json()["items"]]

    assert listed(medic) == [mine] and listed(other_medic) == [theirs]
    assert listed(coordinator) == [mine, theirs] and listed(make_user("admin")) == [mine, theirs]
    assert listed(foreign_coordinator) == [foreign]
    assert_error(client.get(f"{URL}/{theirs}", headers=headers(medic)), 404)
    assert_error(client.get(f"{URL}/{foreign}", headers=headers(medic)), 404)
    assert_error(client.get(f"{URL}/{foreign}", headers=headers(coordinator)), 404)
    assert_error(client.patch(f"{URL}/{foreign}", json={"marking": "smoke"}, headers=headers(coordinator)), 404)
    assert_error(
        client.post(f"{URL}/{foreign}/status", json={"status": "acknowledged"}, headers=headers(coordinator)), 404
    )
    assert_error(client.get(f"{URL}/does-not-exist", headers=headers(coordinator)), 404)
    assert_error(client.get(URL, headers=headers(make_user("clinician"))), 403)
    assert_error(client.get(URL, headers=headers(make_user("member"))), 403)
    assert_error(client.get(URL), 401)
    superadmin = make_user("admin", superadmin=True)
    assert client.get(f"{URL}/{foreign}", headers=headers(superadmin)).status_code == 200


def test_etag_makes_polling_cheap(client, headers, medic, coordinator, frozen_clock):
    request_id = file_at(client, headers, medic, 0, frozen_clock=frozen_clock)
    first = client.get(f"{URL}/{request_id}", headers=headers(coordinator))
    etag = first.headers["ETag"]
    unchanged = client.get(f"{URL}/{request_id}", headers={**headers(coordinator), "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.get_data() == b""
    client.post(f"{URL}/{request_id}/status", json={"status": "acknowledged"}, headers=headers(coordinator))
    changed = client.get(f"{URL}/{request_id}", headers={**headers(coordinator), "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    listing = client.get(URL, headers=headers(coordinator))
    assert (
        client.get(URL, headers={**headers(coordinator), "If-None-Match": listing.headers["ETag"]}).status_code == 304
    )


def test_patch_rules(client, headers, medic, coordinator, frozen_clock):
    request_id = file_at(client, headers, medic, 0, frozen_clock=frozen_clock)
    url = f"{URL}/{request_id}"
    assert_error(client.patch(url, json={"litter": 2}, headers=headers(medic)), 422, ("litter",))
    assert_error(client.patch(url, json={"marking": "flare"}, headers=headers(medic)), 422, ("marking",))
    assert_error(client.patch(url, json={"patients": {"urgent": 3}}, headers=headers(medic)), 422, ("patients",))
    assert_error(client.patch(url, json={"location": {"lat": 1, "lon": 1}}, headers=headers(medic)), 422, ("location",))
    swapped = client.patch(
        url, json={"litter": 0, "ambulatory": 1, "equipment": ["none"], "callsign": "C-9"}, headers=headers(medic)
    ).get_json()
    assert swapped["ambulatory"] == 1 and swapped["equipment"] == [] and swapped["callsign"] == "C-9"
    from casevac.requests import lifecycle
    from casevac.requests.models import CasevacRequest
    from config.extensions import db

    request = db.session.get(CasevacRequest, request_id)
    lifecycle.mark_dispatched(
        db.session,
        actor=coordinator,
        request=request,
        asset_id="a",
        facility_id="f",
        medical_crew=True,
        surgery_at_destination=True,
    )
    db.session.commit()
    assert_error(client.patch(url, json={"marking": "smoke"}, headers=headers(medic)), 409)
    assert client.patch(url, json={"marking": "smoke"}, headers=headers(coordinator)).status_code == 200
    client.post(f"{url}/status", json={"status": "cancelled", "note": "x"}, headers=headers(coordinator))
    assert_error(client.patch(url, json={"marking": "panels"}, headers=headers(coordinator)), 409)
