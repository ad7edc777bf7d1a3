"""No input to the mental-health endpoints produces a 500: forged cursors, NUL and lone surrogates in ids,
query strings and text, out-of-range months, absurd numbers."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.telemed.mental.fixtures import make_mh_clinician, member  # noqa: F401

BASE = "/api/v1/telemed"
ODD_GETS = [
    "/screenings?limit=0",
    "/screenings?cursor=zzz",
    "/screenings?cursor=",
    "/screenings?member_id=" + "x" * 5000,
    "/screenings?flagged=maybe",
    "/screenings/" + "a" * 300,
    "/screenings/%00",
    "/self-referrals/%00",
    "/self-referrals/%F0%9F%98%80",
    "/screenings?member_id=%00",
    "/members/%00/screening-trend?instrument=phq9",
    "/members/" + "b" * 100 + "/screening-trend?instrument=phq9",
    "/mental-health/metrics?month=0000-01",
    "/mental-health/metrics?month=9999-12",
    "/me/access-log?cursor=WyJhIl0",
    "/screening-alerts?state=x",
    "/self-referrals?status=x",
    # Well-formed cursors whose values do not fit the sort columns: ["x", "y"], [1, 2], [null, null].
    "/screenings?cursor=WyJ4IiwieSJd",
    "/screenings?cursor=WzEsMl0",
    "/self-referrals?cursor=W251bGwsbnVsbF0",
    "/screening-alerts?cursor=WyJ4IiwieSJd",
    "/me/access-log?cursor=WyJ4Il0",
]


def test_odd_requests_never_give_a_500(app, client, headers, member, make_mh_clinician):
    clinician = make_mh_clinician()
    for url in ODD_GETS:
        for user in (member, clinician):
            resp = client.get(BASE + url, headers=headers(user))
            assert resp.status_code in (200, 403, 404, 422), (url, resp.status_code, resp.get_data(as_text=True)[:300])
    for url in ("/screenings/%00/acknowledge", "/self-referrals/%00/close", "/self-referrals/%00/book"):
        resp = client.post(
            BASE + url,
            json={"clinician_id": "x", "start": "2026-12-01T09:00:00Z"},
            headers=headers(clinician if "ack" in url else member),
        )
        assert resp.status_code in (403, 404), (url, resp.status_code)
    resp = client.post(
        f"{BASE}/screenings", json={"instrument": "phq9", "answers": [10**30] * 9}, headers=headers(member)
    )
    assert resp.status_code == 422
    resp = client.post(
        f"{BASE}/screenings",
        json={"instrument": "phq9", "answers": [0] * 9, "member_id": "\x00"},
        headers=headers(clinician),
    )
    assert resp.status_code == 422


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "reason": st.one_of(st.text(max_size=30), st.none(), st.integers()),
                "preferred_language": st.one_of(st.text(max_size=3), st.none()),
                "contact": st.one_of(st.text(max_size=30), st.none(), st.booleans()),
            },
        ),
        st.lists(st.integers(), max_size=2),
        st.text(max_size=5),
    )
)
def test_self_referral_bodies_never_give_a_500(app, client, headers, member, body):
    resp = client.post(f"{BASE}/self-referrals", json=body, headers=headers(member))
    assert resp.status_code in (201, 422), (body, resp.status_code, resp.get_data(as_text=True)[:300])
