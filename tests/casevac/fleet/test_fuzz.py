"""Random bodies, coordinates and ids never give a 500 on the fleet endpoints (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.casevac.fleet.factories import ASSET_BODY, FACILITY_BODY, AssetFactory, FacilityFactory

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
COORD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-1000, 1000), st.text(max_size=8), st.none()
)
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _ok(response, allowed):
    assert response.status_code in allowed, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.is_json


@FUZZ
@given(
    lat=COORD,
    lon=COORD,
    heading=COORD,
    extra=st.dictionaries(st.sampled_from(["speed_kmh", "reported_at", "heading"]), JSON, max_size=2),
)
def test_random_positions_never_500(app, make_user, headers, lat, lon, heading, extra):
    coordinator = make_user("coordinator")
    asset = AssetFactory(mission_id=coordinator.mission_id)
    body = {"lat": lat, "lon": lon, "heading": heading, **extra}
    client = app.test_client()
    _ok(client.post(f"/api/v1/assets/{asset.id}/positions", json=body, headers=headers(coordinator)), {202, 422})


@FUZZ
@given(
    changes=st.dictionaries(st.sampled_from(sorted(ASSET_BODY) + ["status", "junk"]), JSON, max_size=4),
    facility_changes=st.dictionaries(st.sampled_from(sorted(FACILITY_BODY) + ["junk"]), JSON, max_size=4),
    some_id=st.text(st.characters(exclude_characters="/.", codec="utf-8"), max_size=60),  # not routing
    token=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
)
def test_random_asset_and_facility_bodies_never_500(app, make_user, headers, changes, facility_changes, some_id, token):
    coordinator = make_user("coordinator")
    client = app.test_client()
    h = headers(coordinator)
    _ok(
        client.post(
            "/api/v1/assets", json={**ASSET_BODY, "callsign": f"C-{len(changes)}-{id(changes)}", **changes}, headers=h
        ),
        {201, 409, 422},
    )
    _ok(
        client.post(
            "/api/v1/facilities",
            json={**FACILITY_BODY, "name": f"F-{id(facility_changes)}", **facility_changes},
            headers=h,
        ),
        {201, 409, 422},
    )
    asset = AssetFactory(mission_id=coordinator.mission_id)
    facility = FacilityFactory(mission_id=coordinator.mission_id)
    _ok(client.patch(f"/api/v1/assets/{asset.id}", json=changes, headers=h), {200, 409, 422})
    _ok(client.patch(f"/api/v1/facilities/{facility.id}", json=facility_changes, headers=h), {200, 409, 422})
    from urllib.parse import quote

    ident = "x" + quote(some_id, safe="")  # never "." or "..", which URLs collapse
    _ok(client.get(f"/api/v1/assets/{ident}", headers=h), {404})
    _ok(client.patch(f"/api/v1/facilities/{ident}", json={"beds_available": 1}, headers=h), {404})
    _ok(
        client.post(
            f"/api/v1/assets/{ident}/positions", json={"lat": 1, "lon": 2}, headers={"Authorization": f"Device {token}"}
        ),
        # A NUL can be no id: core.http answers 404 before authentication looks at the token.
        {404} if "\x00" in some_id else {401, 403},
    )
