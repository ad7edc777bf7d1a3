"""Who sees what: screenings and self-referrals are the member's and their mission's mental-health
clinicians' only; every read is audited, shown to the member, and hidden from the admin's audit list."""

from __future__ import annotations

import pytest

from tests.factories import MissionFactory
from tests.helpers import assert_error
from tests.telemed.mental.fixtures import PHQ9_ITEM9, PHQ9_MODERATE, make_mh_clinician, member, screen  # noqa: F401

BASE = "/api/v1/telemed"


@pytest.fixture
def record(screen, member):
    return screen(member, "phq9", PHQ9_ITEM9).get_json()


@pytest.fixture
def referral(client, headers, member):
    resp = client.post(
        f"{BASE}/self-referrals",
        json={"reason": "cannot sleep since the ambush", "preferred_language": "fr"},
        headers=headers(member),
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_the_member_and_the_missions_mental_health_clinician_see_a_screening(
    app, client, headers, record, member, make_mh_clinician
):
    mine = client.get(f"{BASE}/screenings/{record['id']}", headers=headers(member))
    assert mine.status_code == 200 and mine.get_json()["answers"] == PHQ9_ITEM9
    clinician = make_mh_clinician()
    theirs = client.get(f"{BASE}/screenings/{record['id']}", headers=headers(clinician))
    assert theirs.status_code == 200 and theirs.get_json()["alert"]["acknowledged_at"] is None


@pytest.mark.parametrize("role", ["coordinator", "medic", "admin", "clinician", "member"])
def test_everyone_else_gets_404_on_a_members_screening_and_referral(
    app, client, headers, make_user, record, referral, role
):
    # Same mission; the clinician has no mental-health specialty, the member is another member.
    other = make_user(role)
    assert_error(client.get(f"{BASE}/screenings/{record['id']}", headers=headers(other)), 404)
    assert_error(client.get(f"{BASE}/self-referrals/{referral['id']}", headers=headers(other)), 404)


def test_a_superadmin_and_another_missions_mental_health_clinician_get_404(
    app, client, headers, make_user, make_mh_clinician, record, referral
):
    elsewhere = MissionFactory()
    for user in (make_user("admin", superadmin=True), make_mh_clinician(elsewhere)):
        assert_error(client.get(f"{BASE}/screenings/{record['id']}", headers=headers(user)), 404)
        assert_error(client.get(f"{BASE}/self-referrals/{referral['id']}", headers=headers(user)), 404)


def test_an_unknown_id_is_the_same_404(app, client, headers, member, record, make_user):
    unknown = client.get(f"{BASE}/screenings/00000000-0000-0000-0000-000000000000", headers=headers(member))
    hidden = client.get(f"{BASE}/screenings/{record['id']}", headers=headers(make_user("coordinator")))
    assert unknown.status_code == hidden.status_code == 404
    assert unknown.get_json() == hidden.get_json()


def test_lists_show_members_their_own_and_clinicians_the_mission(
    app, client, headers, screen, member, make_user, make_mh_clinician
):
    other_member = make_user("member")
    screen(member, "phq9", PHQ9_ITEM9)
    screen(member, "gad7", [0] * 7)
    screen(other_member, "phq9", PHQ9_MODERATE)
    screen(make_user("member", MissionFactory()), "phq9", PHQ9_ITEM9)
    mine = client.get(f"{BASE}/screenings", headers=headers(member)).get_json()["items"]
    assert len(mine) == 2 and {s["member_id"] for s in mine} == {member.id}
    clinician = make_mh_clinician()
    mission_items = client.get(f"{BASE}/screenings", headers=headers(clinician)).get_json()["items"]
    assert {s["member_id"] for s in mission_items} == {member.id, other_member.id}
    flagged = client.get(f"{BASE}/screenings?flagged=true", headers=headers(clinician)).get_json()["items"]
    assert [s["flags"] for s in flagged] == [["suicidal_ideation"]]
    by_member = client.get(f"{BASE}/screenings?member_id={other_member.id}", headers=headers(clinician))
    assert [s["member_id"] for s in by_member.get_json()["items"]] == [other_member.id]
    for role in ("coordinator", "medic", "admin"):
        assert_error(client.get(f"{BASE}/screenings", headers=headers(make_user(role))), 403)
        assert_error(client.get(f"{BASE}/self-referrals", headers=headers(make_user(role))), 403)
    assert_error(client.get(f"{BASE}/screenings", headers=headers(make_user("clinician"))), 403)


def test_the_access_log_lists_each_read_with_who_read(
    app, client, headers, record, referral, member, make_mh_clinician
):
    clinician = make_mh_clinician()
    client.get(f"{BASE}/screenings/{record['id']}", headers=headers(clinician))
    client.get(f"{BASE}/screenings/{record['id']}", headers=headers(clinician))
    client.get(f"{BASE}/self-referrals/{referral['id']}", headers=headers(clinician))
    client.get(f"{BASE}/screenings/{record['id']}", headers=headers(member))
    log = client.get(f"{BASE}/me/access-log", headers=headers(member)).get_json()["items"]
    reads = [(e["action"], e["subject_id"], e["actor"]["id"]) for e in log if e["action"].endswith(".read")]
    assert reads == [  # newest first
        ("screening.read", record["id"], member.id),
        ("self_referral.read", referral["id"], clinician.id),
        ("screening.read", record["id"], clinician.id),
        ("screening.read", record["id"], clinician.id),
    ]
    clinician_entry = next(e for e in log if e["actor"]["id"] == clinician.id)
    assert clinician_entry["actor"] == {
        "id": clinician.id,
        "display_name": clinician.display_name,
        "role": "clinician",
        "you": False,
    }
    assert {e["action"] for e in log} >= {"screening.create", "self_referral.create"}
    # Someone else's log holds none of it.
    other_log = client.get(f"{BASE}/me/access-log", headers=headers(clinician)).get_json()["items"]
    assert other_log == []


def test_failed_reads_by_others_are_not_logged_as_reads(app, client, headers, record, member, make_user):
    client.get(f"{BASE}/screenings/{record['id']}", headers=headers(make_user("coordinator")))
    log = client.get(f"{BASE}/me/access-log", headers=headers(member)).get_json()["items"]
    assert [e["action"] for e in log] == ["screening.create"]


def test_list_reads_are_audited_per_item(app, client, headers, screen, member, make_mh_clinician):
    ids = {screen(member, "gad7", [0] * 7).get_json()["id"] for _ in range(3)}
    client.get(f"{BASE}/screenings?limit=2", headers=headers(make_mh_clinician()))
    log = client.get(f"{BASE}/me/access-log", headers=headers(member)).get_json()["items"]
    read_ids = [e["subject_id"] for e in log if e["action"] == "screening.read"]
    assert len(read_ids) == 2 and set(read_ids) <= ids


def test_the_admins_audit_list_hides_confidential_rows_but_keeps_the_rest(
    app, client, headers, record, referral, member, make_user, make_mh_clinician
):
    client.get(f"{BASE}/screenings/{record['id']}", headers=headers(make_mh_clinician()))
    admin = make_user("admin")
    superadmin = make_user("admin", superadmin=True)
    created = client.post(
        "/api/v1/users",
        json={"username": "new-medic", "password": "long-enough-pw", "role": "medic", "mission_id": admin.mission_id},
        headers=headers(admin),
    )
    assert created.status_code == 201
    for reader in (admin, superadmin):
        items = client.get("/api/v1/audit?limit=500", headers=headers(reader)).get_json()["items"]
        assert {i["subject_type"] for i in items} == {"user"}, items
        for query in (
            f"subject_id={record['id']}",
            f"subject_id={referral['id']}",
            f"actor_id={member.id}",
            "action=screening.read",
        ):
            assert client.get(f"/api/v1/audit?{query}", headers=headers(reader)).get_json()["items"] == []
    # The rows exist: the member's access log shows them.
    log = client.get(f"{BASE}/me/access-log", headers=headers(member)).get_json()["items"]
    assert len(log) == 3


def test_self_referral_is_a_members_and_tells_clinicians_only_that_it_exists(
    app, client, headers, referral, member, make_user, mission, make_mh_clinician
):
    from tests.telemed.mental.fixtures import events_of

    assert referral["status"] == "open" and referral["member_id"] == member.id
    assert referral["preferred_language"] == "fr" and isinstance(referral["offered_slots"], list)
    [event] = events_of("self_referral.created")
    assert event.rooms == [f"mission:{mission.id}:mental_health"]
    assert "reason" not in event.data and "ambush" not in str(event.data)
    clinician = make_mh_clinician()
    listed = client.get(f"{BASE}/self-referrals", headers=headers(clinician)).get_json()["items"]
    assert [r["id"] for r in listed] == [referral["id"]]
    assert (
        client.get(f"{BASE}/self-referrals", headers=headers(member)).get_json()["items"][0]["reason"]
        == "cannot sleep since the ambush"
    )
    for role in ("coordinator", "medic", "admin", "clinician"):
        resp = client.post(f"{BASE}/self-referrals", json={"reason": "x"}, headers=headers(make_user(role)))
        assert_error(resp, 403)


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "reason"),
        ({"reason": ""}, "reason"),
        ({"reason": "x", "preferred_language": "french"}, "preferred_language"),
        ({"reason": "x", "contact": "c" * 201}, "contact"),
        ({"reason": None}, "reason"),
    ],
)
def test_self_referral_validation(app, client, headers, member, body, field):
    assert_error(client.post(f"{BASE}/self-referrals", json=body, headers=headers(member)), 422, (field,))


def test_a_self_referral_is_closed_once_by_its_member_or_a_clinician(
    app, client, headers, referral, member, make_user, make_mh_clinician
):
    url = f"{BASE}/self-referrals/{referral['id']}/close"
    for role in ("coordinator", "medic", "admin"):
        assert_error(client.post(url, headers=headers(make_user(role))), 403)
    assert_error(client.post(url, headers=headers(make_user("clinician"))), 404)
    assert_error(client.post(url, headers=headers(make_user("member"))), 404)
    closed = client.post(url, headers=headers(member))
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    body = assert_error(client.post(url, headers=headers(make_mh_clinician())), 409)
    assert body["allowed"] == []
    log = client.get(f"{BASE}/me/access-log", headers=headers(member)).get_json()["items"]
    assert log[0]["action"] == "self_referral.close" and log[0]["actor"]["you"] is True
