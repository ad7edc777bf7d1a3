"""No input produces a 500: booking bodies, slot queries and path ids from hypothesis."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

API = "/api/v1/telemed"

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.sampled_from(
        [
            "2026-12-01T09:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2026-12-01T09:00:00",
            "2026-02-30T09:00:00Z",
            "\x00",
            "video",
            "async",
            "mental_health",
            "diagnostic",
        ]
    ),
)
booking = st.fixed_dictionaries(
    {},
    optional={
        k: anything for k in ("kind", "clinician_id", "start", "duration_minutes", "modality", "reason", "patient")
    },
)
query = st.fixed_dictionaries(
    {},
    optional={
        k: st.one_of(
            st.text(max_size=30),
            st.sampled_from(
                ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-12-01T00:00:00+14:00", "-1", "0", "500", "fhir"]
            ),
        )
        for k in (
            "specialty",
            "language",
            "kind",
            "from",
            "to",
            "duration",
            "clinician_id",
            "limit",
            "cursor",
            "format",
        )
    },
)
FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=booking)
def test_booking_bodies_never_500(client, make_clinician, make_user, headers, now_frozen, body):
    clinician = make_clinician()
    if body.get("clinician_id") == "use-real":
        body["clinician_id"] = clinician.id
    resp = client.post(f"{API}/consultations", json=body, headers=headers(make_user("medic")))
    assert resp.status_code in (201, 403, 409, 422), (resp.status_code, body, resp.get_data(as_text=True)[:300])


@FUZZ
@given(params=query)
def test_slot_queries_never_500(client, make_clinician, make_user, headers, now_frozen, params):
    make_clinician()
    resp = client.get(f"{API}/slots", query_string=params, headers=headers(make_user("medic")))
    assert resp.status_code in (200, 422), (resp.status_code, params, resp.get_data(as_text=True)[:300])


@FUZZ
@given(ident=st.text(min_size=1, max_size=60).filter(lambda t: "/" not in t and t not in (".", "..")))
def test_unknown_path_ids_are_404(client, make_user, headers, ident):
    from urllib.parse import quote

    user = make_user("coordinator")
    for path in (
        f"/consultations/{quote(ident)}",
        f"/clinicians/{quote(ident)}",
        f"/consultations/{quote(ident)}/notes",
    ):
        resp = client.get(API + path, headers=headers(user))
        assert resp.status_code == 404, (path, resp.status_code, resp.get_data(as_text=True)[:300])
