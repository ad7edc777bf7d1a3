"""Dispatch races on PostgreSQL with real threads and separate sessions: the database decides."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timezone

import pytest

from casevac.fleet.models import Asset
from casevac.requests.models import CasevacRequest
from config.extensions import db
from tests.casevac.conftest import body
from tests.casevac.fleet.factories import AssetFactory, FacilityFactory
from tests.helpers import auth_headers

API = "/api/v1/casevac"


@pytest.fixture
def setup(pg_app, pg_make_user, frozen_clock):
    frozen_clock(datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc))
    medic, coordinator = pg_make_user("medic"), pg_make_user("coordinator")
    coordinators = [pg_make_user("coordinator") for _ in range(4)]
    facility = FacilityFactory(mission_id=coordinator.mission_id, beds_available=50)
    client = pg_app.test_client()
    medic_headers = auth_headers(medic)

    def file():
        response = client.post(f"{API}/requests", json=body(equipment=[]), headers=medic_headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    tokens = [auth_headers(c) for c in (coordinator, *coordinators)]
    return {
        "app": pg_app,
        "tokens": tokens,
        "facility_id": facility.id,
        "file": file,
        "mission_id": coordinator.mission_id,
    }  # plain values: the threads and db.session.remove() detach rows


def race(app, calls):
    """Run the calls at once, each in its own thread with its own client, app context and session."""
    barrier = threading.Barrier(len(calls))
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def run(call):
        client = app.test_client()
        barrier.wait()
        response = call(client)
        with lock:
            results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_twenty_coordinators_dispatching_one_asset_exactly_one_wins(setup):
    asset_id = AssetFactory(mission_id=setup["mission_id"]).id  # threads see plain ids, not ORM objects
    request_ids = [setup["file"]() for _ in range(20)]
    tokens = [setup["tokens"][i % 5] for i in range(20)]

    def attempt(i):
        return lambda c: c.post(
            f"{API}/requests/{request_ids[i]}/dispatch",
            json={"asset_id": asset_id, "facility_id": setup["facility_id"]},
            headers=tokens[i],
        )

    results = race(setup["app"], [attempt(i) for i in range(20)])
    assert Counter(code for code, _ in results) == Counter({200: 1, 409: 19}), results
    assert all(body["asset_status"] == "tasked" for code, body in results if code == 409)
    winner = next(body for code, body in results if code == 200)
    db.session.remove()
    row = db.session.get(Asset, asset_id)
    assert (row.status, row.tasked_request_id) == ("tasked", winner["id"])
    statuses = Counter(db.session.execute(db.select(CasevacRequest.status)).scalars())
    assert statuses == Counter({"dispatched": 1, "requested": 19})


def test_twenty_assets_racing_for_one_request_exactly_one_is_tasked(setup):
    asset_ids = [AssetFactory(mission_id=setup["mission_id"]).id for _ in range(20)]
    request_id = setup["file"]()
    tokens = [setup["tokens"][i % 5] for i in range(20)]

    def attempt(i):
        return lambda c: c.post(
            f"{API}/requests/{request_id}/dispatch",
            json={"asset_id": asset_ids[i], "facility_id": setup["facility_id"]},
            headers=tokens[i],
        )

    results = race(setup["app"], [attempt(i) for i in range(20)])
    assert Counter(code for code, _ in results) == Counter({200: 1, 409: 19}), results
    db.session.remove()
    statuses = Counter(db.session.execute(db.select(Asset.status)).scalars())
    assert statuses == Counter({"tasked": 1, "available": 19})  # the losers' asset updates were rolled back
    request = db.session.get(CasevacRequest, request_id)
    tasked = db.session.execute(db.select(Asset).where(Asset.status == "tasked")).scalar_one()
    assert request.status == "dispatched" and request.asset_id == tasked.id
    assert tasked.tasked_request_id == request_id


def test_cancel_racing_dispatch_never_leaves_an_asset_tasked_to_a_cancelled_request(setup):
    for _ in range(5):
        asset_id = AssetFactory(mission_id=setup["mission_id"]).id
        request_id = setup["file"]()
        coordinator = setup["tokens"][0]
        calls = [
            lambda c, request_id=request_id, asset_id=asset_id, coordinator=coordinator: c.post(
                f"{API}/requests/{request_id}/dispatch",
                json={"asset_id": asset_id, "facility_id": setup["facility_id"]},
                headers=coordinator,
            ),
            lambda c, request_id=request_id, coordinator=coordinator: c.post(
                f"{API}/requests/{request_id}/status",
                json={"status": "cancelled", "note": "stood down"},
                headers=coordinator,
            ),
        ]
        race(setup["app"], calls)
        db.session.remove()
        request = db.session.get(CasevacRequest, request_id)
        row = db.session.get(Asset, asset_id)
        # Whichever commits first, the asset follows the request: never tasked to a cancelled one.
        if request.status == "cancelled":
            assert (row.status, row.tasked_request_id) == ("available", None)
        else:
            assert request.status == "dispatched" and (row.status, row.tasked_request_id) == ("tasked", request_id)
