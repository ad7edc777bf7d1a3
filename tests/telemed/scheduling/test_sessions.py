"""Join tokens, notes (psychotherapy notes for their author alone), audit of mental-health reads, seams."""

from __future__ import annotations

from datetime import timedelta

import jwt as pyjwt

from config.extensions import db
from core.models import AuditEntry
from realtime.models import Event
from realtime.sockets import rooms_for
from telemed.scheduling import clinicians, exports
from telemed.scheduling.slots import find_slots
from tests.helpers import assert_error
from tests.telemed.conftest import at

API = "/api/v1/telemed"


def test_join_window_edges_and_participants_only(
    app, client, make_clinician, make_user, book, headers, frozen_clock, now_frozen
):
    clinician = make_clinician()
    medic = make_user("medic")
    patient = make_user("member")
    consultation = book(medic, clinician, at("2026-12-01T09:00"), patient={"user_id": patient.id}).get_json()
    url = f"{API}/consultations/{consultation['id']}/join"
    # The patient consented to the consent text in force (telemed/consent; without it join is 409).
    consent = client.post(
        f"{API}/consents", json={"kind": "diagnostic", "version": "2026-12-01"}, headers=headers(patient)
    )
    assert consent.status_code == 201, consent.get_json()

    frozen_clock(at("2026-12-01T08:44:59"))
    body = assert_error(client.get(url, headers=headers(clinician.user)), 409)
    assert body["valid_from"].startswith("2026-12-01T08:45")
    frozen_clock(at("2026-12-01T08:45"))
    tokens = {}
    for user in (clinician.user, medic, patient):
        resp = client.get(url, headers=headers(user))
        assert resp.status_code == 200, resp.get_json()
        tokens[user.id] = resp.get_json()
    rooms = {t["room"] for t in tokens.values()}
    assert len(rooms) == 1
    room = rooms.pop()
    assert consultation["id"] not in room and clinician.id not in room and len(room) >= 32
    assert len({t["token"] for t in tokens.values()}) == 3  # one per participant
    secret = exports._video_secret(app.extensions["settings"])
    claims = pyjwt.decode(
        tokens[patient.id]["token"],
        secret,
        algorithms=["HS256"],
        audience="jitsi",
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert claims["room"] == room and claims["context"]["user"]["id"] == patient.id
    assert claims["context"]["user"]["moderator"] is False
    assert claims["exp"] - claims["nbf"] == 45 * 60  # 15 minutes before the start to the end
    clinician_claims = pyjwt.decode(
        tokens[clinician.user_id]["token"],
        secret,
        algorithms=["HS256"],
        audience="jitsi",
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert clinician_claims["context"]["user"]["moderator"] is True

    assert_error(client.get(url, headers=headers(make_user("coordinator"))), 403)  # sees it, may not join
    assert_error(client.get(url, headers=headers(make_user("medic"))), 404)
    frozen_clock(at("2026-12-01T09:29:59"))
    assert client.get(url, headers=headers(patient)).status_code == 200
    frozen_clock(at("2026-12-01T09:30"))
    assert_error(client.get(url, headers=headers(patient)), 409)


def test_psychotherapy_note_is_readable_by_its_author_alone(
    client, make_clinician, make_user, book, headers, now_frozen
):
    psychiatrist = make_clinician(specialties=["psychiatry"], languages=["fr"])
    member = make_user("member")
    consultation = book(member, psychiatrist, at("2026-12-01T10:00"), kind="mental_health", patient={}).get_json()
    url = f"{API}/consultations/{consultation['id']}/notes"
    secret_text = "PSYCHOTHERAPY-NOTE-TEXT-42"
    resp = client.post(url, json={"kind": "psychotherapy", "text": secret_text}, headers=headers(psychiatrist.user))
    assert resp.status_code == 201
    resp = client.post(
        url, json={"kind": "clinical", "text": "sleep hygiene advised"}, headers=headers(psychiatrist.user)
    )
    assert resp.status_code == 201

    own = client.get(url, headers=headers(psychiatrist.user)).get_json()["items"]
    assert sorted(n["kind"] for n in own) == ["clinical", "psychotherapy"]
    patient_view = client.get(url, headers=headers(member))
    assert patient_view.status_code == 200
    assert [n["kind"] for n in patient_view.get_json()["items"]] == ["clinical"]
    assert secret_text not in patient_view.get_data(as_text=True)
    admin = make_user("admin", superadmin=True)
    for user in (admin, make_user("coordinator"), make_user("clinician")):
        resp = client.get(url, headers=headers(user))
        assert resp.status_code == 404 and secret_text not in resp.get_data(as_text=True)
    # Not in any other response, event or audit row.
    for path in (
        f"{API}/consultations/{consultation['id']}",
        f"{API}/consultations",
        f"{API}/consultations/{consultation['id']}/fhir",
        f"{API}/consultations/{consultation['id']}.ics",
    ):
        resp = client.get(path, headers=headers(psychiatrist.user))
        assert resp.status_code == 200 and secret_text not in resp.get_data(as_text=True)
    audit_page = client.get("/api/v1/audit", headers=headers(admin)).get_data(as_text=True)
    assert secret_text not in audit_page
    for event in db.session.execute(db.select(Event)).scalars():
        assert secret_text not in str(event.data)
    # A second mental-health clinician of the same consultation? There is none: another psychiatrist is
    # not a participant and gets 404; a diagnostic clinician may not write psychotherapy notes at all.
    doc = make_clinician()
    diag = book(make_user("medic"), doc, at("2026-12-01T11:00")).get_json()
    assert_error(
        client.post(
            f"{API}/consultations/{diag['id']}/notes",
            json={"kind": "psychotherapy", "text": "x"},
            headers=headers(doc.user),
        ),
        403,
    )


def test_every_read_of_a_mental_health_consultation_is_audited(
    client, make_clinician, make_user, book, headers, now_frozen
):
    psychologist = make_clinician(specialties=["psychology"])
    member = make_user("member")
    consultation = book(member, psychologist, at("2026-12-01T10:00"), kind="mental_health", patient={}).get_json()
    cid = consultation["id"]
    for path in (
        f"/consultations/{cid}",
        f"/consultations/{cid}/notes",
        f"/consultations/{cid}.ics",
        f"/consultations/{cid}/fhir",
        "/consultations",
    ):
        assert client.get(API + path, headers=headers(psychologist.user)).status_code == 200
    reads = (
        db.session.execute(
            db.select(AuditEntry).where(AuditEntry.action == "telemed.consultation.read", AuditEntry.subject_id == cid)
        )
        .scalars()
        .all()
    )
    assert sorted(r.detail["what"] for r in reads) == ["consultation", "fhir", "ics", "list", "notes"]
    assert {r.actor_id for r in reads} == {psychologist.user_id}


def test_mental_health_seams(app, make_clinician, make_user, now_frozen):
    from tests.factories import MissionFactory

    psychiatrist = make_clinician(specialties=["psychiatry"], languages=["fr", "en"])
    psychologist = make_clinician(specialties=["psychology"], languages=["en"], timezone="America/New_York")
    surgeon = make_clinician(specialties=["trauma_surgery"])
    elsewhere = make_clinician(specialties=["psychiatry"], mission_=MissionFactory())
    assert clinicians.is_mental_health_clinician(db.session, psychiatrist.user)
    assert not clinicians.is_mental_health_clinician(db.session, surgeon.user)
    assert not clinicians.is_mental_health_clinician(db.session, make_user("member"))
    users = clinicians.mental_health_clinicians(db.session, mission_id=psychiatrist.mission_id)
    assert {u.id for u in users} == {psychiatrist.user_id, psychologist.user_id}
    assert f"mission:{psychiatrist.mission_id}:mental_health" in rooms_for(psychiatrist.user)
    assert f"mission:{surgeon.mission_id}:mental_health" not in rooms_for(surgeon.user)
    slots = find_slots(
        db.session,
        mission_id=psychiatrist.mission_id,
        start=at("2026-12-01T00:00"),
        end=at("2026-12-02T00:00"),
        specialties=["psychiatry", "psychology"],
        language="fr",
        kind="mental_health",
        limit=3,
    )
    assert [s["clinician_id"] for s in slots] == [psychiatrist.id] * 3
    assert slots[0]["start"] == at("2026-12-01T08:00") and slots[0]["end"] - slots[0]["start"] == timedelta(minutes=30)
    assert elsewhere.id not in {
        s["clinician_id"]
        for s in find_slots(
            db.session, mission_id=psychiatrist.mission_id, start=at("2026-12-01T00:00"), end=at("2026-12-08T00:00")
        )
    }
