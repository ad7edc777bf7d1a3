"""POST/GET /api/v1/telemed/screenings: scoring through the API, 422 naming the item, the alert event."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import MissionFactory
from tests.helpers import assert_error
from tests.telemed.mental.fixtures import (  # noqa: F401
    PHQ9_ITEM9,
    PHQ9_MODERATE,
    PHQ9_NONE,
    events_of,
    make_mh_clinician,
    member,
    screen,
)

URL = "/api/v1/telemed/screenings"


def test_item_9_at_1_with_total_1_alerts_the_mental_health_clinicians_without_the_answers(
    app, screen, member, mission, make_mh_clinician
):
    make_mh_clinician()
    resp = screen(member, "phq9", PHQ9_ITEM9)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["score"] == 1 and body["severity"] == "minimal" and body["positive"] is False
    assert body["flags"] == ["suicidal_ideation"]
    assert body["recommended_action"] == "same_day_safety_assessment"
    assert body["clinician_notified"] is True
    assert body["answers"] == PHQ9_ITEM9 and body["member_id"] == member.id
    assert isinstance(body["offered_slots"], list)

    [event] = events_of("screening.alert")
    assert event.rooms == [f"mission:{mission.id}:mental_health"]
    assert event.mission_id == mission.id
    data = event.data
    assert data["screening_id"] == body["id"] and data["member"]["id"] == member.id
    assert data["flags"] == ["suicidal_ideation"] and data["recommended_action"] == "same_day_safety_assessment"
    # The minimum needed to act: no answers, no item scores, no total.
    assert not {"answers", "score", "items", "criteria", "clusters", "severity"} & set(data)
    assert "1" not in {str(v) for v in data.values() if not isinstance(v, (dict, list))}


def test_without_mental_health_clinicians_every_clinician_of_the_mission_is_told_at_once(
    app, screen, member, mission, make_user, make_mh_clinician
):
    make_mh_clinician(MissionFactory())  # another mission's psychiatrist does not count
    alone = screen(member, "phq9", PHQ9_ITEM9).get_json()
    assert alone["flags"] == ["suicidal_ideation"] and alone["clinician_notified"] is False
    make_user("clinician")
    told = screen(member, "phq9", PHQ9_ITEM9).get_json()
    assert told["clinician_notified"] is True
    rooms = [e.rooms for e in events_of("screening.alert")]
    assert rooms == [[f"mission:{mission.id}:mental_health", f"mission:{mission.id}:role:clinician"]] * 2


def test_severe_gad7_alerts_and_recommends_an_urgent_consultation(app, screen, member):
    body = screen(member, "gad7", [3, 3, 3, 3, 3, 0, 0]).get_json()
    assert (body["score"], body["severity"], body["flags"]) == (15, "severe", ["severe_symptoms"])
    assert body["recommended_action"] == "urgent_consultation"
    assert len(events_of("screening.alert")) == 1


def test_unflagged_results_raise_no_alert(app, screen, member):
    moderate = screen(member, "phq9", PHQ9_MODERATE).get_json()
    assert moderate["positive"] is True and moderate["flags"] == [] and moderate["clinician_notified"] is False
    assert moderate["recommended_action"] == "consultation"
    assert screen(member, "phq9", PHQ9_NONE).get_json()["recommended_action"] == "no_action"
    assert events_of("screening.alert") == []


def test_pcl5_reports_both_rules_and_auditc_uses_sex(app, screen, member):
    answers = [2, 0, 0, 0, 0, 2, 0, 2, 2, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0]
    body = screen(member, "pcl5", answers).get_json()
    assert body["score"] == 12 and body["criteria"] == {"cut_off": False, "dsm5_clusters": True}
    assert body["clusters"]["D"] == {"endorsed": 2, "needed": 2, "met": True}
    assert screen(member, "auditc", [1, 1, 1], sex="male").get_json()["positive"] is False
    assert screen(member, "auditc", [1, 1, 1], sex="female").get_json()["positive"] is True


@pytest.mark.parametrize(
    "answers,path",
    [
        ([0] * 8, ("answers",)),
        ([0] * 10, ("answers",)),
        ([0, 0, 0, 0, 0, 0, 0, 0, 4], ("answers", "8")),
        ([0, 0, 0, -1, 0, 0, 0, 0, 0], ("answers", "3")),
        (["2", 0, 0, 0, 0, 0, 0, 0, 0], ("answers", "0")),
        ([0, None, 0, 0, 0, 0, 0, 0, 0], ("answers", "1")),
        ([0, 0, True, 0, 0, 0, 0, 0, 0], ("answers", "2")),
        ([0, 0, 0, 0, 0, 1.5, 0, 0, 0], ("answers", "5")),
    ],
)
def test_malformed_answers_give_422_naming_the_item(app, screen, member, answers, path):
    body = assert_error(screen(member, "phq9", answers), 422, path)
    node = body["errors"]["json"]["answers"]
    message = node[0] if isinstance(node, list) else node[path[1]][0]
    if len(path) > 1:
        assert message == f"item {int(path[1]) + 1}: must be an integer from 0 to 3"
    else:
        assert "9 items" in message
    assert events_of("screening.alert") == []


def test_null_or_missing_answers_and_unknown_instrument_give_422(app, client, headers, member):
    resp = client.post(URL, json={"instrument": "phq9", "answers": None}, headers=headers(member))
    assert_error(resp, 422, ("answers",))
    resp = client.post(URL, json={"instrument": "phq9"}, headers=headers(member))
    assert_error(resp, 422, ("answers",))
    resp = client.post(URL, json={"instrument": "phq9", "answers": "000000000"}, headers=headers(member))
    assert_error(resp, 422, ("answers",))
    body = assert_error(
        client.post(URL, json={"instrument": "bdi", "answers": [0]}, headers=headers(member)), 422, ("instrument",)
    )
    assert "phq9" in body["errors"]["json"]["instrument"][0] and "auditc" in body["errors"]["json"]["instrument"][0]
    body = assert_error(
        client.post(URL, json={"instrument": "auditc", "answers": [0, 0, 0], "sex": "x"}, headers=headers(member)),
        422,
        ("sex",),
    )
    assert "female" in body["errors"]["json"]["sex"][0]


def test_who_may_screen(app, screen, make_user, make_mh_clinician, member):
    for role in ("coordinator", "medic", "admin"):
        assert_error(screen(make_user(role)), 403)
    # A clinician without a mental-health specialty may not; a mental-health clinician needs member_id.
    assert_error(screen(make_user("clinician"), member_id=member.id), 403)
    clinician = make_mh_clinician()
    assert_error(screen(clinician), 422, ("member_id",))
    resp = screen(clinician, "phq9", PHQ9_MODERATE, member_id=member.id)
    assert resp.status_code == 201 and resp.get_json()["member_id"] == member.id
    assert resp.get_json()["entered_by"] == clinician.id
    # Not a member of the clinician's mission (or not a member at all): unknown.
    assert_error(screen(clinician, member_id=make_user("coordinator").id), 422, ("member_id",))
    # A member cannot file for someone else.
    assert_error(screen(member, member_id=make_user("member").id), 422, ("member_id",))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "instrument": st.one_of(
                st.sampled_from(["phq9", "gad7", "pcl5", "auditc"]), st.text(max_size=5), st.none(), st.integers()
            ),
            "answers": st.one_of(
                st.none(),
                st.text(max_size=3),
                st.integers(),
                st.lists(
                    st.one_of(
                        st.integers(-2, 6),
                        st.none(),
                        st.booleans(),
                        st.text(max_size=2),
                        st.floats(allow_nan=False, allow_infinity=False),
                        st.lists(st.integers(), max_size=1),
                    ),
                    max_size=22,
                ),
            ),
            "sex": st.one_of(st.none(), st.sampled_from(["female", "male", "other", "?"]), st.integers()),
            "extra": st.integers(),
        },
    )
)
def test_no_body_gives_a_500(app, client, headers, member, body):
    resp = client.post(URL, json=body, headers=headers(member))
    assert resp.status_code in (201, 422), (resp.status_code, body, resp.get_json())
