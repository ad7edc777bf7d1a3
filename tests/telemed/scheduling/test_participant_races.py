"""Racing invitations and revocations against PostgreSQL with real threads: the partial unique index and the
conditional update decide (one active invitation per user; one revocation)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from config.extensions import db
from telemed.scheduling.models import Participant
from tests.telemed.conftest import at
from tests.telemed.conftest import race as _race

API = "/api/v1/telemed"


@pytest.fixture
def app(pg_app):
    """PostgreSQL only: SQLite has a single writer, so nothing races there."""
    return pg_app


def test_twenty_racing_invitations_of_one_user_make_one_and_ten_revocations_revoke_once(
    app, client, make_clinician, make_user, book, headers, frozen_clock
):
    frozen_clock(at("2026-11-30T06:00"))
    clinician = make_clinician()
    medic = make_user("medic")
    consultation = book(medic, clinician, at("2026-11-30T06:00") + timedelta(hours=3)).get_json()
    url = f"{API}/consultations/{consultation['id']}/participants"
    interpreter = make_user("member")
    body = {"user_id": interpreter.id, "part": "interpreter", "language": "fr"}
    token = headers(clinician.user)

    codes = _race(app, [lambda c: c.post(url, json=body, headers=token).status_code for _ in range(20)])
    assert codes == Counter({201: 1, 409: 19}), codes
    db.session.remove()
    [row] = db.session.execute(db.select(Participant)).scalars().all()

    codes = _race(app, [lambda c: c.delete(f"{url}/{row.id}", headers=token).status_code for _ in range(10)])
    assert codes == Counter({200: 1, 409: 9}), codes
