"""Recommendations, dispatch, release and the plan over HTTP, on real CASEVAC requests."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from geographiclib.geodesic import Geodesic

from casevac.fleet.models import Asset
from config.extensions import db
from realtime.models import Event
from tests.casevac.conftest import CASUALTY
from tests.casevac.fleet.factories import ASSET_BODY, FACILITY_BODY, AssetFactory, FacilityFactory
from tests.factories import MissionFactory
from tests.helpers import assert_error

DAY = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
PICKUP = (4.3612, 18.5550)  # the CASEVAC test body's location
MPOKO = (4.3985, 18.5188)
API = "/api/v1/casevac"
OPTION_FIELDS = {
    "asset_id",
    "facility_id",
    "pickup_eta_minutes",
    "delivery_eta_minutes",
    "distance_km",
    "meets_deadline",
    "meets_ten_one_two",
    "reasons",
}


def km(a, b):
    return Geodesic.WGS84.Inverse(a[0], a[1], b[0], b[1], Geodesic.DISTANCE)["s12"] / 1000


@pytest.fixture
def fleet(coordinator, frozen_clock):
    frozen_clock(DAY)
    mission_id = coordinator.mission_id
    return {
        "hoist": AssetFactory(
            mission_id=mission_id,
            callsign="MEDEVAC-1",
            cruise_speed_kmh=220,
            readiness_minutes=15,
            capabilities=["hoist", "night", "medical_crew"],
            base_lat=MPOKO[0],
            base_lon=MPOKO[1],
        ),
        "plain": AssetFactory(mission_id=mission_id, callsign="MEDEVAC-2", capabilities=["medical_crew"]),
        "ambulance": AssetFactory(
            mission_id=mission_id,
            callsign="AMB-1",
            kind="ground_ambulance",
            cruise_speed_kmh=50,
            capabilities=["medical_crew"],
        ),
        "level2": FacilityFactory(mission_id=mission_id, name="Level 2", lat=4.37, lon=18.56),
        "level1": FacilityFactory(
            mission_id=mission_id, name="Level 1", level="1", capabilities=[], lat=4.365, lon=18.556
        ),
        "closed": FacilityFactory(mission_id=mission_id, name="Level 3 closed", level="3", status="closed"),
    }


def dispatch(client, request_id, asset, facility, hdrs):
    return client.post(
        f"{API}/requests/{request_id}/dispatch",
        json={"asset_id": getattr(asset, "id", asset), "facility_id": getattr(facility, "id", facility)},
        headers=hdrs,
    )


def asset_row(asset_id) -> Asset:
    db.session.expire_all()
    return db.session.get(Asset, asset_id)


def test_recommendations_rank_exclude_and_explain(client, coordinator, headers, file_request, fleet):
    request = file_request()  # urgent + urgent-surgical, hoist, 2 litters
    response = client.get(f"{API}/requests/{request['id']}/recommendations", headers=headers(coordinator))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [(o["asset_id"], o["facility_id"]) for o in body["options"]] == [(fleet["hoist"].id, fleet["level2"].id)]
    option = body["options"][0]
    assert OPTION_FIELDS <= set(option)
    # ETA = readiness + geodesic distance at cruise speed (220 km/h).
    to_pickup, to_facility = km(MPOKO, PICKUP), km(PICKUP, (4.37, 18.56))
    assert option["pickup_eta_minutes"] == pytest.approx(15 + to_pickup / 220 * 60, abs=0.05)
    assert option["delivery_eta_minutes"] == pytest.approx(15 + (to_pickup + to_facility) / 220 * 60, abs=0.05)
    assert option["distance_km"] == pytest.approx(to_pickup + to_facility, abs=0.01)
    assert option["meets_deadline"] is True
    excluded = {e["callsign"]: e["reasons"] for e in body["excluded_assets"]}
    assert excluded == {"MEDEVAC-2": ["no hoist (asked for on line 4)"], "AMB-1": ["no hoist (asked for on line 4)"]}
    facilities = {e["name"]: e["reasons"] for e in body["excluded_facilities"]}
    assert facilities == {
        "Level 1": ["no damage-control surgery for the urgent-surgical casualty"],
        "Level 3 closed": ["closed"],
    }
    assert body["night"] is False


def test_recommendations_run_the_10_1_2_clocks_from_the_casualties_times_of_injury(
    client, coordinator, headers, file_request, fleet
):
    # The request is read with its casualties (access.get_visible(full=False)): the clocks start at the
    # earliest time of injury (09:12, 48 min before now), not at the filing time.
    later = {**CASUALTY, "zap": "A-2", "precedence": "urgent", "time_of_injury": "2026-11-28T09:40:00Z"}
    request = file_request(casualties=[CASUALTY, later])
    body = client.get(f"{API}/requests/{request['id']}/recommendations", headers=headers(coordinator)).get_json()
    assert body["time_of_injury_estimated"] is False
    [option] = body["options"]
    assert option["meets_ten_one_two"] is False
    assert "10-1-2: resuscitation by the medical crew at pickup, later than 1 h of injury" in option["reasons"]


def test_the_excluded_lists_answer_byte_for_byte_as_their_schemas_dump_them(
    app, client, coordinator, headers, file_request, fleet
):
    # The excluded lists are answered as the rules build them (casevac.dispatch.schemas.BuiltList), not dumped
    # item by item: the answer must be what the item schemas' own dump gives, to the byte.
    from marshmallow import fields

    from casevac.dispatch import schemas
    from casevac.dispatch import service as dispatch_service

    mission_id = coordinator.mission_id
    AssetFactory(mission_id=mission_id, callsign="MAINT-1", status="maintenance", capabilities=[])
    AssetFactory(mission_id=mission_id, callsign="CASA-1", kind="fixed_wing", litter_capacity=1, ambulatory_capacity=0)
    AssetFactory(mission_id=mission_id, callsign="AMB-2", kind="ground_ambulance", litter_capacity=1, capabilities=[])
    FacilityFactory(mission_id=mission_id, name="Level 1 full", level="1", capabilities=[], beds_available=0)
    request = file_request(security="X")  # urgent + urgent-surgical, hoist, 2 litters, armed escort
    response = client.get(f"{API}/requests/{request['id']}/recommendations", headers=headers(coordinator))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert len(body["excluded_assets"]) == 5 and len(body["excluded_facilities"]) == 3
    assert max(len(e["reasons"]) for e in body["excluded_assets"]) >= 3

    class ItemByItem(schemas.RecommendationsOut):
        excluded_assets = fields.List(fields.Nested(schemas.ExcludedAssetOut))
        excluded_facilities = fields.List(fields.Nested(schemas.ExcludedFacilityOut))

    result = dispatch_service.recommend_for_request(
        db.session, actor=coordinator, request_id=request["id"], limit=10, settings=app.extensions["settings"]
    )
    expected = app.json.response(ItemByItem().dump(result)).get_data()
    assert response.get_data() == expected
    assert schemas.RecommendationsOut().dump(result) == ItemByItem().dump(result)


def test_every_fleet_write_is_seen_by_the_next_recommendation(client, coordinator, headers, file_request, fleet):
    # What a process keeps of the fleet is checked against the fleet's version (casevac.fleet.versions): a
    # capability, status or facility change shows in the very next answer.
    request = file_request()  # urgent + urgent-surgical, hoist, 2 litters
    hdrs = headers(coordinator)

    def recommendation():
        body = client.get(f"{API}/requests/{request['id']}/recommendations", headers=hdrs).get_json()
        options = {(o["asset_id"], o["facility_id"]) for o in body["options"]}
        return options, {e["callsign"]: e["reasons"] for e in body["excluded_assets"]}

    assert recommendation()[0] == {(fleet["hoist"].id, fleet["level2"].id)}
    patched = client.patch(
        f"/api/v1/assets/{fleet['plain'].id}", json={"capabilities": ["hoist", "medical_crew"]}, headers=hdrs
    )
    assert patched.status_code == 200, patched.get_json()
    options, _ = recommendation()
    assert options == {(fleet["hoist"].id, fleet["level2"].id), (fleet["plain"].id, fleet["level2"].id)}
    patched = client.patch(
        f"/api/v1/facilities/{fleet['level1'].id}", json={"capabilities": ["damage_control_surgery"]}, headers=hdrs
    )
    assert patched.status_code == 200, patched.get_json()
    assert (fleet["plain"].id, fleet["level1"].id) in recommendation()[0]
    patched = client.patch(f"/api/v1/assets/{fleet['hoist'].id}", json={"status": "maintenance"}, headers=hdrs)
    assert patched.status_code == 200, patched.get_json()
    options, excluded = recommendation()
    assert {asset for asset, _ in options} == {fleet["plain"].id}
    assert excluded["MEDEVAC-1"] == ["not available (maintenance)"]
    patched = client.patch(f"/api/v1/assets/{fleet['plain'].id}", json={"capabilities": ["medical_crew"]}, headers=hdrs)
    assert patched.status_code == 200, patched.get_json()
    options, excluded = recommendation()
    assert options == set() and excluded["MEDEVAC-2"] == ["no hoist (asked for on line 4)"]


def test_the_fleet_snapshot_rows_are_the_rules_value_objects_field_for_field():
    # casevac.dispatch.service builds AssetState and FacilityState from the fleet's rows by position (_make).
    from casevac.dispatch.states import AssetState, FacilityState
    from casevac.fleet.snapshot import AssetRow, FacilityRow

    assert AssetRow._fields == AssetState._fields
    assert FacilityRow._fields == FacilityState._fields


_second_apps: dict = {}


@pytest.fixture
def second_app(app, databases):
    """Another instance of the application on the same database (the test may switch it to the first one's
    Redis): another worker, as far as anything an application keeps in memory goes."""
    from casevac.fleet import positions
    from config.app import create_app
    from tests.conftest import test_settings

    if app.backend not in _second_apps:
        settings = test_settings(databases.url(app.backend), SECRET_KEY=app.extensions["settings"].SECRET_KEY)
        _second_apps[app.backend] = create_app(settings)
    second = _second_apps[app.backend]
    yield second
    second.extensions["redis"] = None
    positions.bind(second)
    with second.app_context():
        db.engine.dispose()  # before the first app's teardown resets the database


@pytest.mark.parametrize("live", ["database", "redis"])
def test_every_fleet_write_is_seen_by_the_next_recommendation_in_every_worker(
    request, live, client, coordinator, headers, file_request, fleet, second_app
):
    # Every kind of fleet write, made through one worker, shows in the very next recommendation of both: asset
    # create, update and status, facility create and update, a position report (live in Redis, or in the row),
    # tasking by a dispatch and the release. Nothing a worker keeps may hide a write another worker made.
    if live == "redis":
        from casevac.fleet import positions

        second_app.extensions["redis"] = request.getfixturevalue("live_redis")
        positions.bind(second_app)
    workers = [client, second_app.test_client()]
    hdrs = headers(coordinator)
    filed = file_request(equipment=[], patients={"priority": 1}, litter=1)  # any asset, any open facility
    level2, plain, ambulance = fleet["level2"].id, fleet["plain"].id, fleet["ambulance"].id

    def both() -> list[tuple[dict, dict]]:
        """(options by (asset, facility), reasons by excluded asset or facility id), from each worker."""
        answers = []
        for worker in workers:
            response = worker.get(f"{API}/requests/{filed['id']}/recommendations?limit=100", headers=hdrs)
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
            excluded = {e["asset_id"]: e["reasons"] for e in body["excluded_assets"]}
            excluded.update({e["facility_id"]: e["reasons"] for e in body["excluded_facilities"]})
            answers.append(({(o["asset_id"], o["facility_id"]): o for o in body["options"]}, excluded))
        return answers

    def written(response, status: int = 200) -> dict:
        assert response.status_code == status, response.get_json()
        return response.get_json()

    for round_, (writer, lat) in enumerate([(workers[1], 4.0), (workers[0], 4.7), (workers[1], 4.2)]):
        both()  # each worker has answered (and kept whatever it keeps) before the write
        asset = written(
            writer.post("/api/v1/assets", json={**ASSET_BODY, "callsign": f"NEW-{round_}"}, headers=hdrs), 201
        )["id"]
        assert all((asset, level2) in ranked for ranked, _ in both())
        facility = written(
            writer.post("/api/v1/facilities", json={**FACILITY_BODY, "name": f"New {round_}"}, headers=hdrs), 201
        )["id"]
        assert all((asset, facility) in ranked for ranked, _ in both())
        written(writer.patch(f"/api/v1/facilities/{facility}", json={"status": "closed"}, headers=hdrs))
        assert all(excluded[facility] == ["closed"] for _, excluded in both())
        written(writer.patch(f"/api/v1/assets/{asset}", json={"litter_capacity": 0}, headers=hdrs))
        little = ["too few litter places (0 for 1 litter patients)"]
        assert all(excluded[asset] == little for _, excluded in both())
        written(writer.patch(f"/api/v1/assets/{asset}", json={"litter_capacity": 2}, headers=hdrs))
        assert all((asset, level2) in ranked for ranked, _ in both())
        written(writer.patch(f"/api/v1/assets/{asset}", json={"status": "maintenance"}, headers=hdrs))
        assert all(excluded[asset] == ["not available (maintenance)"] for _, excluded in both())
        written(writer.patch(f"/api/v1/assets/{asset}", json={"status": "available"}, headers=hdrs))
        assert all((asset, level2) in ranked for ranked, _ in both())

        # A position report moves an asset (live in Redis, or in its row): its distance to the pickup site.
        written(writer.post(f"/api/v1/assets/{plain}/positions", json={"lat": lat, "lon": 18.9}, headers=hdrs), 202)
        distance = km((lat, 18.9), PICKUP) + km(PICKUP, (4.37, 18.56))
        assert all(ranked[(plain, level2)]["distance_km"] == pytest.approx(distance, abs=0.01) for ranked, _ in both())

        # Tasking by a dispatch, and the release when that request is cancelled.
        other = file_request(equipment=[], patients={"priority": 1}, litter=1)
        written(dispatch(writer, other["id"], ambulance, level2, hdrs))
        assert all(excluded[ambulance] == ["not available (tasked)"] for _, excluded in both())
        cancel = {"status": "cancelled", "note": "stood down"}
        written(writer.post(f"{API}/requests/{other['id']}/status", json=cancel, headers=hdrs))
        assert all((ambulance, level2) in ranked for ranked, _ in both())


def test_recommendations_without_special_needs_list_every_pair_best_first(
    client, coordinator, headers, file_request, fleet
):
    request = file_request(equipment=[], patients={"priority": 1}, litter=1)
    options = client.get(
        f"{API}/requests/{request['id']}/recommendations?limit=100", headers=headers(coordinator)
    ).get_json()["options"]
    assert len(options) == 3 * 2  # three assets x two open facilities
    ranked = [(not (o["meets_deadline"] and o["meets_ten_one_two"]), o["score_minutes"]) for o in options]
    assert ranked == sorted(ranked)


def test_dispatch_tasks_the_asset_and_cancel_frees_it(client, coordinator, headers, file_request, fleet):
    h = headers(coordinator)
    request = file_request()
    response = dispatch(client, request["id"], fleet["hoist"], fleet["level2"], h)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "dispatched"
    assert (body["asset_id"], body["facility_id"]) == (fleet["hoist"].id, fleet["level2"].id)
    row = asset_row(fleet["hoist"].id)
    assert (row.status, row.tasked_request_id) == ("tasked", request["id"])
    statuses = [
        e.data["status"]
        for e in db.session.execute(db.select(Event).where(Event.type == "asset.updated").order_by(Event.id)).scalars()
    ]
    assert statuses[-1] == "tasked"

    # The asset is taken: another request cannot have it; this request cannot be dispatched twice.
    other = file_request()
    taken = assert_error(dispatch(client, other["id"], fleet["hoist"], fleet["level2"], h), 409)
    assert taken["asset_status"] == "tasked" and "not available" in taken["message"]
    again = assert_error(dispatch(client, request["id"], fleet["plain"], fleet["level2"], h), 409)
    assert again["status"] == "Conflict" and again["current"] == "dispatched"
    assert asset_row(fleet["plain"].id).status == "available"

    cancelled = client.post(
        f"{API}/requests/{request['id']}/status", json={"status": "cancelled", "note": "casualty walked out"}, headers=h
    )
    assert cancelled.status_code == 200, cancelled.get_json()
    row = asset_row(fleet["hoist"].id)
    assert (row.status, row.tasked_request_id) == ("available", None)
    assert dispatch(client, other["id"], fleet["hoist"], fleet["level2"], h).status_code == 200


def test_delivery_frees_the_asset(client, coordinator, headers, file_request, fleet):
    h = headers(coordinator)
    request = file_request()
    assert dispatch(client, request["id"], fleet["hoist"], fleet["level2"], h).status_code == 200
    for status in ("at_pickup", "in_transit"):
        assert (
            client.post(f"{API}/requests/{request['id']}/status", json={"status": status}, headers=h).status_code == 200
        )
        assert asset_row(fleet["hoist"].id).status == "tasked"
    assert (
        client.post(f"{API}/requests/{request['id']}/status", json={"status": "delivered"}, headers=h).status_code
        == 200
    )
    assert asset_row(fleet["hoist"].id).status == "available"


def test_an_asset_tasked_elsewhere_is_not_freed_by_another_request(app, coordinator, fleet):
    from casevac.dispatch import service as dispatch_service

    class Finished:
        id, asset_id = "some-other-request", fleet["hoist"].id

    db.session.execute(
        db.update(Asset)
        .where(Asset.id == fleet["hoist"].id)
        .values(status="tasked", tasked_request_id="the-real-request")
    )
    dispatch_service.release_asset(db.session, Finished())
    db.session.commit()
    assert asset_row(fleet["hoist"].id).tasked_request_id == "the-real-request"


def test_an_unfit_choice_is_refused_with_reasons_and_changes_nothing(client, coordinator, headers, file_request, fleet):
    h = headers(coordinator)
    request = file_request()
    body = assert_error(dispatch(client, request["id"], fleet["plain"], fleet["level1"], h), 409)
    assert body["reasons"] == [
        "no hoist (asked for on line 4)",
        "no damage-control surgery for the urgent-surgical casualty",
    ]
    assert_error(dispatch(client, request["id"], fleet["hoist"], fleet["closed"], h), 409)
    assert asset_row(fleet["plain"].id).status == "available"
    assert client.get(f"{API}/requests/{request['id']}", headers=h).get_json()["status"] == "requested"


def test_dispatch_and_recommendations_errors(client, coordinator, medic, headers, file_request, fleet):
    h = headers(coordinator)
    request = file_request()
    rid = request["id"]
    assert_error(dispatch(client, "no-such-request", fleet["hoist"], fleet["level2"], h), 404)
    assert_error(dispatch(client, rid, "no-such-asset", fleet["level2"], h), 404)
    assert_error(dispatch(client, rid, fleet["hoist"], "no-such-facility", h), 404)
    other_mission = MissionFactory()
    foreign_asset = AssetFactory(mission_id=other_mission.id, capabilities=["hoist", "night", "medical_crew"])
    foreign_facility = FacilityFactory(mission_id=other_mission.id)
    assert_error(dispatch(client, rid, foreign_asset, fleet["level2"], h), 404)
    assert_error(dispatch(client, rid, fleet["hoist"], foreign_facility, h), 404)
    assert_error(
        client.post(f"{API}/requests/{rid}/dispatch", json={"facility_id": fleet["level2"].id}, headers=h),
        422,
        ("asset_id",),
    )
    assert_error(
        client.post(f"{API}/requests/{rid}/dispatch", json={"asset_id": 7, "facility_id": None}, headers=h),
        422,
        ("asset_id",),
    )
    # NUL bytes and other non-ids: PostgreSQL would refuse them in a query; they are 422 in bodies, 404 in paths.
    assert_error(dispatch(client, rid, "a\x00b", fleet["level2"], h), 422, ("asset_id",))
    assert_error(client.post(f"{API}/plan", json={"request_ids": ["\x00"]}, headers=h), 422, ("request_ids",))
    assert_error(client.get(f"{API}/requests/%00/recommendations", headers=h), 404)
    assert_error(client.get("/api/v1/assets/%00", headers=h), 404)
    assert_error(
        client.post(
            "/api/v1/assets/x/positions", json={"lat": 1, "lon": 1}, headers={"Authorization": "Device \x01.secret"}
        ),
        401,
    )
    assert_error(dispatch(client, rid, fleet["hoist"], fleet["level2"], headers(medic)), 403)
    assert_error(client.get(f"{API}/requests/{rid}/recommendations", headers=headers(medic)), 403)
    assert_error(client.get(f"{API}/requests/nope/recommendations", headers=h), 404)
    assert_error(client.get(f"{API}/requests/{rid}/recommendations?limit=0", headers=h), 422, ("limit",), "query")
    # Another mission's coordinator sees neither the request nor its recommendations.
    from tests.factories import UserFactory

    outsider = UserFactory(role="coordinator", mission_id=other_mission.id)
    assert_error(client.get(f"{API}/requests/{rid}/recommendations", headers=headers(outsider)), 404)
    assert_error(dispatch(client, rid, foreign_asset, foreign_facility, headers(outsider)), 404)
    client.post(f"{API}/requests/{rid}/status", json={"status": "cancelled", "note": "duplicate"}, headers=h)
    assert_error(client.get(f"{API}/requests/{rid}/recommendations", headers=h), 409)
    assert_error(dispatch(client, rid, fleet["hoist"], fleet["level2"], h), 409)


def test_plan_serves_urgent_first_explains_and_changes_nothing(client, coordinator, headers, file_request, fleet):
    h = headers(coordinator)
    routine = file_request(equipment=[], patients={"routine": 1}, litter=1)
    urgent = file_request(equipment=[], patients={"urgent": 1}, litter=1, location={"lat": 4.40, "lon": 18.60})
    hoist_needed = file_request()  # only MEDEVAC-1 can fly it
    db.session.execute(db.update(Asset).where(Asset.id == fleet["ambulance"].id).values(status="maintenance"))
    db.session.commit()
    events_before = db.session.execute(db.select(db.func.count()).select_from(Event)).scalar()

    response = client.post(f"{API}/plan", json={}, headers=h)
    assert response.status_code == 200, response.get_json()
    plan = response.get_json()
    assigned = {a["request_id"]: a for a in plan["assignments"]}
    assert set(assigned) == {urgent["id"], hoist_needed["id"]}
    assert assigned[hoist_needed["id"]]["asset_id"] == fleet["hoist"].id
    assert assigned[urgent["id"]]["asset_id"] == fleet["plain"].id
    assert all(
        {"request_id", "asset_id", "facility_id", "delivery_eta_minutes", "reasons"} <= set(a)
        for a in plan["assignments"]
    )
    assert plan["unserved"] == [
        {"request_id": routine["id"], "reason": "every asset that can fly it is assigned to a more urgent request"}
    ]
    # Without side effects: no status, asset or event changed.
    assert {a.status for a in db.session.execute(db.select(Asset)).scalars()} == {"available", "maintenance"}
    assert client.get(f"{API}/requests/{urgent['id']}", headers=h).get_json()["status"] == "requested"
    assert db.session.execute(db.select(db.func.count()).select_from(Event)).scalar() == events_before

    only = client.post(f"{API}/plan", json={"request_ids": [routine["id"]]}, headers=h).get_json()
    assert [a["request_id"] for a in only["assignments"]] == [routine["id"]]


def test_plan_input_errors(client, coordinator, medic, headers, file_request, fleet):
    h = headers(coordinator)
    request = file_request()
    assert_error(client.post(f"{API}/plan", json={"request_ids": []}, headers=h), 422, ("request_ids",))
    assert_error(client.post(f"{API}/plan", json={"request_ids": "all"}, headers=h), 422, ("request_ids",))
    assert_error(
        client.post(f"{API}/plan", json={"request_ids": [request["id"], request["id"]]}, headers=h),
        422,
        ("request_ids",),
    )
    assert_error(client.post(f"{API}/plan", json={"request_ids": ["nope"]}, headers=h), 404)
    assert_error(client.post(f"{API}/plan", json={}, headers=headers(medic)), 403)
    assert dispatch(client, request["id"], fleet["hoist"], fleet["level2"], h).status_code == 200
    plan = client.post(f"{API}/plan", json={"request_ids": [request["id"]]}, headers=h).get_json()
    assert plan["unserved"] == [{"request_id": request["id"], "reason": "not awaiting dispatch (dispatched)"}]


def test_the_freed_asset_event_carries_its_live_position(client, coordinator, headers, file_request, fleet, live_redis):
    h = headers(coordinator)
    request = file_request()
    assert dispatch(client, request["id"], fleet["hoist"], fleet["level2"], h).status_code == 200
    assert (
        client.post(
            f"/api/v1/assets/{fleet['hoist'].id}/positions", json={"lat": 4.25, "lon": 18.75}, headers=h
        ).status_code
        == 202
    )  # held in Redis, not yet flushed to the row
    assert (
        client.post(
            f"{API}/requests/{request['id']}/status", json={"status": "cancelled", "note": "stood down"}, headers=h
        ).status_code
        == 200
    )
    freed = (
        db.session.execute(db.select(Event).where(Event.type == "asset.updated").order_by(Event.id.desc()))
        .scalars()
        .first()
    )
    assert freed.data["status"] == "available"
    assert (freed.data["position"]["lat"], freed.data["position"]["lon"]) == (4.25, 18.75)
