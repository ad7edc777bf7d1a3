"""Position reports: one fix or a batch, with and without Redis; device tokens and their revocation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from casevac.fleet import device_tokens, positions
from casevac.fleet.models import MAX_FIXES_PER_REPORT, Asset, AssetPosition
from config.extensions import db
from tests.casevac.fleet.factories import AssetFactory
from tests.factories import MissionFactory, UserFactory
from tests.helpers import assert_error
from tests.realtime.conftest import connect, received  # noqa: F401 - the Socket.IO test-client fixture

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["database", "redis"])
def store(request):
    """Where live positions go: the database (no REDIS_URL) or Redis (the sweeper flushes to the track)."""
    if request.param == "redis":
        return request.getfixturevalue("live_redis")
    return None


def _url(asset_id: str) -> str:
    return f"/api/v1/assets/{asset_id}/positions"


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def _device_token(client, headers, coordinator, asset) -> dict:
    issued = client.post(f"/api/v1/assets/{asset.id}/device-token", headers=headers(coordinator))
    assert issued.status_code == 201
    return {"Authorization": f"Device {issued.get_json()['device_token']}"}


def _stored_track(asset_id: str) -> list[tuple]:
    return [
        (p.lat, p.lon, p.source)
        for p in db.session.execute(
            db.select(AssetPosition)
            .where(AssetPosition.asset_id == asset_id)
            .order_by(AssetPosition.reported_at, AssetPosition.id)
        ).scalars()
    ]


def test_a_batch_is_accepted_stored_and_its_newest_fix_is_the_latest(client, coordinator, headers, store, frozen_clock):
    frozen_clock(T0)
    asset = AssetFactory(mission_id=coordinator.mission_id)
    device = _device_token(client, headers, coordinator, asset)
    fixes = [
        {"lat": 4.30, "lon": 18.30, "reported_at": _at(-3), "heading": 10, "speed_kmh": 40},
        {"lat": 4.32, "lon": 18.32, "reported_at": _at(-1)},
        {"lat": 4.31, "lon": 18.31, "reported_at": _at(-2)},
    ]
    response = client.post(_url(asset.id), json={"fixes": fixes}, headers=device)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json() == {"asset_id": asset.id, "accepted": 3, "latest": True, "latest_index": 1}

    shown = client.get(f"/api/v1/assets/{asset.id}", headers=headers(coordinator)).get_json()["position"]
    assert (shown["lat"], shown["lon"], shown["reported_at"]) == (4.32, 18.32, _at(-1))
    track = client.get(_url(asset.id), headers=headers(coordinator)).get_json()["items"]
    assert [(p["lat"], p["reported_at"]) for p in track] == [(4.30, _at(-3)), (4.31, _at(-2)), (4.32, _at(-1))]
    assert track[0]["heading"] == 10 and track[0]["speed_kmh"] == 40 and {p["source"] for p in track} == {"device"}
    assert len(_stored_track(asset.id)) == 3


def test_an_older_batch_joins_the_track_only_and_ties_go_to_the_later_fix(
    client, coordinator, headers, store, frozen_clock
):
    frozen_clock(T0)
    asset = AssetFactory(mission_id=coordinator.mission_id)
    h = headers(coordinator)
    first = client.post(_url(asset.id), json={"lat": 4.5, "lon": 18.5, "reported_at": _at(-1)}, headers=h)
    assert first.status_code == 202 and first.get_json()["latest"] is True
    late = client.post(
        _url(asset.id),
        headers=h,
        json={
            "fixes": [
                {"lat": 4.1, "lon": 18.1, "reported_at": _at(-9)},
                {"lat": 4.2, "lon": 18.2, "reported_at": _at(-5)},
            ]
        },
    )
    assert late.get_json() == {"asset_id": asset.id, "accepted": 2, "latest": False, "latest_index": None}
    assert client.get(f"/api/v1/assets/{asset.id}", headers=h).get_json()["position"]["lat"] == 4.5
    # Fixes without reported_at are stamped on receipt: the same instant, so the last one listed wins.
    tie = client.post(_url(asset.id), headers=h, json={"fixes": [{"lat": 4.6, "lon": 18.6}, {"lat": 4.7, "lon": 18.7}]})
    assert tie.get_json()["latest_index"] == 1
    assert client.get(f"/api/v1/assets/{asset.id}", headers=h).get_json()["position"]["lat"] == 4.7
    track = client.get(_url(asset.id), headers=h).get_json()["items"]
    assert [p["lat"] for p in track] == [4.1, 4.2, 4.5, 4.6, 4.7]


def test_the_single_fix_form_is_unchanged(client, coordinator, headers, store, frozen_clock):
    frozen_clock(T0)
    asset = AssetFactory(mission_id=coordinator.mission_id)
    device = _device_token(client, headers, coordinator, asset)
    response = client.post(_url(asset.id), json={"lat": 4.4, "lon": 18.4, "heading": 90}, headers=device)
    assert response.status_code == 202
    assert response.get_json() == {
        "asset_id": asset.id,
        "lat": 4.4,
        "lon": 18.4,
        "heading": 90.0,
        "speed_kmh": None,
        "reported_at": T0.isoformat(),
        "latest": True,
    }


@pytest.mark.parametrize(
    "fixes, path",
    [
        ([{"lat": 4, "lon": 18}] * 3 + [{"lat": 95, "lon": 18}], ("fixes", "3", "lat")),
        ([{"lat": 4, "lon": 18}, {"lat": 4, "lon": 18, "heading": 360}], ("fixes", "1", "heading")),
        ([{"lon": 18}], ("fixes", "0", "lat")),
        ([{"lat": 4, "lon": 18}, {"lat": 4, "lon": 18, "altitude": 300}], ("fixes", "1", "altitude")),
        ([{"lat": 4, "lon": 18}, "north"], ("fixes", "1")),
        ([{"lat": 4, "lon": 18, "reported_at": "2099-01-01T00:00:00Z"}], ("fixes", "0", "reported_at")),
        ([], ("fixes",)),
        ([{"lat": 4, "lon": 18}] * (MAX_FIXES_PER_REPORT + 1), ("fixes",)),
        ("fixes", ("fixes",)),
        (None, ("fixes",)),
    ],
)
def test_bad_batches_are_422_naming_the_index_and_field(client, coordinator, headers, store, fixes, path):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    response = client.post(_url(asset.id), json={"fixes": fixes}, headers=headers(coordinator))
    body = assert_error(response, 422, path)
    if path == ("fixes",) and isinstance(fixes, list):
        assert f"between 1 and {MAX_FIXES_PER_REPORT}" in json.dumps(body["errors"])
    assert _stored_track(asset.id) == []  # a batch is stored whole or not at all


def test_a_body_is_one_fix_or_a_batch_not_both(client, coordinator, headers):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    both = {"lat": 4, "lon": 18, "fixes": [{"lat": 4, "lon": 18}]}
    assert_error(client.post(_url(asset.id), json=both, headers=headers(coordinator)), 422, ("lat",))


def test_a_device_token_reports_batches_for_its_own_asset_only(client, coordinator, headers, store):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    other = AssetFactory(mission_id=coordinator.mission_id)
    device = _device_token(client, headers, coordinator, asset)
    batch = {"fixes": [{"lat": 4.5, "lon": 18.4}, {"lat": 4.6, "lon": 18.5}]}
    assert_error(client.post(_url(other.id), json=batch, headers=device), 403)
    assert client.post(_url(asset.id), json=batch, headers=device).status_code == 202
    for url in (f"/api/v1/assets/{asset.id}", _url(asset.id), "/api/v1/assets", "/api/v1/auth/me"):
        assert_error(client.get(url, headers=device), 401)
    assert_error(client.post(f"/api/v1/assets/{asset.id}/device-token", headers=device), 401)
    # Another mission's coordinator cannot report for this asset, nor can a medic of its own mission.
    stranger = UserFactory(role="coordinator", mission_id=MissionFactory().id)
    assert_error(client.post(_url(asset.id), json=batch, headers=headers(stranger)), 404)
    medic = UserFactory(role="medic", mission_id=asset.mission_id)
    assert_error(client.post(_url(asset.id), json=batch, headers=headers(medic)), 403)
    client.get(_url(asset.id), headers=headers(coordinator))  # flushes Redis to the track
    assert len(_stored_track(asset.id)) == 2 and _stored_track(other.id) == []


def test_revocation_and_rotation_hold_at_once(client, coordinator, headers, store):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    old = _device_token(client, headers, coordinator, asset)
    fix = {"lat": 4.5, "lon": 18.4}
    assert client.post(_url(asset.id), json=fix, headers=old).status_code == 202
    new = _device_token(client, headers, coordinator, asset)  # rotation: the old token stops working
    assert_error(client.post(_url(asset.id), json={"fixes": [fix]}, headers=old), 401)
    assert client.post(_url(asset.id), json={"fixes": [fix]}, headers=new).status_code == 202
    assert client.delete(f"/api/v1/assets/{asset.id}/device-token", headers=headers(coordinator)).status_code == 204
    assert_error(client.post(_url(asset.id), json=fix, headers=new), 401)
    # Another process (nothing cached about this asset) refuses it too.
    device_tokens._asset_missions.clear()
    assert_error(client.post(_url(asset.id), json=fix, headers=new), 401)


def test_a_report_racing_a_revocation_cannot_bring_the_old_token_back(app, client, coordinator, headers, live_redis):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    device = _device_token(client, headers, coordinator, asset)
    stale = {"id": asset.id, "device_token_hash": db.session.get(Asset, asset.id).device_token_hash}
    assert client.delete(f"/api/v1/assets/{asset.id}/device-token", headers=headers(coordinator)).status_code == 204
    # A report that read the row before the revocation now copies what it read to Redis: it must not win.
    prefix = app.extensions["settings"].REDIS_PREFIX
    device_tokens._prime_credential(live_redis, prefix, Asset(**stale))
    device_tokens._asset_missions.clear()
    assert_error(client.post(_url(asset.id), json={"lat": 4.5, "lon": 18.4}, headers=device), 401)


def test_device_tokens_survive_a_redis_that_lost_its_data(app, client, coordinator, headers, live_redis):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    revoked_asset = AssetFactory(mission_id=coordinator.mission_id)
    device = _device_token(client, headers, coordinator, asset)
    revoked = _device_token(client, headers, coordinator, revoked_asset)
    client.delete(f"/api/v1/assets/{revoked_asset.id}/device-token", headers=headers(coordinator))
    prefix = app.extensions["settings"].REDIS_PREFIX
    live_redis.delete(f"{prefix}:fleet:device-tokens")  # a restart without persistence
    assert client.post(_url(asset.id), json={"lat": 4.5, "lon": 18.4}, headers=device).status_code == 202
    assert_error(client.post(_url(revoked_asset.id), json={"lat": 4.5, "lon": 18.4}, headers=revoked), 401)
    # Tokens issued before Redis held them (e.g. by an earlier version) work too: copied from the database.
    legacy = AssetFactory(mission_id=coordinator.mission_id)
    token = f"{legacy.id}.legacy-secret"
    legacy.device_token_hash = device_tokens._token_hash(token)
    db.session.commit()
    assert (
        client.post(
            _url(legacy.id), json={"lat": 4.5, "lon": 18.4}, headers={"Authorization": f"Device {token}"}
        ).status_code
        == 202
    )


def test_an_unreachable_redis_is_503_and_changes_nothing(app, client, coordinator, headers, live_redis):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    asset = AssetFactory(mission_id=coordinator.mission_id)
    device = _device_token(client, headers, coordinator, asset)
    app.extensions["redis"] = redis.Redis(
        port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )  # nothing listens there
    positions.bind(app)
    try:
        assert_error(client.post(_url(asset.id), json={"fixes": [{"lat": 4.5, "lon": 18.4}]}, headers=device), 503)
        assert_error(client.post(_url(asset.id), json={"lat": 4.5, "lon": 18.4}, headers=headers(coordinator)), 503)
        assert_error(client.delete(f"/api/v1/assets/{asset.id}/device-token", headers=headers(coordinator)), 503)
    finally:
        app.extensions["redis"] = live_redis
        positions.bind(app)
    assert db.session.get(Asset, asset.id).device_token_hash is not None  # the revocation did not half-happen
    assert client.post(_url(asset.id), json={"lat": 4.5, "lon": 18.4}, headers=device).status_code == 202


@pytest.mark.parametrize(
    "raw",
    [
        "null",
        "[]",
        '"x"',
        "42",
        "true",
        '{"fixes": null}',
        '{"fixes": [null]}',
        '{"fixes": [[]]}',
        '{"fixes": {"0": {"lat": 1, "lon": 2}}}',
        '{"fixes": [{"lat": 1e400, "lon": 2}]}',
        '{"fixes": [{"lat": NaN, "lon": 2}]}',
        '{"fixes": [{"lat": true, "lon": false}]}',
        '{"fixes": [{"lat": "4\\u0000", "lon": 2}]}',
        '{"fixes": [{"lat": 1, "lon": 2, "reported_at": "\\ud800"}]}',
        '{"fixes": [{"lat": 1, "lon": 2, "reported_at": 1e30}]}',
        '{"lat": {"lat": 1}, "lon": [2]}',
        "{",
    ],
)
@pytest.mark.parametrize("who", ["coordinator", "device"])
def test_garbage_is_never_a_500(client, coordinator, headers, store, raw, who):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    auth = headers(coordinator) if who == "coordinator" else _device_token(client, headers, coordinator, asset)
    response = client.post(_url(asset.id), data=raw, headers={**auth, "Content-Type": "application/json"})
    assert response.status_code in (400, 422), (response.status_code, response.get_data(as_text=True)[:300])
    assert response.get_json()["code"] == response.status_code


def test_one_live_event_per_batch_with_its_newest_fix(client, coordinator, headers, connect, frozen_clock):
    frozen_clock(T0)
    asset = AssetFactory(mission_id=coordinator.mission_id)
    watching = connect(coordinator)
    response = client.post(
        _url(asset.id),
        headers=headers(coordinator),
        json={
            "fixes": [
                {"lat": 4.1, "lon": 18.1, "reported_at": _at(-2)},
                {"lat": 4.3, "lon": 18.3, "reported_at": _at(-1)},
                {"lat": 4.2, "lon": 18.2, "reported_at": _at(-3)},
            ]
        },
    )
    assert response.status_code == 202
    got = received(watching, "asset.position")
    assert len(got) == 1 and (got[0]["data"]["asset_id"], got[0]["data"]["lat"]) == (asset.id, 4.3)


def test_the_openapi_document_describes_both_forms(client):
    operation = client.get("/openapi.json").get_json()["paths"]["/api/v1/assets/{asset_id}/positions"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert body == [{"$ref": "#/components/schemas/PositionIn"}, {"$ref": "#/components/schemas/PositionBatchIn"}]
    accepted = operation["responses"]["202"]["content"]["application/json"]["schema"]["oneOf"]
    assert {"$ref": "#/components/schemas/PositionBatchAccepted"} in accepted
    assert "422" in operation["responses"]


def test_an_empty_or_malformed_body_answers_as_on_every_other_endpoint(client, coordinator, headers):
    asset = AssetFactory(mission_id=coordinator.mission_id)
    for extra in ({}, {"content_type": "application/json"}):
        assert_error(client.post(_url(asset.id), headers=headers(coordinator), **extra), 422, ("lat",))
    malformed = client.post(_url(asset.id), headers=headers(coordinator), data="{", content_type="application/json")
    assert assert_error(malformed, 400)["errors"] == {"json": ["Invalid JSON body."]}


def test_credentials_are_judged_before_the_body(client, coordinator, headers, store):
    # A caller without valid credentials learns nothing about the body's schema: 401/403, never 422.
    asset = AssetFactory(mission_id=coordinator.mission_id)
    other = AssetFactory(mission_id=coordinator.mission_id)
    device = _device_token(client, headers, coordinator, asset)
    bad = {"fixes": [{"lat": 999}]}
    assert_error(client.post(_url(asset.id), json=bad, headers={"Authorization": "Bearer nonsense"}), 401)
    assert_error(client.post(_url(asset.id), json=bad, headers={"Authorization": f"Device {asset.id}.wrong"}), 401)
    assert_error(client.post(_url(other.id), json=bad, headers=device), 403)
    assert_error(
        client.post(
            _url(asset.id),
            data="{not json",
            content_type="application/json",
            headers={"Authorization": "Device nonsense"},
        ),
        401,
    )
    # With valid credentials the same body is a 422 naming the field.
    body = assert_error(client.post(_url(asset.id), json=bad, headers=device), 422)
    assert "fixes" in json.dumps(body["errors"])
    assert_error(client.post(_url(asset.id), json=bad, headers=headers(coordinator)), 422)


def test_live_points_are_the_fixes_as_reported(app, client, coordinator, headers, live_redis):
    # Dispatch reads lat/lon of every live fix per recommendation (positions.live_points, without json.loads
    # for the form the report writes): the same numbers as the fix's own JSON, whatever they look like.
    reported = [(-4.000001, 18.5), (0.0, -0.0), (1e-07, 179.99999999999997), (-89.5, 33.333333333333336)]
    assets = [AssetFactory(mission_id=coordinator.mission_id) for _ in reported]
    for asset, (lat, lon) in zip(assets, reported, strict=True):
        accepted = client.post(_url(asset.id), json={"lat": lat, "lon": lon}, headers=headers(coordinator))
        assert accepted.status_code == 202, accepted.get_json()
    store = positions.live_store()
    prefix = app.extensions["settings"].REDIS_PREFIX
    odd = AssetFactory(mission_id=coordinator.mission_id)  # another writer's form: key order, spaces
    live_redis.hset(f"{prefix}:fleet:{coordinator.mission_id}:pos", odd.id, '{"lon": 18.25, "t": 1, "lat": 4.75}')
    points = positions.live_points(store, mission_id=coordinator.mission_id, asset_ids=[a.id for a in [*assets, odd]])
    assert [points[a.id] for a in assets] == reported
    assert points[odd.id] == (4.75, 18.25)
    raw = live_redis.hmget(f"{prefix}:fleet:{coordinator.mission_id}:pos", [a.id for a in assets])
    assert [points[a.id] for a in assets] == [(json.loads(r)["lat"], json.loads(r)["lon"]) for r in raw]
