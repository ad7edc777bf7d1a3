"""Offered mental-health slots, booking from a self-referral, mental-health consultations in the member's
access log and out of the admin's audit list, and the socket rooms an alert goes to."""

from __future__ import annotations

from tests.helpers import assert_error
from tests.telemed.conftest import at, iso
from tests.telemed.mental.fixtures import (  # noqa: F401
    PHQ9_ITEM9,
    PHQ9_MODERATE,
    PHQ9_NONE,
    make_mh_clinician,
    member,
    screen,
)

BASE = "/api/v1/telemed"


def test_a_flagged_screening_offers_the_earliest_mental_health_slots(
    app, screen, member, make_clinician, make_mh_clinician, now_frozen
):
    make_clinician(specialties=("general_medicine",))  # not mental health: never offered
    later = make_mh_clinician(weekly=[{"day": "mon", "start": "10:00", "end": "12:00"}])
    earlier = make_mh_clinician(specialties=("psychology",), weekly=[{"day": "mon", "start": "09:00", "end": "10:00"}])
    body = screen(member, "phq9", PHQ9_ITEM9).get_json()
    offered = body["offered_slots"]
    assert [(s["start"], s["specialties"]) for s in offered] == [
        ("2026-11-30T09:00:00+00:00", ["psychology"]),
        ("2026-11-30T09:30:00+00:00", ["psychology"]),
        ("2026-11-30T10:00:00+00:00", ["psychiatry"]),
    ]
    assert {s["languages"] == ["en", "fr"] for s in offered} == {True}
    assert offered[0]["clinician_id"] == _clinician_id(earlier)
    assert offered[2]["clinician_id"] == _clinician_id(later) and offered[2]["display_name"] == later.display_name
    # Moderate (positive) also gets slots; a negative result none.
    assert len(screen(member, "phq9", PHQ9_MODERATE).get_json()["offered_slots"]) == 3
    assert screen(member, "phq9", PHQ9_NONE).get_json()["offered_slots"] == []


def test_self_referral_offers_slots_in_the_members_language_first(
    app, client, headers, member, make_mh_clinician, now_frozen
):
    english = make_mh_clinician(languages=("en",), weekly=[{"day": "mon", "start": "08:00", "end": "09:00"}])
    french = make_mh_clinician(languages=("fr", "sg"), weekly=[{"day": "mon", "start": "14:00", "end": "15:00"}])
    resp = client.post(
        f"{BASE}/self-referrals", json={"reason": "nightmares", "preferred_language": "fr"}, headers=headers(member)
    )
    assert resp.status_code == 201
    assert {s["clinician_id"] for s in resp.get_json()["offered_slots"]} == {_clinician_id(french)}
    # Nobody speaks Arabic: the earliest in any language, each naming its languages.
    resp = client.post(
        f"{BASE}/self-referrals", json={"reason": "nightmares", "preferred_language": "ar"}, headers=headers(member)
    )
    first = resp.get_json()["offered_slots"][0]
    assert first["clinician_id"] == _clinician_id(english) and first["languages"] == ["en"]


def _clinician_id(user) -> str:
    from config.extensions import db
    from telemed.scheduling.clinicians import clinician_of_user

    return clinician_of_user(db.session, user.id).id


def test_member_books_an_offered_slot_from_the_referral(
    app, client, headers, member, make_user, make_mh_clinician, now_frozen
):
    psychiatrist = make_mh_clinician()
    referral = client.post(
        f"{BASE}/self-referrals", json={"reason": "cannot sleep"}, headers=headers(member)
    ).get_json()
    slot = referral["offered_slots"][0]
    url = f"{BASE}/self-referrals/{referral['id']}/book"
    body = {"clinician_id": slot["clinician_id"], "start": slot["start"], "modality": "audio"}
    for role in ("coordinator", "medic", "admin", "clinician"):
        assert_error(client.post(url, json=body, headers=headers(make_user(role))), 403)
    assert_error(client.post(url, json=body, headers=headers(make_user("member"))), 404)
    resp = client.post(url, json=body, headers=headers(member))
    assert resp.status_code == 201, resp.get_json()
    booked = resp.get_json()
    assert booked["status"] == "booked" and booked["consultation"]["kind"] == "mental_health"
    assert booked["consultation_id"] == booked["consultation"]["id"]
    assert booked["consultation"]["start"] == slot["start"] and booked["consultation"]["modality"] == "audio"
    # The referral now shows its consultation; booking again is a state conflict.
    shown = client.get(f"{BASE}/self-referrals/{referral['id']}", headers=headers(member)).get_json()
    assert shown["consultation"]["id"] == booked["consultation_id"] and shown["offered_slots"] == []
    again = assert_error(client.post(url, json=body, headers=headers(member)), 409)
    assert again["allowed"] == ["closed"]
    # The slot is gone for everybody: a second referral cannot take it (telemed's 409).
    other = client.post(f"{BASE}/self-referrals", json={"reason": "x"}, headers=headers(member)).get_json()
    assert slot["start"] not in {s["start"] for s in other["offered_slots"]}
    assert_error(client.post(f"{BASE}/self-referrals/{other['id']}/book", json=body, headers=headers(member)), 409)
    assert client.get(f"{BASE}/self-referrals/{other['id']}", headers=headers(member)).get_json()["status"] == "open"
    # The psychiatrist sees the consultation; the member's access log shows the reads.
    consultation_url = f"{BASE}/consultations/{booked['consultation_id']}"
    assert client.get(consultation_url, headers=headers(psychiatrist)).status_code == 200
    log = client.get(f"{BASE}/me/access-log", headers=headers(member)).get_json()["items"]
    reads = [(e["subject_type"], e["actor"]["id"]) for e in log if e["action"] == "telemed.consultation.read"]
    assert ("consultation", psychiatrist.id) in reads


