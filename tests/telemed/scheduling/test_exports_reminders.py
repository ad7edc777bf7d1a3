"""iCalendar and FHIR outputs checked by independent libraries; reminders exactly once; the demo seed."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import icalendar
from fhir.resources.R4B.appointment import Appointment

from config.extensions import db
from core import seed
from realtime import sweeper
from realtime.models import Event
from telemed.scheduling.models import Clinician
from tests.telemed.conftest import at

API = "/api/v1/telemed"


def test_ics_invitation_parses_with_the_clinicians_zone_and_utc(
    client, make_clinician, make_user, book, headers, now_frozen
):
    surgeon = make_clinician(
        specialties=["trauma_surgery"],
        timezone="Europe/Oslo",
        weekly=[{"day": "tue", "start": "08:00", "end": "16:00"}],
    )
    medic = make_user("medic")
    consult = book(medic, surgeon, at("2026-12-01T09:00"), reason="SECRET-REASON").get_json()
    resp = client.get(f"{API}/consultations/{consult['id']}.ics", headers=headers(medic))
    assert resp.status_code == 200 and resp.mimetype == "text/calendar"
    cal = icalendar.Calendar.from_ical(resp.data)
    events = list(cal.walk("VEVENT"))
    assert len(events) == 1
    start = events[0].decoded("dtstart")
    assert start == at("2026-12-01T09:00")  # the same instant
    assert str(start.tzinfo) == "Europe/Oslo" and start.hour == 10  # shown in the clinician's zone
    assert events[0]["dtstart"].params["TZID"] == "Europe/Oslo"
    assert [tz["tzid"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Oslo"]
    assert "2026-12-01T09:00:00Z" in str(events[0]["description"])
    assert b"SECRET-REASON" not in resp.data
    assert events[0].decoded("dtend") - start == timedelta(minutes=30)


def test_fhir_appointment_validates_and_maps_the_lifecycle(
    client, make_clinician, make_user, book, headers, now_frozen
):
    clinician = make_clinician()
    medic = make_user("medic")
    patient = make_user("member")
    consult = book(medic, clinician, at("2026-12-01T09:00"), patient={"user_id": patient.id}).get_json()
    url = f"{API}/consultations/{consult['id']}/fhir"
    resp = client.get(url, headers=headers(medic))
    assert resp.status_code == 200 and resp.mimetype == "application/fhir+json"
    appointment = Appointment.model_validate(resp.get_json())
    assert appointment.status == "booked" and appointment.minutesDuration == 30
    assert appointment.cancelationReason is None
    assert {p.actor.reference for p in appointment.participant} == {
        f"Practitioner/{clinician.id}",
        f"Patient/{patient.id}",
    }
    client.post(
        f"{API}/consultations/{consult['id']}/status",
        json={"status": "noshow", "reason": "no signal"},
        headers=headers(clinician.user),
    )
    appointment = Appointment.model_validate(client.get(url, headers=headers(medic)).get_json())
    assert appointment.status == "noshow" and appointment.cancelationReason.text == "no signal"
    checked = book(medic, clinician, at("2026-12-01T11:00")).get_json()
    client.post(f"{API}/consultations/{checked['id']}/status", json={"status": "checked_in"}, headers=headers(medic))
    got = client.get(f"{API}/consultations/{checked['id']}/fhir", headers=headers(medic)).get_json()
    assert Appointment.model_validate(got).status == "checked-in"


def test_reminder_is_sent_once_to_the_participants(app, make_clinician, make_user, book, now_frozen):
    clinician = make_clinician()
    medic = make_user("medic")
    consult = book(medic, clinician, at("2026-12-01T09:00")).get_json()
    book(medic, clinician, at("2026-12-01T11:00"))
    task = sweeper.TASKS["telemed.reminders"]
    settings = app.extensions["settings"].with_(REMINDER_MINUTES_BEFORE=15)
    assert task(db.session, now=at("2026-12-01T08:44"), settings=settings) == 0
    assert task(db.session, now=at("2026-12-01T08:45"), settings=settings) == 1
    assert task(db.session, now=at("2026-12-01T08:50"), settings=settings) == 0
    reminders = db.session.execute(db.select(Event).where(Event.type == "consult.reminder")).scalars().all()
    assert len(reminders) == 1 and reminders[0].data["id"] == consult["id"]
    assert sorted(reminders[0].rooms) == sorted([f"user:{medic.id}", f"user:{clinician.user_id}"])
    assert reminders[0].data["minutes_to_start"] == 15


def test_demo_seed_creates_clinicians_in_several_zones_idempotently(app, now_frozen):
    from telemed.scheduling.slots import find_slots

    mission, users, _ = seed.seed_demo(db.session, password="demo-password-123")
    seed.seed_demo(db.session, password="demo-password-123")
    profiles = {c.user.username: c for c in db.session.execute(db.select(Clinician)).unique().scalars()}
    assert {
        "demo-clinician",
        "demo-psychiatrist",
        "demo-trauma-surgeon",
        "demo-radiologist",
        "demo-psychologist",
        "demo-paediatrician",
    } <= set(profiles)
    assert profiles["demo-clinician"].kinds == ["diagnostic"]
    assert "general_medicine" in profiles["demo-clinician"].specialties
    psychiatrist = profiles["demo-psychiatrist"]
    assert psychiatrist.specialties == ["psychiatry"] and {"fr", "en"} <= set(psychiatrist.languages)
    assert psychiatrist.kinds == ["mental_health"]
    zones = {c.timezone for c in profiles.values()}
    assert {"Europe/Oslo", "Asia/Kathmandu", "America/New_York", "Pacific/Auckland"} <= zones
    slots = find_slots(
        db.session,
        mission_id=mission.id,
        start=at("2026-12-01T00:00"),
        end=at("2026-12-08T00:00"),
        specialties=["psychiatry", "psychology"],
        language="fr",
    )
    assert slots and {s["clinician_id"] for s in slots} == {psychiatrist.id}
    first = slots[0]["start"].astimezone(ZoneInfo("Africa/Nairobi"))
    assert first.strftime("%H:%M") == "09:00"
