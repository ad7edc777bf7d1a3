"""SQLite: racing bookings are serialised by the single writer; the booking transaction's first statement
takes the write lock, so the check sees every earlier booking (no BUSY_SNAPSHOT, no double booking)."""

from __future__ import annotations

from collections import Counter

import pytest

from config.extensions import db
from telemed.scheduling.models import Consultation
from tests.telemed.conftest import race as _race

API = "/api/v1/telemed"


@pytest.fixture
def app(sqlite_app):
    return sqlite_app


def test_racing_bookings_on_sqlite_one_wins(app, make_clinician, make_user, headers, now_frozen):
    clinician = make_clinician()
    token = headers(make_user("medic"))
    body = {
        "kind": "diagnostic",
        "clinician_id": clinician.id,
        "modality": "audio",
        "reason": "x",
        "start": "2026-12-01T09:00:00Z",
        "patient": {"name": "Pte E"},
    }
    codes = _race(app, [lambda c: c.post(f"{API}/consultations", json=body, headers=token).status_code] * 12)
    assert codes == Counter({201: 1, 409: 11}), codes
    db.session.remove()
    assert db.session.execute(db.select(db.func.count()).select_from(Consultation)).scalar_one() == 1
