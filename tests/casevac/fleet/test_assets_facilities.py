"""Assets and facilities over HTTP: CRUD, validation, roles and missions, events, positions, device tokens."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from casevac.fleet import positions
from casevac.fleet.models import Asset, AssetPosition
from casevac.fleet.positions import LiveStore
from config.extensions import db
from realtime.models import Event
from tests.casevac.fleet.factories import ASSET_BODY, FACILITY_BODY, AssetFactory, FacilityFactory
from tests.factories import MissionFactory
from tests.helpers import assert_error

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")


def events_of(type_: str) -> list[Event]:
    return list(db.session.execute(db.select(Event).where(Event.type == type_).order_by(Event.id)).scalars())


# ---------------------------------------------------------------- assets


def test_create_get_list_and_patch_an_asset(client, coordinator, headers):
    created = client.post("/api/v1/assets", json=ASSET_BODY, headers=headers(coordinator))
    assert created.status_code == 201, created.get_json()
    asset = created.get_json()
    assert {k: asset[k] for k in ASSET_BODY} == {**ASSET_BODY, "cruise_speed_kmh": 250.0}
    assert asset["status"] == "available" and asset["position"] is None and asset["has_device_token"] is False
    assert asset["mission_id"] == coordinator.mission_id and "device_token_hash" not in asset

    got = client.get(f"/api/v1/assets/{asset['id']}", headers=headers(coordinator)).get_json()
    assert got["callsign"] == "PUMA-1"
    listed = client.get("/api/v1/assets?capability=hoist", headers=headers(coordinator)).get_json()
    assert [a["id"] for a in listed["items"]] == [asset["id"]] and listed["next_cursor"] is None
    assert client.get("/api/v1/assets?capability=armored", headers=headers(coordinator)).get_json()["items"] == []

    patched = client.patch(
        f"/api/v1/assets/{asset['id']}",
        json={"status": "maintenance", "readiness_minutes": 30},
        headers=headers(coordinator),
    )
    assert patched.status_code == 200
    assert patched.get_json()["status"] == "maintenance" and patched.get_json()["readiness_minutes"] == 30
    kinds = [e.data["status"] for e in events_of("asset.updated")]
    assert kinds == ["available", "maintenance"]
    assert all(e.rooms == [f"mission:{coordinator.mission_id}:role:coordinator"] for e in events_of("asset.updated"))


def test_asset_list_is_paginated_and_filtered(client, coordinator, headers):
    for i in range(5):
        AssetFactory(
            mission_id=coordinator.mission_id,
            callsign=f"AMB-{i}",
            kind="ground_ambulance",
            status="available" if i % 2 == 0 else "offline",
        )
    AssetFactory(callsign="OTHER-MISSION")
    first = client.get("/api/v1/assets?limit=2", headers=headers(coordinator)).get_json()
    second = client.get(f"/api/v1/assets?limit=2&cursor={first['next_cursor']}", headers=headers(coordinator))
    third = client.get(
        f"/api/v1/assets?limit=2&cursor={second.get_json()['next_cursor']}", headers=headers(coordinator)
    ).get_json()
    names = [a["callsign"] for page in (first, second.get_json(), third) for a in page["items"]]
    assert names == ["AMB-0", "AMB-1", "AMB-2", "AMB-3", "AMB-4"] and third["next_cursor"] is None
    offline = client.get("/api/v1/assets?status=offline", headers=headers(coordinator)).get_json()["items"]
    assert [a["callsign"] for a in offline] == ["AMB-1", "AMB-3"]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"kind": "submarine"}, ("kind",)),
        ({"capabilities": ["hoist", "teleport"]}, ("capabilities",)),
        ({"capabilities": ["hoist", "hoist"]}, ("capabilities",)),
        ({"litter_capacity": -1}, ("litter_capacity",)),
        ({"litter_capacity": 0, "ambulatory_capacity": 0}, ("litter_capacity",)),
        ({"cruise_speed_kmh": 0}, ("cruise_speed_kmh",)),
        ({"cruise_speed_kmh": "fast"}, ("cruise_speed_kmh",)),
        ({"readiness_minutes": -5}, ("readiness_minutes",)),
        ({"status": "tasked"}, ("status",)),
        ({"base": {"lat": 91, "lon": 18}}, ("base", "lat")),
        ({"base": {"lat": 4, "lon": -180.5}}, ("base", "lon")),
        ({"base": {"lat": "NaN", "lon": 18}}, ("base", "lat")),
        ({"base": None}, ("base",)),
        ({"callsign": ""}, ("callsign",)),
        ({"callsign": "HELO\u00001"}, ("callsign",)),
        ({"name": "Puma \ud800"}, ("name",)),
    ],
)
def test_bad_asset_fields_are_422_naming_the_field(client, coordinator, headers, change, field):
    body = {**ASSET_BODY, **change}
    response = client.post("/api/v1/assets", json=body, headers=headers(coordinator))
    assert_error(response, 422, field)


def test_bad_values_name_the_allowed_ones(client, coordinator, headers):
    body = assert_error(
        client.post("/api/v1/assets", json={**ASSET_BODY, "kind": "boat"}, headers=headers(coordinator)), 422, ("kind",)
    )
    assert (
        "rotary_wing" in body["errors"]["json"]["kind"][0] and "ground_ambulance" in body["errors"]["json"]["kind"][0]
    )


def test_a_patched_base_or_location_needs_both_coordinates(client, coordinator, headers):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    facility = FacilityFactory(mission_id=coordinator.mission_id)
    h = headers(coordinator)
    assert_error(client.patch(f"/api/v1/assets/{asset.id}", json={"base": {"lat": 4}}, headers=h), 422, ("base", "lon"))
    assert_error(
        client.patch(f"/api/v1/facilities/{facility.id}", json={"location": {"lon": 18}}, headers=h),
        422,
        ("location", "lat"),
    )
    moved = client.patch(f"/api/v1/facilities/{facility.id}", json={"location": {"lat": 5.1, "lon": 18.2}}, headers=h)
    assert moved.status_code == 200 and moved.get_json()["location"] == {"lat": 5.1, "lon": 18.2}


def test_duplicate_callsign_is_409(client, coordinator, headers):
    assert client.post("/api/v1/assets", json=ASSET_BODY, headers=headers(coordinator)).status_code == 201
    assert_error(client.post("/api/v1/assets", json=ASSET_BODY, headers=headers(coordinator)), 409)


def test_roles_and_missions(client, make_user, headers):
    medic, coordinator = make_user("medic"), make_user("coordinator")
    member = make_user("member")
    assert_error(client.post("/api/v1/assets", json=ASSET_BODY, headers=headers(medic)), 403)
    assert_error(client.get("/api/v1/assets", headers=headers(member)), 403)
    assert_error(client.get("/api/v1/assets"), 401)
    other = AssetFactory(mission_id=MissionFactory().id)
    other_facility = FacilityFactory(mission_id=other.mission_id)
    for url in (
        f"/api/v1/assets/{other.id}",
        f"/api/v1/facilities/{other_facility.id}",
        f"/api/v1/assets/{other.id}/positions",
        "/api/v1/assets/no-such-id",
    ):
        assert_error(client.get(url, headers=headers(coordinator)), 404)
    assert_error(
        client.patch(f"/api/v1/assets/{other.id}", json={"status": "offline"}, headers=headers(coordinator)), 404
    )
    assert_error(
        client.post(f"/api/v1/assets/{other.id}/positions", json={"lat": 4, "lon": 18}, headers=headers(coordinator)),
        404,
    )
    assert_error(client.post(f"/api/v1/assets/{other.id}/device-token", headers=headers(coordinator)), 404)
    assert db.session.get(Asset, other.id).status == "available"


def test_a_tasked_asset_keeps_its_status_until_its_request_ends(client, coordinator, headers):
    asset = AssetFactory(mission_id=coordinator.mission_id, status="tasked", tasked_request_id="r-1")
    body = assert_error(
        client.patch(f"/api/v1/assets/{asset.id}", json={"status": "available"}, headers=headers(coordinator)), 409
    )
    assert body["tasked_request_id"] == "r-1"
    # Other fields of a tasked asset may still change.
    ok = client.patch(f"/api/v1/assets/{asset.id}", json={"readiness_minutes": 5}, headers=headers(coordinator))
    assert ok.status_code == 200 and ok.get_json()["status"] == "tasked"


# ---------------------------------------------------------------- facilities


def test_facility_crud_and_availability_events(client, coordinator, headers):
    created = client.post("/api/v1/facilities", json=FACILITY_BODY, headers=headers(coordinator))
    assert created.status_code == 201
    facility = created.get_json()
    assert {k: facility[k] for k in FACILITY_BODY} == FACILITY_BODY
    changed = client.patch(
        f"/api/v1/facilities/{facility['id']}",
        json={"status": "diverting", "beds_available": 0},
        headers=headers(coordinator),
    )
    assert changed.status_code == 200 and changed.get_json()["status"] == "diverting"
    published = events_of("facility.updated")
    assert [(e.data["status"], e.data["beds_available"]) for e in published] == [("normal", 12), ("diverting", 0)]
    listed = client.get("/api/v1/facilities?capability=icu&status=diverting", headers=headers(coordinator))
    assert [f["id"] for f in listed.get_json()["items"]] == [facility["id"]]
    assert client.get("/api/v1/facilities?level=3", headers=headers(coordinator)).get_json()["items"] == []


@pytest.mark.parametrize(
    "change, field",
    [
        ({"level": "5"}, ("level",)),
        ({"level": 2}, ("level",)),
        ({"status": "open"}, ("status",)),
        ({"capabilities": ["spa"]}, ("capabilities",)),
        ({"beds_available": -1}, ("beds_available",)),
        ({"location": {"lat": 4}}, ("location", "lon")),
        ({"location": {"lat": -90.01, "lon": 0}}, ("location", "lat")),
        ({"location": "4.3,18.5"}, ("location",)),
        ({"name": "Level 2\u0000"}, ("name",)),
    ],
)
def test_bad_facility_fields_are_422(client, coordinator, headers, change, field):
    assert_error(
        client.post("/api/v1/facilities", json={**FACILITY_BODY, **change}, headers=headers(coordinator)), 422, field
    )


# ---------------------------------------------------------------- positions and device tokens


def _report(client, asset_id, hdrs, **fix):
    return client.post(f"/api/v1/assets/{asset_id}/positions", json=fix, headers=hdrs)


def test_positions_keep_the_newest_fix_and_the_whole_track(client, coordinator, headers, frozen_clock):
    frozen_clock(T0)
    asset = AssetFactory(mission_id=coordinator.mission_id)
    h = headers(coordinator)
    first = _report(
        client,
        asset.id,
        h,
        lat=4.40,
        lon=18.50,
        heading=90,
        speed_kmh=200,
        reported_at=(T0 - timedelta(minutes=1)).isoformat(),
    )
    assert first.status_code == 202 and first.get_json()["latest"] is True
    late = _report(client, asset.id, h, lat=4.10, lon=18.10, reported_at=(T0 - timedelta(minutes=5)).isoformat())
    assert late.get_json()["latest"] is False  # an older fix arriving late joins the track only
    now_fix = _report(client, asset.id, h, lat=4.45, lon=18.60)
    assert now_fix.get_json()["reported_at"] == T0.isoformat()
    shown = client.get(f"/api/v1/assets/{asset.id}", headers=h).get_json()["position"]
    assert (shown["lat"], shown["lon"]) == (4.45, 18.60)
    track = client.get(f"/api/v1/assets/{asset.id}/positions", headers=h).get_json()
    assert [(p["lat"], p["lon"]) for p in track["items"]] == [(4.10, 18.10), (4.40, 18.50), (4.45, 18.60)]
    assert track["items"][1]["heading"] == 90 and track["items"][1]["source"] == "coordinator"


@pytest.mark.parametrize(
    "fix, field",
    [
        ({"lat": 90.5, "lon": 0}, ("lat",)),
        ({"lat": 0, "lon": 181}, ("lon",)),
        ({"lat": "north", "lon": 0}, ("lat",)),
        ({"lon": 18}, ("lat",)),
        ({"lat": 4, "lon": 18, "heading": 360}, ("heading",)),
        ({"lat": 4, "lon": 18, "speed_kmh": -3}, ("speed_kmh",)),
        ({"lat": 4, "lon": 18, "reported_at": "yesterday"}, ("reported_at",)),
        ({"lat": 4, "lon": 18, "reported_at": "2099-01-01T00:00:00Z"}, ("reported_at",)),
    ],
)
def test_bad_positions_are_422(client, coordinator, headers, fix, field):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    assert_error(_report(client, asset.id, headers(coordinator), **fix), 422, field)


def test_a_device_token_reports_its_own_asset_only_and_reads_nothing(client, coordinator, headers):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    other = AssetFactory(mission_id=coordinator.mission_id)
    issued = client.post(f"/api/v1/assets/{asset.id}/device-token", headers=headers(coordinator))
    assert issued.status_code == 201
    token = issued.get_json()["device_token"]
    stored = db.session.get(Asset, asset.id)
    db.session.refresh(stored)
    assert stored.device_token_hash and token not in stored.device_token_hash
    device = {"Authorization": f"Device {token}"}

    ok = _report(client, asset.id, device, lat=4.5, lon=18.4)
    assert ok.status_code == 202
    assert_error(_report(client, other.id, device, lat=4.5, lon=18.4), 403)
    assert db.session.execute(db.select(AssetPosition).where(AssetPosition.asset_id == other.id)).first() is None
    for url in (
        f"/api/v1/assets/{asset.id}",
        "/api/v1/assets",
        f"/api/v1/assets/{asset.id}/positions",
        "/api/v1/facilities",
        "/api/v1/auth/me",
    ):
        assert_error(client.get(url, headers=device), 401)
        assert_error(client.get(url, headers={"Authorization": f"Bearer {token}"}), 401)
    assert_error(client.patch(f"/api/v1/assets/{asset.id}", json={"status": "offline"}, headers=device), 401)
    assert_error(client.post(f"/api/v1/assets/{asset.id}/device-token", headers=device), 401)
    # Forged, truncated and rotated tokens are refused.
    for bad in (f"{asset.id}.forged", token[:-2], "", f"{other.id}.{token.split('.', 1)[1]}"):
        assert_error(_report(client, asset.id, {"Authorization": f"Device {bad}"}, lat=4.5, lon=18.4), 401)
    client.post(f"/api/v1/assets/{asset.id}/device-token", headers=headers(coordinator))
    assert_error(_report(client, asset.id, device, lat=4.5, lon=18.4), 401)
    # The hash never leaves the server.
    listed = client.get("/api/v1/assets", headers=headers(coordinator)).get_data(as_text=True)
    assert stored.device_token_hash not in listed and listed.count('"has_device_token": true') <= 1


def test_revoked_device_token_is_refused(client, coordinator, headers):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    token = client.post(f"/api/v1/assets/{asset.id}/device-token", headers=headers(coordinator)).get_json()[
        "device_token"
    ]
    assert client.delete(f"/api/v1/assets/{asset.id}/device-token", headers=headers(coordinator)).status_code == 204
    assert_error(_report(client, asset.id, {"Authorization": f"Device {token}"}, lat=4.5, lon=18.4), 401)


def test_positions_through_redis_are_shared_and_flushed_to_the_track(
    client, coordinator, headers, live_redis, frozen_clock
):
    frozen_clock(T0)
    asset = AssetFactory(mission_id=coordinator.mission_id)
    h = headers(coordinator)
    assert _report(client, asset.id, h, lat=4.40, lon=18.50, speed_kmh=180).get_json()["latest"] is True
    assert (
        _report(client, asset.id, h, lat=4.0, lon=18.0, reported_at=(T0 - timedelta(hours=1)).isoformat()).get_json()[
            "latest"
        ]
        is False
    )
    assert _report(client, asset.id, h, lat=89.5, lon=18.0).get_json()["latest"] is True  # beyond GEO's band
    # Live fix comes from Redis: the row has not been written yet.
    row = db.session.get(Asset, asset.id)
    db.session.refresh(row)
    assert row.position_reported_at is None
    assert client.get(f"/api/v1/assets/{asset.id}", headers=h).get_json()["position"]["lat"] == 89.5
    prefix = client.application.extensions["settings"].REDIS_PREFIX
    assert live_redis.geopos(f"{prefix}:fleet:{asset.mission_id}:geo", asset.id) == [None]

    track = client.get(f"/api/v1/assets/{asset.id}/positions", headers=h).get_json()["items"]
    assert [p["lat"] for p in track] == [4.0, 4.40, 89.5]
    db.session.refresh(row)
    assert row.lat == 89.5  # the flush also brings the row up to date (the fallback when Redis is down)
    # A second flush finds nothing new: each fix is stored once.
    assert positions.flush_track(db.session, store=LiveStore(live_redis, prefix)) == 0
    assert db.session.execute(db.select(db.func.count()).select_from(AssetPosition)).scalar() == 3


def test_a_redelivered_stream_entry_is_stored_once(app, coordinator, live_redis):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    prefix = app.extensions["settings"].REDIS_PREFIX
    fix = {"lat": 4.1, "lon": 18.1, "heading": None, "speed_kmh": None}
    positions.report_positions(
        db.session,
        asset_id=asset.id,
        mission_id=asset.mission_id,
        source="device",
        fixes=[fix],
        batch=False,
        store=LiveStore(live_redis, prefix),
    )
    entries = live_redis.xrange(f"{prefix}:fleet:track")
    positions._store_entries(db.session, entries)
    positions._store_entries(db.session, entries)  # as after a crash between commit and acknowledgement
    assert db.session.execute(db.select(db.func.count()).select_from(AssetPosition)).scalar() == 1


def test_demo_seed_is_idempotent_and_realistic(app, mission):
    from casevac import seed as fleet_seed
    from casevac.fleet.models import Facility
    from core import seed

    assert fleet_seed.seed_demo in seed.seeders(app)
    for _ in range(2):
        fleet_seed.seed_demo(db.session, mission=mission, users={})
        db.session.commit()
    assets = list(db.session.execute(db.select(Asset)).scalars())
    facilities = list(db.session.execute(db.select(Facility)).scalars())
    assert len(assets) == len({a.callsign for a in assets}) >= 5
    helicopters = [a for a in assets if a.kind == "rotary_wing"]
    assert len(helicopters) == 2 and any({"hoist", "night"} <= set(a.capabilities) for a in helicopters)
    assert sum(a.kind == "ground_ambulance" for a in assets) >= 3
    levels = {f.level for f in facilities}
    assert {"1", "2", "3"} <= levels
    assert any(f.level == "2" and "damage_control_surgery" in f.capabilities for f in facilities)
    assert any(f.level == "3" and "Bangui" in f.name for f in facilities)


from tests.realtime.conftest import connect, received  # noqa: E402,F401 - the Socket.IO test-client fixture


def test_live_positions_reach_the_coordinators_only(client, coordinator, make_user, headers, connect):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    token = client.post(f"/api/v1/assets/{asset.id}/device-token", headers=headers(coordinator)).get_json()[
        "device_token"
    ]
    watching, medic = connect(coordinator), connect(make_user("medic"))
    response = _report(client, asset.id, {"Authorization": f"Device {token}"}, lat=4.51, lon=18.42, heading=270)
    assert response.status_code == 202
    got = received(watching, "asset.position")
    assert len(got) == 1 and got[0]["seq"] is None
    assert {k: got[0]["data"][k] for k in ("asset_id", "lat", "lon", "heading")} == {
        "asset_id": asset.id,
        "lat": 4.51,
        "lon": 18.42,
        "heading": 270,
    }
    assert received(medic) == []


def test_the_sweeper_moves_redis_fixes_into_the_track(app, coordinator, live_redis):
    from realtime import sweeper

    asset = AssetFactory(mission_id=coordinator.mission_id)
    prefix = app.extensions["settings"].REDIS_PREFIX
    for i in range(3):
        fix = {"lat": 4.0 + i / 10, "lon": 18.0, "heading": None, "speed_kmh": None}
        positions.report_positions(
            db.session,
            asset_id=asset.id,
            mission_id=asset.mission_id,
            source="device",
            fixes=[fix],
            batch=False,
            store=LiveStore(live_redis, prefix),
        )
    effects = sweeper.run_once(db.session, now=T0, settings=app.extensions["settings"])
    assert effects["fleet.track_flush"] == 3
    assert sweeper.run_once(db.session, now=T0, settings=app.extensions["settings"])["fleet.track_flush"] == 0
    assert [p.lat for p in db.session.execute(db.select(AssetPosition).order_by(AssetPosition.id)).scalars()] == [
        4.0,
        4.1,
        4.2,
    ]
