"""Clinician profiles, availability and slot search through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle

from tests.helpers import assert_error
from tests.telemed.conftest import at, iso

API = "/api/v1/telemed"


def test_admin_creates_a_profile_and_the_clinician_sets_availability(client, make_user, headers):
    admin = make_user("admin")
    doc = make_user("clinician")
    resp = client.post(
        f"{API}/clinicians",
        headers=headers(admin),
        json={
            "user_id": doc.id,
            "specialties": ["psychiatry"],
            "languages": ["fr", "en"],
            "timezone": "Africa/Nairobi",
        },
    )
    assert resp.status_code == 201, resp.get_json()
    profile = resp.get_json()
    assert profile["kinds"] == ["mental_health"] and profile["timezone"] == "Africa/Nairobi"
    again = client.post(
        f"{API}/clinicians",
        headers=headers(admin),
        json={"user_id": doc.id, "specialties": ["psychiatry"], "languages": ["fr"], "timezone": "Africa/Nairobi"},
    )
    assert_error(again, 409)

    body = {
        "weekly": [{"day": "mon", "start": "08:00", "end": "12:00"}],
        "overrides": [{"date": "2026-12-25", "windows": []}],
        "slot_minutes": 45,
        "buffer_minutes": 15,
        "min_notice_minutes": 120,
    }
    resp = client.put(f"{API}/clinicians/{profile['id']}/availability", headers=headers(doc), json=body)
    assert resp.status_code == 200, resp.get_json()
    got = client.get(f"{API}/clinicians/{profile['id']}", headers=headers(make_user("member"))).get_json()
    assert got["availability"]["slot_minutes"] == 45
    assert got["availability"]["overrides"] == [{"date": "2026-12-25", "windows": []}]

    other_clinician = make_user("clinician")
    assert_error(
        client.put(f"{API}/clinicians/{profile['id']}/availability", headers=headers(other_clinician), json=body), 403
    )
    assert_error(
        client.patch(
            f"{API}/clinicians/{profile['id']}", headers=headers(make_user("coordinator")), json={"languages": ["en"]}
        ),
        403,
    )
    resp = client.patch(f"{API}/clinicians/{profile['id']}", headers=headers(doc), json={"languages": ["en"]})
    assert resp.status_code == 200 and resp.get_json()["languages"] == ["en"]


def test_only_an_admin_grants_a_mental_health_specialty(client, make_user, make_clinician, headers):
    doc = make_user("clinician")
    body = {
        "user_id": doc.id,
        "specialties": ["general_medicine", "psychiatry"],
        "languages": ["en"],
        "timezone": "UTC",
    }
    assert_error(client.post(f"{API}/clinicians", headers=headers(doc), json=body), 403)
    resp = client.post(f"{API}/clinicians", headers=headers(doc), json={**body, "specialties": ["general_medicine"]})
    assert resp.status_code == 201
    url = f"{API}/clinicians/{resp.get_json()['id']}"
    assert_error(client.patch(url, headers=headers(doc), json={"specialties": ["psychology"]}), 403)
    assert_error(client.patch(url, headers=headers(doc), json={"active": False}), 403)
    resp = client.patch(url, headers=headers(make_user("admin")), json={"specialties": ["psychology"]})
    assert resp.status_code == 200 and resp.get_json()["specialties"] == ["psychology"]
    psychiatrist = make_clinician(specialties=["psychiatry"])
    resp = client.patch(
        f"{API}/clinicians/{psychiatrist.id}",
        headers=headers(psychiatrist.user),
        json={"specialties": ["psychiatry"], "languages": ["fr", "en"]},
    )
    assert resp.status_code == 200  # keeping a granted specialty is fine


def test_profile_validation_names_the_field(client, make_user, headers):
    admin = make_user("admin")
    doc = make_user("clinician")
    base = {"user_id": doc.id, "specialties": ["radiology"], "languages": ["en"], "timezone": "Asia/Kathmandu"}
    for field, value in [
        ("timezone", "Mars/Olympus"),
        ("languages", ["english"]),
        ("specialties", ["magic"]),
        ("kinds", ["surgery"]),
    ]:
        body = assert_error(
            client.post(f"{API}/clinicians", headers=headers(admin), json={**base, field: value}), 422, (field,)
        )
        if field == "specialties":
            assert "radiology" in str(body["errors"])  # the allowed values are listed
    medic = make_user("medic")
    assert_error(
        client.post(f"{API}/clinicians", headers=headers(admin), json={**base, "user_id": medic.id}), 422, ("user_id",)
    )


def test_availability_validation(client, make_clinician, headers):
    clinician = make_clinician()
    url = f"{API}/clinicians/{clinician.id}/availability"
    cases = [
        ({"weekly": [{"day": "monday", "start": "08:00", "end": "12:00"}]}, ("weekly", "0", "day")),
        ({"weekly": [{"day": "mon", "start": "8am", "end": "12:00"}]}, ("weekly", "0", "start")),
        ({"weekly": [{"day": "mon", "start": "12:00", "end": "08:00"}]}, ("weekly", "0", "end")),
        (
            {
                "weekly": [
                    {"day": "mon", "start": "08:00", "end": "12:00"},
                    {"day": "mon", "start": "11:00", "end": "13:00"},
                ]
            },
            ("weekly",),
        ),
        ({"weekly": [], "overrides": [{"date": "2026-13-01", "windows": []}]}, ("overrides", "0", "date")),
        ({"weekly": [], "slot_minutes": 0}, ("slot_minutes",)),
        ({"weekly": [], "buffer_minutes": -5}, ("buffer_minutes",)),
    ]
    for body, path in cases:
        assert_error(client.put(url, json=body, headers=headers(clinician.user)), 422, path)


def test_slot_search_filters_by_specialty_language_kind_and_mission(
    client, make_clinician, make_user, headers, now_frozen
):
    from tests.factories import MissionFactory

    radiologist = make_clinician(specialties=["radiology"], languages=["en", "ne"], timezone="Asia/Kathmandu")
    psychiatrist = make_clinician(specialties=["psychiatry"], languages=["fr", "en"], timezone="Africa/Nairobi")
    other_mission = MissionFactory()
    make_clinician(specialties=["radiology"], languages=["fr"], mission_=other_mission)
    medic = make_user("medic")
    window = {"from": iso(at("2026-12-01T00:00")), "to": iso(at("2026-12-02T00:00")), "limit": 500}

    def search(**params):
        resp = client.get(f"{API}/slots", query_string={**window, **params}, headers=headers(medic))
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()["items"]

    assert {s["clinician_id"] for s in search()} == {radiologist.id, psychiatrist.id}
    assert {s["clinician_id"] for s in search(specialty="radiology")} == {radiologist.id}
    assert {s["clinician_id"] for s in search(language="fr")} == {psychiatrist.id}
    assert {s["clinician_id"] for s in search(kind="mental_health")} == {psychiatrist.id}
    items = search()
    assert [s["start"] for s in items] == sorted(s["start"] for s in items)
    # Kathmandu 08:00 (UTC+05:45) is 02:15Z; Nairobi 08:00 (UTC+3) is 05:00Z.
    assert min(s["start"] for s in search(specialty="radiology")).startswith("2026-12-01T02:15")
    assert min(s["start"] for s in search(specialty="psychiatry")).startswith("2026-12-01T05:00")
    assert_error(
        client.get(f"{API}/slots", query_string={"specialty": "magic"}, headers=headers(medic)),
        422,
        ("specialty",),
        location="query",
    )
    assert_error(
        client.get(
            f"{API}/slots",
            query_string={"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
            headers=headers(medic),
        ),
        422,
        ("to",),
        location="query",
    )


def test_slot_search_excludes_booked_times_and_pages_with_a_cursor(
    client, make_clinician, make_user, headers, book, now_frozen
):
    clinician = make_clinician(slot_minutes=30, buffer_minutes=0)
    medic = make_user("medic")
    assert book(medic, clinician, at("2026-12-01T09:00")).status_code == 201
    params = {"from": iso(at("2026-12-01T08:00")), "to": iso(at("2026-12-01T11:00")), "limit": 3}
    page = client.get(f"{API}/slots", query_string=params, headers=headers(medic)).get_json()
    assert [s["start"][11:16] for s in page["items"]] == ["08:00", "08:30", "09:30"]
    assert page["next_cursor"]
    rest = client.get(
        f"{API}/slots", query_string={**params, "cursor": page["next_cursor"]}, headers=headers(medic)
    ).get_json()
    assert [s["start"][11:16] for s in rest["items"]] == ["10:00", "10:30"] and rest["next_cursor"] is None


def test_slots_as_a_fhir_bundle_validate_with_fhir_resources(client, make_clinician, make_user, headers, now_frozen):
    make_clinician(specialties=["dermatology"])
    resp = client.get(
        f"{API}/slots",
        query_string={"format": "fhir", "from": iso(at("2026-12-01T08:00")), "to": iso(at("2026-12-01T10:00"))},
        headers=headers(make_user("medic")),
    )
    assert resp.status_code == 200 and resp.mimetype == "application/fhir+json"
    bundle = Bundle.model_validate(resp.get_json())
    assert bundle.type == "searchset" and len(bundle.entry) == 4
    slot = bundle.entry[0].resource
    assert slot.get_resource_type() == "Slot" and slot.status == "free"
    assert slot.start.isoformat().startswith("2026-12-01T08:00")


def test_pages_concatenate_to_the_whole_search(client, make_clinician, make_user, headers, book, now_frozen):
    from config.extensions import db
    from telemed.scheduling.slots import find_slots

    medic = make_user("medic")
    clinicians = [
        make_clinician(timezone=tz, slot_minutes=slot, buffer_minutes=buffer)
        for tz, slot, buffer in (("Pacific/Auckland", 30, 0), ("Asia/Kathmandu", 20, 10), ("America/New_York", 45, 5))
    ]
    for clinician, start in zip(clinicians, ("2026-12-01T20:00", "2026-12-02T04:15", "2026-12-02T14:00"), strict=False):
        assert book(medic, clinician, at(start)).status_code == 201
    start, end = at("2026-12-01T00:00"), at("2026-12-04T00:00")
    whole = find_slots(db.session, mission_id=medic.mission_id, start=start, end=end)
    assert len(whole) > 100
    pages, cursor = [], None
    while True:
        params = {"from": iso(start), "to": iso(end), "limit": 37, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{API}/slots", query_string=params, headers=headers(medic)).get_json()
        pages += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [(s["start"], s["clinician_id"]) for s in pages] == [
        (iso(s["start"]).replace("Z", "+00:00"), s["clinician_id"]) for s in whole
    ]
