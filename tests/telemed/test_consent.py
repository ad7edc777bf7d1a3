"""Consent before a consultation (telemed/consent): the texts in force, append-only versioned records
visible to the patient, and join refused with a 409 naming what is missing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from config.extensions import db
from telemed.consent import texts
from tests.helpers import assert_error

API = "/api/v1/telemed"
ALL_DAY = [{"day": d, "start": "00:00", "end": "24:00"} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]


def test_join_needs_the_patients_consent_to_the_text_in_force(client, make_clinician, make_user, book, headers):
    clinician = make_clinician(weekly=ALL_DAY)
    patient = make_user("member")
    start = (datetime.now(timezone.utc) + timedelta(minutes=5)).replace(second=0, microsecond=0)
    medic = make_user("medic")
    consultation = book(medic, clinician, start, patient={"user_id": patient.id}).get_json()
    assert "id" in consultation, consultation
    url = f"{API}/consultations/{consultation['id']}/join"

    body = assert_error(client.get(url, headers=headers(patient)), 409)
    assert body["missing"] == {"kind": "diagnostic", "version": texts.current("diagnostic")["version"]}
    assert "consent" in body["message"]
    # The clinician and the medic who booked need none.
    assert client.get(url, headers=headers(clinician.user)).status_code == 200
    assert client.get(url, headers=headers(medic)).status_code == 200

    shown = client.get(f"{API}/consent-texts", headers=headers(patient)).get_json()["items"]
    diagnostic = next(t for t in shown if t["kind"] == "diagnostic")
    assert diagnostic["text"] and diagnostic["version"] == texts.current("diagnostic")["version"]

    # An old version, a bad kind: refused, naming what is allowed.
    old = client.post(f"{API}/consents", json={"kind": "diagnostic", "version": "2000-01-01"}, headers=headers(patient))
    assert assert_error(old, 409)["current_version"] == diagnostic["version"]
    bad = client.post(f"{API}/consents", json={"kind": "surgery", "version": "x"}, headers=headers(patient))
    assert_error(bad, 422, ("kind",))

    made = client.post(
        f"{API}/consents", json={"kind": "diagnostic", "version": diagnostic["version"]}, headers=headers(patient)
    )
    assert made.status_code == 201, made.get_json()
    record = made.get_json()
    assert record["text_sha256"] == diagnostic["sha256"] and record["patient_id"] == patient.id
    again = client.post(
        f"{API}/consents", json={"kind": "diagnostic", "version": diagnostic["version"]}, headers=headers(patient)
    )
    assert again.status_code == 200 and again.get_json()["id"] == record["id"]
    assert client.get(url, headers=headers(patient)).status_code == 200

    # Visible to the patient (theirs only), and a mental-health consultation needs its own consent.
    assert [r["id"] for r in client.get(f"{API}/consents", headers=headers(patient)).get_json()["items"]] == [
        record["id"]
    ]
    other = make_user("member")
    assert client.get(f"{API}/consents", headers=headers(other)).get_json()["items"] == []
    assert client.get(f"{API}/consents").status_code == 401


@pytest.mark.parametrize("statement", ["UPDATE consent_records SET version = 'forged'", "DELETE FROM consent_records"])
def test_consent_records_are_append_only_in_sql(client, make_user, headers, statement):
    patient = make_user("member")
    version = texts.current("mental_health")["version"]
    made = client.post(f"{API}/consents", json={"kind": "mental_health", "version": version}, headers=headers(patient))
    assert made.status_code == 201
    with pytest.raises(DatabaseError, match="append-only"):
        db.session.execute(text(statement))
        db.session.flush()
    db.session.rollback()
    assert db.session.execute(text("SELECT version FROM consent_records")).scalars().all() == [version]
