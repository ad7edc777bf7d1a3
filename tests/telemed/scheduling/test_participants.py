"""Invited participants (telemed.scheduling.participants): the clinician invites an interpreter or a second
clinician of the mission; 422 naming the field, 403/404 for who may not, 409 when the consultation is final,
over or store-and-forward, or the user is already invited; every cell of the visibility table by part; each
invitee's own join token, checked at every step of the call; a revocation removes the invitee at once."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import jwt as pyjwt
import pytest
from sqlalchemy.exc import IntegrityError

from config.extensions import db
from core.models import AuditEntry
from realtime.models import Event
from telemed.scheduling import exports
from telemed.scheduling.models import Consultation, Participant
from tests.helpers import assert_error
from tests.telemed.scheduling.test_store_forward import png_bytes
from tests.telemed.test_video import ALL_DAY, call_setup, connect, events  # noqa: F401 - fixtures

API = "/api/v1/telemed"


def invite(client, headers, actor, cid, user, part="interpreter", language="fr"):
    body = {"user_id": user.id if hasattr(user, "id") else user, "part": part}
    if language is not None:
        body["language"] = language
    return client.post(f"{API}/consultations/{cid}/participants", json=body, headers=headers(actor))


@pytest.fixture
def diagnostic(client, make_clinician, make_user, book, headers, app, tmp_path):
    """A diagnostic video consultation starting in 10 minutes, a clinical note and an attachment in it."""
    app.extensions["settings"] = app.extensions["settings"].with_(UPLOAD_DIR=str(tmp_path))
    clinician = make_clinician(weekly=ALL_DAY)
    medic = make_user("medic")
    start = (datetime.now(timezone.utc) + timedelta(minutes=10)).replace(second=0, microsecond=0)
    consultation = book(medic, clinician, start, duration=30).get_json()
    cid = consultation["id"]
    note = client.post(
        f"{API}/consultations/{cid}/notes",
        json={"kind": "clinical", "text": "wound clean"},
        headers=headers(clinician.user),
    )
    assert note.status_code == 201, note.get_json()
    uploaded = client.post(
        f"{API}/consultations/{cid}/attachments",
        headers=headers(medic),
        data={"file": (io.BytesIO(png_bytes()), "wound.png")},
        content_type="multipart/form-data",
    )
    assert uploaded.status_code == 201, uploaded.get_json()
    return clinician, medic, consultation


def test_invite_list_revoke_with_audit_and_events(client, headers, make_user, diagnostic):
    clinician, medic, consultation = diagnostic
    cid = consultation["id"]
    interpreter = make_user("member", display_name="Mme Interprète")
    made = invite(client, headers, clinician.user, cid, interpreter, language="sg")
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["part"] == "interpreter" and body["language"] == "sg" and body["active"] is True
    assert body["name"] == "Mme Interprète" and body["invited_by"] == clinician.user.id
    assert datetime.fromisoformat(body["expires_at"]) == datetime.fromisoformat(consultation["end"])
    audit = db.session.execute(
        db.select(AuditEntry).where(AuditEntry.action == "telemed.participant.invite")
    ).scalar_one()
    assert audit.detail["participant_id"] == body["id"] and audit.subject_id == cid
    [event] = db.session.execute(db.select(Event).where(Event.type == "consult.updated")).scalars().all()[-1:]
    assert f"user:{interpreter.id}" in event.rooms and event.data["change"] == "participants"
    assert "reason" not in event.data

    # The invitee sees it among their invitations; the patient side sees who is invited.
    mine = client.get(f"{API}/invitations", headers=headers(interpreter)).get_json()["items"]
    assert [(i["id"], i["consultation"]["id"]) for i in mine] == [(body["id"], cid)]
    listed = client.get(f"{API}/consultations/{cid}/participants", headers=headers(medic)).get_json()["items"]
    assert [p["id"] for p in listed] == [body["id"]]

    # The same user twice: 409 naming the invitation.
    again = invite(client, headers, clinician.user, cid, interpreter, language="fr")
    assert assert_error(again, 409)["participant_id"] == body["id"]

    revoked = client.delete(f"{API}/consultations/{cid}/participants/{body['id']}", headers=headers(clinician.user))
    assert revoked.status_code == 200, revoked.get_json()
    assert revoked.get_json()["active"] is False and revoked.get_json()["revoked_at"]
    last = db.session.execute(db.select(Event).order_by(Event.id.desc()).limit(1)).scalar_one()
    assert f"user:{interpreter.id}" in last.rooms  # the revoked invitee hears of it too
    assert db.session.execute(
        db.select(AuditEntry).where(AuditEntry.action == "telemed.participant.revoke")
    ).scalar_one()
    assert_error(
        client.delete(f"{API}/consultations/{cid}/participants/{body['id']}", headers=headers(clinician.user)), 409
    )
    assert_error(client.delete(f"{API}/consultations/{cid}/participants/nope", headers=headers(clinician.user)), 404)
    assert client.get(f"{API}/invitations", headers=headers(interpreter)).get_json()["items"] == []
    assert_error(client.get(f"{API}/consultations/{cid}", headers=headers(interpreter)), 404)
    # Revoked, then invited again: a new row (the partial unique index counts active ones only).
    again = invite(client, headers, clinician.user, cid, interpreter)
    assert again.status_code == 201
    # The invitation ends with the consultation: a reschedule moves it.
    later = datetime.fromisoformat(consultation["start"]) + timedelta(hours=2)
    moved = client.post(
        f"{API}/consultations/{cid}/reschedule", json={"start": later.isoformat()}, headers=headers(medic)
    )
    assert moved.status_code == 200, moved.get_json()
    [active] = [
        p
        for p in client.get(f"{API}/consultations/{cid}/participants", headers=headers(medic)).get_json()["items"]
        if p["active"]
    ]
    assert active["id"] == again.get_json()["id"]
    assert datetime.fromisoformat(active["expires_at"]) == datetime.fromisoformat(moved.get_json()["end"])


def test_invalid_invitations_name_the_field(client, headers, make_user, make_clinician, mission, diagnostic):
    from tests.factories import MissionFactory

    clinician, medic, consultation = diagnostic
    cid = consultation["id"]
    member = make_user("member")
    assert_error(invite(client, headers, clinician.user, cid, member, language=None), 422, ("language",))
    assert_error(invite(client, headers, clinician.user, cid, member, language="xx"), 422, ("language",))
    part = assert_error(invite(client, headers, clinician.user, cid, member, part="guest"), 422, ("part",))
    assert "interpreter" in str(part["errors"]) and "clinician" in str(part["errors"])
    # A clinician invitee is a clinician with a profile; and has no language.
    assert_error(
        invite(client, headers, clinician.user, cid, member, part="clinician", language=None), 422, ("user_id",)
    )
    second = make_clinician()
    assert_error(invite(client, headers, clinician.user, cid, second.user, part="clinician"), 422, ("language",))
    # Unknown, disabled, of another mission, or already a participant.
    elsewhere = make_user("member", MissionFactory())
    disabled = make_user("member", active=False)
    for who in ("0" * 36, "x", elsewhere.id, disabled.id, medic.id, clinician.user_id):
        assert_error(invite(client, headers, clinician.user, cid, who), 422, ("user_id",))
    for body in (
        {"part": "interpreter", "language": "fr"},
        {"user_id": member.id, "username": member.username, "part": "interpreter", "language": "fr"},
    ):
        assert_error(
            client.post(f"{API}/consultations/{cid}/participants", json=body, headers=headers(clinician.user)),
            422,
            ("user_id",),
        )
    # By username: a user of this mission only.
    by_name = {"part": "interpreter", "language": "fr"}
    url = f"{API}/consultations/{cid}/participants"
    elsewhere_named = client.post(
        url, json={**by_name, "username": elsewhere.username}, headers=headers(clinician.user)
    )
    assert_error(elsewhere_named, 422, ("username",))
    named = client.post(url, json={**by_name, "username": member.username}, headers=headers(clinician.user))
    assert named.status_code == 201 and named.get_json()["user_id"] == member.id, named.get_json()


def test_who_may_invite_and_when(client, headers, make_user, make_clinician, book, diagnostic, call_setup):
    clinician, medic, consultation = diagnostic
    cid = consultation["id"]
    member = make_user("member")
    # The booking medic, a coordinator: 403; an admin of the mission: allowed for a diagnostic consultation.
    assert_error(invite(client, headers, medic, cid, member), 403)
    assert_error(invite(client, headers, make_user("coordinator"), cid, member), 403)
    assert invite(client, headers, make_user("admin"), cid, member).status_code == 201
    # Never an admin into a mental-health consultation (they cannot see it: 404).
    psychiatrist, patient, mental, _ticket = call_setup
    assert_error(invite(client, headers, make_user("admin"), mental["id"], make_user("member")), 404)
    assert invite(client, headers, psychiatrist.user, mental["id"], make_user("member")).status_code == 201
    # A mental-health second clinician is a psychiatrist or psychologist.
    general = make_clinician()
    assert_error(
        invite(client, headers, psychiatrist.user, mental["id"], general.user, "clinician", None), 422, ("user_id",)
    )
    # Final: 409 with the allowed states.
    done = client.post(
        f"{API}/consultations/{cid}/status", json={"status": "cancelled", "reason": "evacuated"}, headers=headers(medic)
    )
    assert done.status_code == 200, done.get_json()
    refused = assert_error(invite(client, headers, clinician.user, cid, make_user("member")), 409)
    assert refused["allowed"] == ["booked", "checked_in", "in_progress"]
    # Store-and-forward: no live session to invite into.
    async_ = book(medic, clinician, None, modality="async").get_json()
    assert (
        "video"
        in assert_error(invite(client, headers, clinician.user, async_["id"], member), 409)["allowed_modalities"]
    )


def test_visibility_by_part(client, headers, make_user, make_clinician, diagnostic, frozen_clock):
    clinician, medic, consultation = diagnostic
    cid = consultation["id"]
    interpreter = make_user("member")
    second = make_clinician()
    assert invite(client, headers, clinician.user, cid, interpreter).status_code == 201
    assert invite(client, headers, clinician.user, cid, second.user, "clinician", None).status_code == 201

    def codes(user):
        return {
            what: client.get(f"{API}/consultations/{cid}{path}", headers=headers(user)).status_code
            for what, path in (
                ("consultation", ""),
                ("notes", "/notes"),
                ("attachments", "/attachments"),
                ("replies", "/replies"),
                ("participants", "/participants"),
                ("join", "/join"),
            )
        }

    assert codes(interpreter) == {
        "consultation": 200,
        "notes": 403,
        "attachments": 403,
        "replies": 403,
        "participants": 200,
        "join": 200,
    }
    assert codes(second.user) == dict.fromkeys(
        ("consultation", "notes", "attachments", "replies", "participants", "join"), 200
    )
    # The clinical reason is for those who treat: the interpreter sees the consultation without it.
    seen = {
        who: client.get(f"{API}/consultations/{cid}", headers=headers(user)).get_json()
        for who, user in (("interpreter", interpreter), ("second", second.user), ("patient", medic))
    }
    assert seen["interpreter"]["reason"] is None and seen["interpreter"]["start"] == consultation["start"]
    assert seen["second"]["reason"] == seen["patient"]["reason"] == consultation["reason"] is not None
    assert db.session.get(Consultation, cid).reason == consultation["reason"]  # nothing written to the row
    notes = client.get(f"{API}/consultations/{cid}/notes", headers=headers(second.user)).get_json()["items"]
    assert [n["text"] for n in notes] == ["wound clean"]
    [attachment] = client.get(f"{API}/consultations/{cid}/attachments", headers=headers(second.user)).get_json()[
        "items"
    ]
    got = client.get(f"{API}/consultations/{cid}/attachments/{attachment['id']}", headers=headers(second.user))
    assert got.status_code == 200 and got.data == png_bytes()
    assert_error(
        client.get(f"{API}/consultations/{cid}/attachments/{attachment['id']}", headers=headers(interpreter)), 403
    )
    upload = client.post(
        f"{API}/consultations/{cid}/attachments",
        headers=headers(interpreter),
        data={"file": (io.BytesIO(png_bytes()), "x.png")},
        content_type="multipart/form-data",
    )
    assert_error(upload, 403)
    assert_error(
        client.post(f"{API}/consultations/{cid}/replies", json={"text": "hi"}, headers=headers(interpreter)), 403
    )
    # Invitees never write notes, never change the status.
    note = {"kind": "clinical", "text": "x"}
    assert_error(client.post(f"{API}/consultations/{cid}/notes", json=note, headers=headers(second.user)), 403)
    for user in (interpreter, second.user):
        status = {"status": "cancelled", "reason": "x"}
        assert_error(client.post(f"{API}/consultations/{cid}/status", json=status, headers=headers(user)), 403)
    # Each join token is bound to its user and part.
    secret = exports._video_secret(client.application.extensions["settings"])
    for user, part in ((interpreter, "interpreter"), (second.user, "second_clinician"), (medic, "participant")):
        token = client.get(f"{API}/consultations/{cid}/join", headers=headers(user)).get_json()["token"]
        claims = pyjwt.decode(token, secret, algorithms=["HS256"], audience="jitsi")["context"]["user"]
        assert claims["id"] == user.id and claims["part"] == part and claims["moderator"] is False
    # After the consultation's end the invitations are over: the consultation is unknown to them again.
    frozen_clock(datetime.fromisoformat(consultation["end"].replace("Z", "+00:00")) + timedelta(seconds=1))
    assert codes(interpreter)["consultation"] == 404 and codes(second.user)["notes"] == 404


def test_psychotherapy_notes_stay_with_their_author(client, headers, make_user, make_clinician, call_setup):
    psychiatrist, patient, mental, _ticket = call_setup
    cid = mental["id"]
    for kind, text in (("clinical", "PHQ-9 reviewed"), ("psychotherapy", "transference themes")):
        note = client.post(
            f"{API}/consultations/{cid}/notes", json={"kind": kind, "text": text}, headers=headers(psychiatrist.user)
        )
        assert note.status_code == 201, note.get_json()
    colleague = make_clinician(specialties=("psychology",))
    interpreter = make_user("member")
    assert invite(client, headers, psychiatrist.user, cid, colleague.user, "clinician", None).status_code == 201
    assert invite(client, headers, psychiatrist.user, cid, interpreter, language="ar").status_code == 201
    seen = client.get(f"{API}/consultations/{cid}/notes", headers=headers(colleague.user)).get_json()["items"]
    assert [(n["kind"], n["text"]) for n in seen] == [("clinical", "PHQ-9 reviewed")]
    assert_error(client.get(f"{API}/consultations/{cid}/notes", headers=headers(interpreter)), 403)
    author = client.get(f"{API}/consultations/{cid}/notes", headers=headers(psychiatrist.user)).get_json()["items"]
    assert {n["kind"] for n in author} == {"clinical", "psychotherapy"}
    # Every read of the mental-health consultation by an invitee is audited like anyone's.
    reads = db.session.execute(
        db.select(AuditEntry).where(
            AuditEntry.action == "telemed.consultation.read", AuditEntry.actor_id == colleague.user_id
        )
    ).scalars()
    assert {r.detail["what"] for r in reads} >= {"notes"}


def test_the_database_keeps_one_active_invitation_per_user_and_the_language_rule(make_user, diagnostic):
    clinician, _medic, consultation = diagnostic
    user = make_user("member")
    row = {
        "consultation_id": consultation["id"],
        "mission_id": user.mission_id,
        "user_id": user.id,
        "invited_by": clinician.user_id,
    }
    db.session.add(Participant(part="interpreter", language="fr", **row))
    db.session.commit()
    for extra in ({"part": "interpreter", "language": "ar"}, {"part": "clinician"}, {"part": "guest"}):
        db.session.add(Participant(**extra, **row))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
    # The language rule: required for an interpreter, absent otherwise (a revoked row, so no clash above).
    revoked = {**row, "revoked_at": datetime.now(timezone.utc)}
    for extra in ({"part": "interpreter"}, {"part": "clinician", "language": "fr"}):
        db.session.add(Participant(**extra, **revoked))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_three_party_call_and_a_revoked_interpreter_is_removed(
    client, headers, make_user, make_clinician, connect, call_setup
):
    psychiatrist, patient, mental, ticket = call_setup
    cid = mental["id"]
    interpreter = make_user("member", display_name="Interpreter Sango")
    made = invite(client, headers, psychiatrist.user, cid, interpreter, language="sg").get_json()

    doctor = connect(psychiatrist.user)
    doctor_sid = doctor.emit(
        "call.join", {"consultation_id": cid, "token": ticket(psychiatrist.user)["token"]}, callback=True
    )["sid"]
    sids = {}
    for who in (patient, interpreter):
        sock = connect(who)
        ack = sock.emit("call.join", {"consultation_id": cid, "token": ticket(who)["token"]}, callback=True)
        assert ack["ok"] and ack["admitted"] is False, ack  # the waiting room holds invitees too
        sids[who.id] = (sock, ack["sid"])
        assert doctor.emit("call.admit", {"consultation_id": cid, "sid": ack["sid"]}, callback=True)["ok"]
    patient_sock, patient_sid = sids[patient.id]
    interp_sock, interp_sid = sids[interpreter.id]
    [admitted] = events(interp_sock, "call.admitted")
    assert sorted(p["sid"] for p in admitted["peers"]) == sorted([doctor_sid, patient_sid])
    assert {p["part"] for p in admitted["peers"]} == {"clinician", "participant"}
    assert [p["part"] for p in events(patient_sock, "call.peer") if p["sid"] == interp_sid] == ["interpreter"]
    # The interpreter signals and chats like anyone in the call.
    assert interp_sock.emit(
        "call.signal", {"consultation_id": cid, "to": patient_sid, "data": {"candidate": {}}}, callback=True
    )["ok"]
    assert interp_sock.emit("call.chat", {"consultation_id": cid, "text": "Je traduis."}, callback=True)["ok"]
    assert events(doctor, "call.chat")[-1]["text"] == "Je traduis."
    # A token kept from before the revocation is refused at the next step; the revocation removes them now.
    kept = ticket(interpreter)["token"]
    revoked = client.delete(f"{API}/consultations/{cid}/participants/{made['id']}", headers=headers(psychiatrist.user))
    assert revoked.status_code == 200
    assert events(interp_sock, "call.removed")
    assert interp_sid in [e["sid"] for e in events(doctor, "call.left")]
    assert interp_sid in [e["sid"] for e in events(patient_sock, "call.left")]
    assert interp_sock.emit("call.chat", {"consultation_id": cid, "text": "still here?"}, callback=True)["code"] == 403
    again = interp_sock.emit("call.join", {"consultation_id": cid, "token": kept}, callback=True)
    assert again["code"] == 403 and "revoked" in again["message"], again
    assert_error(client.get(f"{API}/consultations/{cid}/join", headers=headers(interpreter)), 404)

    # Revoked by another process (no hook here): refused and removed at the invitee's next step.
    colleague = make_clinician(specialties=("psychology",))
    second = invite(client, headers, psychiatrist.user, cid, colleague.user, "clinician", None).get_json()
    sock = connect(colleague.user)
    ack = sock.emit("call.join", {"consultation_id": cid, "token": ticket(colleague.user)["token"]}, callback=True)
    assert doctor.emit("call.admit", {"consultation_id": cid, "sid": ack["sid"]}, callback=True)["ok"]
    db.session.execute(
        db.update(Participant).where(Participant.id == second["id"]).values(revoked_at=datetime.now(timezone.utc))
    )
    db.session.commit()
    signal = {"consultation_id": cid, "to": doctor_sid, "data": {"candidate": {}}}
    assert sock.emit("call.signal", signal, callback=True)["code"] == 403
    assert events(sock, "call.removed") and ack["sid"] in [e["sid"] for e in events(doctor, "call.left")]
