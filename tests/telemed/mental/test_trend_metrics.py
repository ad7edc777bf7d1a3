"""Trend with reliable change for the clinician; metrics only over groups of at least 5 people."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemed.mental.metrics import suppress
from tests.factories import MissionFactory
from tests.helpers import assert_error
from tests.telemed.mental.fixtures import make_mh_clinician, member, screen  # noqa: F401

BASE = "/api/v1/telemed"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def phq9(total: int) -> list[int]:
    answers = [0] * 9
    for i in range(8):
        answers[i] = min(3, total - sum(answers))
    return answers


def pcl5(total: int) -> list[int]:
    answers = [0] * 20
    for i in range(20):
        answers[i] = min(4, total - sum(answers))
    return answers


def test_phq9_trend_marks_reliable_change_at_5_points(
    app, client, headers, screen, member, make_mh_clinician, frozen_clock
):
    for day, total in enumerate([20, 15, 11, 16, 16]):
        frozen_clock(T0 + timedelta(days=7 * day))
        assert screen(member, "phq9", phq9(total)).status_code == 201
    clinician = make_mh_clinician()
    resp = client.get(f"{BASE}/members/{member.id}/screening-trend?instrument=phq9", headers=headers(clinician))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["reliable_change_points"] == 5
    assert [(p["score"], p["change"], p["reliable_change"]) for p in body["points"]] == [
        (20, None, None),
        (15, -5, "improved"),
        (11, -4, "no_reliable_change"),
        (16, 5, "worsened"),
        (16, 0, "no_reliable_change"),
    ]
    assert body["overall"] == {"from_score": 20, "to_score": 16, "change": -4, "reliable_change": "no_reliable_change"}
    assert [p["at"] for p in body["points"]] == sorted(p["at"] for p in body["points"])
    # Each screening shown is a read the member can see.
    log = client.get(f"{BASE}/me/access-log", headers=headers(member)).get_json()["items"]
    assert sum(1 for e in log if e["action"] == "screening.trend_read" and e["actor"]["id"] == clinician.id) == 5


def test_pcl5_trend_needs_10_points_and_gad7_has_no_threshold(app, client, headers, screen, member, frozen_clock):
    for day, total in enumerate([50, 41, 30]):
        frozen_clock(T0 + timedelta(days=day))
        screen(member, "pcl5", pcl5(total))
        screen(member, "gad7", [min(3, max(0, total // 7 - i)) for i in range(7)])
    body = client.get(f"{BASE}/members/{member.id}/screening-trend?instrument=pcl5", headers=headers(member)).get_json()
    assert [p["reliable_change"] for p in body["points"]] == [None, "no_reliable_change", "improved"]
    assert body["overall"]["reliable_change"] == "improved" and body["overall"]["change"] == -20
    gad = client.get(f"{BASE}/members/{member.id}/screening-trend?instrument=gad7", headers=headers(member)).get_json()
    assert gad["reliable_change_points"] is None and gad["points"][1]["reliable_change"] is None


def test_trend_visibility(app, client, headers, screen, member, make_user, make_mh_clinician):
    screen(member, "phq9", phq9(3))
    url = f"{BASE}/members/{member.id}/screening-trend?instrument=phq9"
    assert_error(client.get(url, headers=headers(make_user("member"))), 404)
    assert_error(client.get(url, headers=headers(make_user("clinician"))), 404)
    assert_error(client.get(url, headers=headers(make_mh_clinician(MissionFactory()))), 404)
    for role in ("coordinator", "medic", "admin"):
        assert_error(client.get(url, headers=headers(make_user(role))), 403)
    assert_error(
        client.get(f"{BASE}/members/{member.id}/screening-trend?instrument=x", headers=headers(member)),
        422,
        ("instrument",),
        location="query",
    )
    single = client.get(url, headers=headers(member)).get_json()
    assert len(single["points"]) == 1 and single["overall"] is None


@pytest.mark.parametrize(
    "groups,total,expected",
    [
        ({"a": 7, "b": 0}, 7, {"a": 7, "b": 0}),
        ({"a": 4}, 4, {"a": None}),
        ({"a": 6, "b": 3}, 9, {"a": None, "b": None}),  # b alone would be total - a
        ({"a": 6, "b": 5, "c": 2}, 13, {"a": 6, "b": None, "c": None}),
        ({"a": 2, "b": 3, "c": 9}, 14, {"a": None, "b": None, "c": 9}),  # 2 + 3 >= 5: nothing more to hide
        ({"a": 1, "b": 1, "c": 5, "d": 8}, 15, {"a": None, "b": None, "c": None, "d": 8}),
    ],
)
def test_small_cell_suppression(groups, total, expected):
    assert suppress(groups, total) == expected


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 12), min_size=1))
def test_suppression_never_shows_or_implies_a_group_under_5(groups):
    total = sum(groups.values())
    shown = suppress(groups, total)
    assert set(shown) == set(groups)
    for name, count in shown.items():
        assert count is None or count == groups[name]
        assert count is None or count == 0 or count >= 5
    # What the total minus the shown cells reveals is 0 or at least 5 people.
    hidden = sum(groups[n] for n, c in shown.items() if c is None)
    assert total < 5 or hidden == 0 or hidden >= 5


def test_metrics_withhold_groups_under_5_people(
    app, client, headers, screen, make_user, make_mh_clinician, frozen_clock
):
    frozen_clock(T0)
    coordinator = make_user("coordinator")
    members = [make_user("member") for _ in range(6)]
    for m in members[:4]:
        screen(m, "phq9", phq9(2))
    url = f"{BASE}/mental-health/metrics?month=2026-11"
    body = client.get(url, headers=headers(coordinator)).get_json()
    phq = next(i for i in body["instruments"] if i["instrument"] == "phq9")
    assert phq["people"] is None and set(phq["results"].values()) == {None}
    assert body["min_group_size"] == 5 and body["month"] == "2026-11"

    # The fifth person: the group may be described; one person's second screening counts once.
    screen(members[4], "phq9", phq9(2))
    screen(members[0], "phq9", phq9(3))
    body = client.get(url, headers=headers(coordinator)).get_json()
    phq = next(i for i in body["instruments"] if i["instrument"] == "phq9")
    assert phq["people"] == 5
    assert phq["results"] == {"minimal": 5, "mild": 0, "moderate": 0, "moderately_severe": 0, "severe": 0}
    assert phq["flagged"] == {"flagged": 0, "not_flagged": 5}

    # A sixth, severe and flagged: a group of one is withheld, and so is the cell it could be derived from.
    screen(members[5], "phq9", [3] * 9)
    body = client.get(url, headers=headers(make_mh_clinician())).get_json()
    phq = next(i for i in body["instruments"] if i["instrument"] == "phq9")
    assert phq["people"] == 6
    assert phq["results"]["severe"] is None and phq["results"]["minimal"] is None
    assert phq["flagged"] == {"flagged": None, "not_flagged": None}
    assert "member" not in str(body) and members[5].id not in str(body)

    # Another month: nothing.
    other = client.get(f"{BASE}/mental-health/metrics?month=2026-10", headers=headers(coordinator)).get_json()
    assert next(i for i in other["instruments"] if i["instrument"] == "phq9")["people"] is None


def test_metrics_access_and_validation(app, client, headers, make_user):
    for role in ("medic", "member"):
        assert_error(client.get(f"{BASE}/mental-health/metrics", headers=headers(make_user(role))), 403)
    assert_error(client.get(f"{BASE}/mental-health/metrics", headers=headers(make_user("clinician"))), 403)
    for bad in ("2026-13", "26-11", "2026-1", "november", "0000-01", "9999-12"):
        assert_error(
            client.get(f"{BASE}/mental-health/metrics?month={bad}", headers=headers(make_user("admin"))),
            422,
            ("month",),
            location="query",
        )
    assert client.get(f"{BASE}/mental-health/metrics", headers=headers(make_user("admin"))).status_code == 200


def test_self_referral_counts_need_5_people(app, client, headers, make_user, frozen_clock):
    frozen_clock(T0)
    admin = make_user("admin")
    referrers = [make_user("member") for _ in range(5)]
    for m in referrers[:4]:
        client.post(f"{BASE}/self-referrals", json={"reason": "r"}, headers=headers(m))
    url = f"{BASE}/mental-health/metrics?month=2026-11"
    assert client.get(url, headers=headers(admin)).get_json()["self_referrals"] == {"people": None}
    client.post(f"{BASE}/self-referrals", json={"reason": "r"}, headers=headers(referrers[4]))
    client.post(f"{BASE}/self-referrals", json={"reason": "again"}, headers=headers(referrers[4]))
    assert client.get(url, headers=headers(admin)).get_json()["self_referrals"] == {"people": 5}
