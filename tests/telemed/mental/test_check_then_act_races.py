"""Check-then-act decided by the database (issue 17, item 3): PostgreSQL with real threads. SQLite has a single
writer, so nothing races there; its serial behaviour is covered by the domain tests."""

from __future__ import annotations

from collections import Counter

import pytest

from casevac.requests.models import Casualty
from config.extensions import db
from telemed.mental.models import SelfReferral
from telemed.scheduling.models import Consultation
from tests.casevac.conftest import body as casevac_body
from tests.telemed.conftest import make_clinician, now_frozen, race  # noqa: F401 - fixtures
from tests.telemed.mental.fixtures import make_mh_clinician, member  # noqa: F401 - fixtures

BASE = "/api/v1/telemed"


@pytest.fixture
def app(pg_app):
    return pg_app


def _referral(client, headers, member) -> str:
    response = client.post(f"{BASE}/self-referrals", json={"reason": "cannot sleep"}, headers=headers(member))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["id"]


def _starts(count: int) -> list[str]:
    # Tuesday 2026-12-01, every half hour from 08:00 UTC (the clinician works 08:00-17:00 UTC).
    return [f"2026-12-01T{8 + i // 2:02d}:{(i % 2) * 30:02d}:00Z" for i in range(count)]


def test_ten_parallel_bookings_of_one_self_referral_at_different_starts_give_one_201(
    app, client, headers, member, make_mh_clinician, now_frozen
):
    psychiatrist = make_mh_clinician()
    from telemed.scheduling.clinicians import clinician_of_user

    clinician_id = clinician_of_user(db.session, psychiatrist.id).id
    referral_id = _referral(client, headers, member)
    token = headers(member)

    def attempt(start):
        return lambda c: c.post(
            f"{BASE}/self-referrals/{referral_id}/book",
            json={"clinician_id": clinician_id, "start": start},
            headers=token,
        ).status_code

    codes = race(app, [attempt(start) for start in _starts(10)])
    assert codes == Counter({201: 1, 409: 9}), codes
    db.session.remove()
    consultations = (
        db.session.execute(db.select(Consultation).where(Consultation.patient_user_id == member.id)).scalars().all()
    )
    assert len(consultations) == 1
    referral = db.session.get(SelfReferral, referral_id)
    assert referral.status == "booked" and referral.consultation_id == consultations[0].id


def test_bookings_racing_a_close_of_the_referral_leave_no_stray_consultation(
    app, client, headers, member, make_mh_clinician, now_frozen
):
    psychiatrist = make_mh_clinician()
    from telemed.scheduling.clinicians import clinician_of_user

    clinician_id = clinician_of_user(db.session, psychiatrist.id).id
    referral_id = _referral(client, headers, member)
    token = headers(member)

    def book(start):
        return lambda c: c.post(
            f"{BASE}/self-referrals/{referral_id}/book",
            json={"clinician_id": clinician_id, "start": start},
            headers=token,
        ).status_code

    def close():
        return lambda c: c.post(f"{BASE}/self-referrals/{referral_id}/close", headers=token).status_code

    codes = race(app, [book(start) for start in _starts(5)] + [close() for _ in range(5)])
    assert codes[201] <= 1 and 500 not in codes, codes
    db.session.remove()
    referral = db.session.get(SelfReferral, referral_id)
    consultations = (
        db.session.execute(db.select(Consultation).where(Consultation.patient_user_id == member.id)).scalars().all()
    )
    # Booked (then possibly closed): exactly the consultation it names. Closed first: none at all.
    assert [c.id for c in consultations] == ([referral.consultation_id] if referral.consultation_id else [])
    assert codes[201] == len(consultations)


def test_ten_parallel_casualties_for_one_missing_patient_give_one_201(app, client, headers, make_user):
    medic = make_user("medic")
    token = headers(medic)
    filing = casevac_body(
        patients={"urgent": 1, "urgent_surgical": 0, "priority": 0, "routine": 0, "convenience": 0}, litter=1
    )
    created = client.post("/api/v1/casevac/requests", json=filing, headers=token)
    assert created.status_code == 201, created.get_data(as_text=True)
    request_id = created.get_json()["id"]

    def add(i):
        return lambda c: c.post(
            f"/api/v1/casevac/requests/{request_id}/casualties",
            json={"zap": f"Z-{i}", "mechanism": "blast"},
            headers=token,
        ).status_code

    codes = race(app, [add(i) for i in range(10)])
    assert codes == Counter({201: 1, 409: 9}), codes
    db.session.remove()
    assert (
        db.session.execute(
            db.select(db.func.count()).select_from(Casualty).where(Casualty.request_id == request_id)
        ).scalar_one()
        == 1
    )
