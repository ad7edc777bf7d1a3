"""Booking, lifecycle and reschedule; the races run against PostgreSQL with real threads."""

from __future__ import annotations

from config.extensions import db
from realtime.models import Event
from tests.helpers import assert_error
from tests.telemed.conftest import at

API = "/api/v1/telemed"


def test_booking_inside_availability_and_409_reasons(client, make_clinician, make_user, book, now_frozen):
    clinician = make_clinician(buffer_minutes=10, min_notice_minutes=60)
    medic = make_user("medic")
    resp = book(medic, clinician, at("2026-12-01T09:00"))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "booked" and body["end"].startswith("2026-12-01T09:30")
    assert body["booked_by"] == medic.id and body["history"][0]["status"] == "booked"
    for start, reason in [
        ("2026-12-01T09:00", "overlaps_booking"),
        ("2026-12-01T09:35", "overlaps_booking"),
        ("2026-12-01T08:35", "overlaps_booking"),  # its own buffer would reach 09:15
        ("2026-12-01T16:45", "outside_availability"),
        ("2026-12-01T20:00", "outside_availability"),
        ("2026-11-30T06:30", "too_soon"),
        ("2027-06-01T09:00", "beyond_horizon"),
    ]:
        resp = book(medic, clinician, at(start))
        assert_error(resp, 409)
        assert resp.get_json()["reason"] == reason, (start, resp.get_json())
    assert book(medic, clinician, at("2026-12-01T09:40")).status_code == 201  # after 09:30 + 10 buffer
    assert book(medic, clinician, at("2026-12-01T08:20")).status_code == 201  # 08:50 + 10 = 09:00


def test_booking_validation_and_roles(client, make_clinician, make_user, book, headers, now_frozen):
    clinician = make_clinician()
    medic = make_user("medic")
    assert_error(book(medic, "no-such-clinician", at("2026-12-01T09:00")), 422, ("clinician_id",))
    assert_error(book(medic, clinician, at("2026-12-01T09:00"), kind="mental_health"), 422, ("kind",))
    assert_error(book(medic, clinician, at("2026-12-01T09:00"), patient={}), 422, ("patient",))
    assert_error(
        book(medic, clinician, at("2026-12-01T09:00"), patient={"user_id": "nobody"}), 422, ("patient", "user_id")
    )
    assert_error(book(medic, clinician, None), 422, ("start",))
    resp = client.post(
        f"{API}/consultations",
        headers=headers(medic),
        json={
            "kind": "therapy",
            "clinician_id": clinician.id,
            "modality": "smoke",
            "reason": "x",
            "start": "2026-12-01T09:00:00Z",
        },
    )
    body = assert_error(resp, 422, ("kind",))
    assert "modality" in body["errors"]["json"] and "diagnostic" in str(body["errors"]["json"]["kind"])
    assert_error(book(make_user("member"), clinician, at("2026-12-01T09:00")), 403)


def test_member_books_a_mental_health_consultation_that_only_participants_see(
    client, make_clinician, make_user, book, headers, now_frozen
):
    psychiatrist = make_clinician(specialties=["psychiatry"], languages=["fr", "en"])
    member = make_user("member")
    resp = book(member, psychiatrist, at("2026-12-01T10:00"), kind="mental_health", patient={})
    assert resp.status_code == 201, resp.get_json()
    consultation = resp.get_json()
    assert consultation["patient"]["user_id"] == member.id
    url = f"{API}/consultations/{consultation['id']}"
    assert client.get(url, headers=headers(member)).status_code == 200
    assert client.get(url, headers=headers(psychiatrist.user)).status_code == 200
    for role in ("coordinator", "medic", "admin", "clinician", "member"):
        assert_error(client.get(url, headers=headers(make_user(role))), 404)
    coordinator = make_user("coordinator")
    listed = client.get(f"{API}/consultations", headers=headers(coordinator)).get_json()["items"]
    assert listed == []
    # A member books for themself only.
    other = make_user("member")
    assert_error(
        book(member, psychiatrist, at("2026-12-01T11:00"), kind="mental_health", patient={"user_id": other.id}), 403
    )
    # Booked events went to the participants' rooms only.
    event = db.session.execute(db.select(Event).where(Event.type == "consult.booked")).scalar_one()
    assert sorted(event.rooms) == sorted([f"user:{member.id}", f"user:{psychiatrist.user_id}"])
    assert "reason" not in event.data


def test_lifecycle_follows_the_graph_and_409_lists_allowed(
    client, make_clinician, make_user, book, headers, now_frozen
):
    clinician = make_clinician()
    medic = make_user("medic")
    consultation = book(medic, clinician, at("2026-12-01T09:00")).get_json()
    url = f"{API}/consultations/{consultation['id']}/status"

    def move(user, status, reason=None):
        return client.post(
            url, json={"status": status, **({"reason": reason} if reason else {})}, headers=headers(user)
        )

    body = assert_error(move(clinician.user, "fulfilled"), 409)
    assert body["allowed"] == ["checked_in", "cancelled", "noshow"]
    assert_error(move(medic, "cancelled"), 422, ("reason",))
    assert_error(move(medic, "in_progress"), 409)
    assert move(medic, "checked_in").status_code == 200
    assert_error(move(medic, "in_progress"), 403)  # only the clinician starts it
    assert move(clinician.user, "in_progress").status_code == 200
    resp = move(clinician.user, "fulfilled")
    assert resp.status_code == 200 and [h["status"] for h in resp.get_json()["history"]] == [
        "booked",
        "checked_in",
        "in_progress",
        "fulfilled",
    ]
    assert_error(move(clinician.user, "cancelled", "late"), 409)
    types = db.session.execute(db.select(Event.type).order_by(Event.id)).scalars().all()
    assert types == ["consult.booked"] + ["consult.updated"] * 3


def test_cancelling_frees_the_time(client, make_clinician, make_user, book, headers, now_frozen):
    clinician = make_clinician()
    medic = make_user("medic")
    first = book(medic, clinician, at("2026-12-01T09:00")).get_json()
    assert_error(book(medic, clinician, at("2026-12-01T09:00")), 409)
    resp = client.post(
        f"{API}/consultations/{first['id']}/status",
        json={"status": "cancelled", "reason": "casualty evacuated"},
        headers=headers(medic),
    )
    assert resp.status_code == 200 and resp.get_json()["status_reason"] == "casualty evacuated"
    assert book(medic, clinician, at("2026-12-01T09:00")).status_code == 201


def test_reschedule_moves_atomically(client, make_clinician, make_user, book, headers, now_frozen):
    clinician = make_clinician()
    medic = make_user("medic")
    a = book(medic, clinician, at("2026-12-01T09:00")).get_json()
    book(medic, clinician, at("2026-12-01T10:00"))
    url = f"{API}/consultations/{a['id']}/reschedule"
    resp = client.post(url, json={"start": "2026-12-01T10:00:00Z"}, headers=headers(medic))
    assert_error(resp, 409)
    assert (
        client.get(f"{API}/consultations/{a['id']}", headers=headers(medic))
        .get_json()["start"]
        .startswith("2026-12-01T09:00")
    )  # still where it was
    resp = client.post(url, json={"start": "2026-12-01T09:15:00Z"}, headers=headers(medic))  # overlaps itself: ok
    assert resp.status_code == 200 and resp.get_json()["start"].startswith("2026-12-01T09:15")
    # The old time is free again.
    assert book(medic, clinician, at("2026-12-01T08:30"), duration=45).status_code == 201
