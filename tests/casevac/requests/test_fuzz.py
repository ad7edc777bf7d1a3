"""Property: no request body, however wrong, gives a 500 (hypothesis)."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.casevac.conftest import BASE_BODY, CASUALTY, FULL_LINES

URL = "/api/v1/casevac/requests"
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

# Text includes what databases refuse: NUL and lone surrogates (JSON can carry both).
texts = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(exclude_categories=()), max_size=10),
    st.sampled_from(["a\x00b", "\ud800", "\udfff x", "N", "smoke", "urgent", "4.36,18.55"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
KEYS = sorted(
    set(BASE_BODY)
    | set(FULL_LINES)
    | {"casualties", "client_ref", "remarks", "cbrn", "suffix", "wounds", "marking_detail"}
)
LOCATION_VALUES = st.one_of(
    json_values,
    st.fixed_dictionaries({"lat": scalars, "lon": scalars}),
    st.fixed_dictionaries({"mgrs": st.one_of(texts, st.from_regex(r"[0-9]{1,2}[A-Z]{3}[0-9]{0,10}", fullmatch=True))}),
    st.fixed_dictionaries(
        {
            "text": st.one_of(
                texts,
                st.from_regex(
                    r"[0-9]{1,3}[° ][0-9]{1,2}' ?[0-9]{1,2}\"? ?[NSEW]"
                    r"[ ,]+[0-9]{1,3}[° ][0-9]{1,2}' ?[0-9]{1,2}\"? ?[NSEW]",
                    fullmatch=True,
                ),
            )
        }
    ),
)
CASUALTY_VALUES = st.dictionaries(
    st.sampled_from(sorted(CASUALTY) + ["sex", "mechanism_detail"]), json_values, max_size=5
)


@st.composite
def mutated_bodies(draw):
    body = json.loads(json.dumps({**BASE_BODY, **FULL_LINES, "casualties": [CASUALTY]}))
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=4, unique=True)):
        if draw(st.booleans()):
            body.pop(key, None)
        elif key == "location":
            body[key] = draw(LOCATION_VALUES)
        elif key == "casualties":
            body[key] = draw(st.one_of(json_values, st.lists(CASUALTY_VALUES, max_size=3)))
        elif key == "patients":
            body[key] = draw(
                st.one_of(
                    json_values,
                    st.dictionaries(
                        st.sampled_from(["urgent", "urgent_surgical", "priority", "routine", "convenience", "x"]),
                        scalars,
                        max_size=5,
                    ),
                )
            )
        else:
            body[key] = draw(json_values)
    return body


@FUZZ
@given(payload=st.one_of(mutated_bodies(), json_values))
def test_random_filing_bodies_never_500(client, headers, medic, payload):
    response = client.post(
        URL, data=json.dumps(payload), headers={**headers(medic), "Content-Type": "application/json"}
    )
    assert response.status_code < 500, (payload, response.get_data(as_text=True)[:500])
    assert response.status_code in (200, 201, 400, 409, 422), (payload, response.status_code)


@FUZZ
@given(
    patch=st.dictionaries(st.sampled_from(KEYS + ["status", "note"]), json_values, max_size=4),
    status=json_values,
    casualty=st.one_of(CASUALTY_VALUES, json_values),
    query=st.dictionaries(
        st.sampled_from(["status", "precedence", "active", "near", "radius_km", "limit", "cursor", "format"]),
        st.text(max_size=20),
        max_size=3,
    ),
)
def test_random_updates_and_queries_never_500(
    client, headers, medic, coordinator, file_request, patch, status, casualty, query
):
    filed = file_request(casualties=[CASUALTY])
    calls = [
        client.patch(f"{URL}/{filed['id']}", json=patch, headers=headers(medic)),
        client.post(f"{URL}/{filed['id']}/status", json={"status": status, "note": "n"}, headers=headers(coordinator)),
        client.patch(
            f"/api/v1/casevac/casualties/{filed['casualties'][0]['id']}", json=casualty, headers=headers(medic)
        ),
        client.post(f"{URL}/{filed['id']}/casualties", json=casualty, headers=headers(coordinator)),
        client.get(URL, query_string=query, headers=headers(coordinator)),
        client.get(
            "/api/v1/casevac/metrics",
            query_string={"from": query.get("cursor", ""), "to": query.get("near", "")},
            headers=headers(coordinator),
        ),
    ]
    for response in calls:
        assert response.status_code < 500, (patch, status, casualty, query, response.get_data(as_text=True)[:500])


def test_unstorable_text_is_a_422_not_a_database_error(client, headers, medic):
    from tests.casevac.conftest import body
    from tests.helpers import assert_error

    for bad in ("a\x00b", "\ud800"):
        for key in ("callsign", "remarks", "client_ref", "terrain"):
            response = client.post(
                URL, data=json.dumps(body(**{key: bad})), headers={**headers(medic), "Content-Type": "application/json"}
            )
            assert_error(response, 422, (key,))
        injuries = json.dumps(body(casualties=[{**CASUALTY, "injuries": [bad]}]))
        assert_error(
            client.post(URL, data=injuries, headers={**headers(medic), "Content-Type": "application/json"}),
            422,
            ("casualties", "0", "injuries", "0"),
        )
    assert_error(
        client.post(URL, json=body(), headers={**headers(medic), "Idempotency-Key": "a b"}),
        422,
        ("Idempotency-Key",),
        "headers",
    )
