"""Races against PostgreSQL with real threads: the database decides (ARCHITECTURE.md, concurrency)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from config.extensions import db
from telemed.scheduling import booking
from telemed.scheduling.models import Consultation
from tests.telemed.conftest import at
from tests.telemed.conftest import race as _race

API = "/api/v1/telemed"


@pytest.fixture
def app(pg_app):
    """PostgreSQL only: SQLite has a single writer, so nothing races there."""
    return pg_app


def test_fifty_racing_bookings_of_one_slot_exactly_one_wins(app, make_clinician, make_user, headers, now_frozen):
    clinician = make_clinician()
    medics = [make_user("medic") for _ in range(5)]
    body = {
        "kind": "diagnostic",
        "clinician_id": clinician.id,
        "modality": "video",
        "reason": "x",
        "start": "2026-12-01T09:00:00Z",
        "patient": {"name": "Pte B"},
    }
    tokens = [headers(medics[i % 5]) for i in range(50)]

    def attempt(i):
        return lambda c: c.post(f"{API}/consultations", json=body, headers=tokens[i]).status_code

    codes = _race(app, [attempt(i) for i in range(50)])
    assert codes == Counter({201: 1, 409: 49}), codes
    db.session.remove()
    assert db.session.execute(db.select(db.func.count()).select_from(Consultation)).scalar_one() == 1


def test_fifty_racing_overlapping_bookings_at_different_starts(app, make_clinician, make_user, headers, now_frozen):
    # Starts five minutes apart inside one hour: every pair overlaps (60-minute consultations).
    clinician = make_clinician(slot_minutes=60)
    medic = make_user("medic")
    token = headers(medic)

    def attempt(i):
        start = f"2026-12-01T09:{(i % 12) * 5:02d}:00Z"
        body = {
            "kind": "diagnostic",
            "clinician_id": clinician.id,
            "modality": "video",
            "reason": "x",
            "start": start,
            "duration_minutes": 60,
            "patient": {"name": "Pte C"},
        }
        return lambda c: c.post(f"{API}/consultations", json=body, headers=token).status_code

    codes = _race(app, [attempt(i) for i in range(50)])
    assert codes == Counter({201: 1, 409: 49}), codes


def test_reschedule_race_with_bookings_into_one_free_time(app, make_clinician, make_user, headers, book, now_frozen):
    # Ten booked consultations try to move to 14:00 while ten new bookings try to take it: one wins.
    clinician = make_clinician()
    medic = make_user("medic")
    ids = [
        book(medic, clinician, at(f"2026-12-01T{8 + i // 2:02d}:{(i % 2) * 30:02d}")).get_json()["id"]
        for i in range(10)
    ]
    token = headers(medic)
    new = {
        "kind": "diagnostic",
        "clinician_id": clinician.id,
        "modality": "video",
        "reason": "x",
        "start": "2026-12-01T14:00:00Z",
        "patient": {"name": "Pte D"},
    }

    def move(cid):
        return lambda c: c.post(
            f"{API}/consultations/{cid}/reschedule", json={"start": "2026-12-01T14:00:00Z"}, headers=token
        ).status_code

    def take():
        return lambda c: c.post(f"{API}/consultations", json=new, headers=token).status_code

    codes = _race(app, [move(cid) for cid in ids] + [take() for _ in range(10)])
    assert codes[200] + codes[201] == 1 and codes[409] == 19, codes
    db.session.remove()
    rows = db.session.execute(db.select(Consultation)).scalars().all()
    starts = [c.start.strftime("%H:%M") for c in rows]
    assert starts.count("14:00") == 1
    # A consultation that lost keeps its old time: 10 or 11 rows, every old time still held but one at most.
    assert len(set(starts)) == len(starts)


def test_exclusion_constraint_refuses_overlap_written_around_the_service(
    app, make_clinician, make_user, book, now_frozen
):
    clinician = make_clinician()
    medic = make_user("medic")
    first = db.session.get(Consultation, book(medic, clinician, at("2026-12-01T09:00")).get_json()["id"])
    clone = Consultation(
        mission_id=first.mission_id,
        clinician_id=clinician.id,
        kind="diagnostic",
        modality="video",
        status="booked",
        start=first.start + timedelta(minutes=10),
        end=first.end + timedelta(minutes=10),
        duration_minutes=30,
        block_start=first.start + timedelta(minutes=10),
        block_end=first.end + timedelta(minutes=10),
        reason="x",
        booked_by=medic.id,
        room="r-clone",
        history=[],
    )
    db.session.add(clone)
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_reschedule_onto_a_held_time_past_the_check_is_a_409_from_the_constraint(
    app, make_clinician, make_user, book, headers, client, now_frozen, monkeypatch
):
    # The exclusion constraint fires on the UPDATE that moves the row: with the service's own check skipped
    # (as when a racing booking commits between the check and the move), the answer is still a 409.
    clinician = make_clinician()
    medic = make_user("medic")
    book(medic, clinician, at("2026-12-01T09:00"))
    moving = book(medic, clinician, at("2026-12-01T11:00")).get_json()["id"]
    monkeypatch.setattr(booking, "_check_time", lambda *args, **kwargs: None)
    resp = client.post(
        f"{API}/consultations/{moving}/reschedule", json={"start": "2026-12-01T09:10:00Z"}, headers=headers(medic)
    )
    assert resp.status_code == 409, resp.get_json()
    assert resp.get_json()["reason"] == "overlaps_booking"
    db.session.remove()
    assert db.session.get(Consultation, moving).start.strftime("%H:%M") == "11:00"