def test_book_validation(app, client, headers, member, now_frozen):
    referral = client.post(f"{BASE}/self-referrals", json={"reason": "r"}, headers=headers(member)).get_json()
    url = f"{BASE}/self-referrals/{referral['id']}/book"
    assert_error(
        client.post(url, json={"start": iso(at("2026-12-01T09:00"))}, headers=headers(member)), 422, ("clinician_id",)
    )
    assert_error(
        client.post(url, json={"clinician_id": "x", "start": "2026-12-01T09:00"}, headers=headers(member)),
        422,
        ("start",),
    )
    assert_error(
        client.post(
            url,
            json={"clinician_id": "x", "start": iso(at("2026-12-01T09:00")), "modality": "fax"},
            headers=headers(member),
        ),
        422,
        ("modality",),
    )
    assert_error(
        client.post(
            url, json={"clinician_id": "nobody", "start": iso(at("2026-12-01T09:00"))}, headers=headers(member)
        ),
        422,
        ("clinician_id",),
    )


def test_book_start_outside_2000_to_2100_is_a_422_not_a_500(
    app, client, headers, member, make_mh_clinician, now_frozen
):
    # Near year 1 or 9999 the busy-time arithmetic overflowed (a 500); the start is bounded like telemed's own.
    make_mh_clinician()
    referral = client.post(f"{BASE}/self-referrals", json={"reason": "r"}, headers=headers(member)).get_json()
    url = f"{BASE}/self-referrals/{referral['id']}/book"
    clinician_id = referral["offered_slots"][0]["clinician_id"]
    for start in ("0001-01-01T00:00:00Z", "9999-12-31T23:00:00Z"):
        assert_error(
            client.post(url, json={"clinician_id": clinician_id, "start": start}, headers=headers(member)),
            422,
            ("start",),
        )


def test_admins_audit_list_hides_mental_health_consultations_but_not_diagnostic_ones(
    app, client, headers, member, make_user, make_clinician, make_mh_clinician, book, now_frozen
):
    psychiatrist = make_mh_clinician()
    doctor = make_clinician(specialties=("general_medicine",))
    from config.extensions import db
    from telemed.scheduling.clinicians import clinician_of_user

    mh = book(
        member, clinician_of_user(db.session, psychiatrist.id), at("2026-11-30T09:00"), kind="mental_health", patient={}
    )
    assert mh.status_code == 201, mh.get_json()
    medic = make_user("medic")
    diag = book(medic, doctor, at("2026-11-30T09:00"))
    assert diag.status_code == 201, diag.get_json()
    client.get(f"{BASE}/consultations/{mh.get_json()['id']}", headers=headers(psychiatrist))
    admin = make_user("admin")
    items = client.get("/api/v1/audit?limit=500", headers=headers(admin)).get_json()["items"]
    subjects = {i["subject_id"] for i in items}
    assert diag.get_json()["id"] in subjects
    assert mh.get_json()["id"] not in subjects
    assert (
        client.get(f"/api/v1/audit?subject_id={mh.get_json()['id']}", headers=headers(admin)).get_json()["items"] == []
    )


def test_only_mental_health_clinicians_join_the_alert_room(app, make_user, make_mh_clinician, make_clinician, mission):
    from realtime.sockets import rooms_for

    room = f"mission:{mission.id}:mental_health"
    assert room in rooms_for(make_mh_clinician())
    assert room in rooms_for(make_clinician(specialties=("psychology",)).user)
    assert room not in rooms_for(make_clinician(specialties=("general_medicine",)).user)
    for role in ("coordinator", "medic", "admin", "member"):
        assert room not in rooms_for(make_user(role))
