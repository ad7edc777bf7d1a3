"""Random ids and bodies on the dispatch endpoints never give a 500 (hypothesis)."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from tests.casevac.conftest import body
from tests.casevac.fleet.factories import AssetFactory, FacilityFactory
from tests.casevac.fleet.test_fuzz import FUZZ, JSON, _ok

IDS = st.one_of(st.text(max_size=40), st.integers(), st.none(), JSON)


# In a path, "/" and "." segments are routing (308 redirects), not ids: left out of the path ids.
PATH_ID = st.text(st.characters(exclude_characters="/.", codec="utf-8"), max_size=40)


@FUZZ
@given(asset_id=IDS, facility_id=IDS, request_id=PATH_ID, plan=JSON, limit=st.text(max_size=6))
def test_random_dispatch_inputs_never_500(app, make_user, headers, asset_id, facility_id, request_id, plan, limit):
    coordinator, medic = make_user("coordinator"), make_user("medic")
    client = app.test_client()
    h = headers(coordinator)
    filed = client.post("/api/v1/casevac/requests", json=body(equipment=[]), headers=headers(medic)).get_json()
    AssetFactory(mission_id=coordinator.mission_id)
    FacilityFactory(mission_id=coordinator.mission_id)
    for rid in (filed["id"], "x" + quote(request_id, safe="")):
        _ok(
            client.post(
                f"/api/v1/casevac/requests/{rid}/dispatch",
                json={"asset_id": asset_id, "facility_id": facility_id},
                headers=h,
            ),
            {404, 409, 422},
        )
        _ok(
            client.get(f"/api/v1/casevac/requests/{rid}/recommendations?limit={quote(limit)}", headers=h),
            {200, 404, 422},
        )
    _ok(client.post("/api/v1/casevac/plan", json=plan, headers=h), {200, 404, 422})
    _ok(
        client.post("/api/v1/casevac/plan", json={"request_ids": [request_id, filed["id"]]}, headers=h), {200, 404, 422}
    )
