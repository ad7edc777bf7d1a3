"""Reminders and RFC 5546 invitations by e-mail, delivered to a real SMTP server (aiosmtpd on a free port):
exactly once with two senders racing, withdrawn on cancel and move, retried while the server is down, a
permanent refusal recorded; the text/calendar part parsed back with a strict RFC 5545 line check."""

from __future__ import annotations

import email
import logging
import re
import socket
import threading
from datetime import timedelta
from email import policy

import icalendar
import pytest
from aiosmtpd.controller import Controller

from config.extensions import db
from core import clock, mail
from core.models import OutgoingMail
from realtime import sweeper
from realtime.models import Event
from telemed.scheduling.models import Consultation
from tests.telemed.conftest import at

API = "/api/v1/telemed"
CLINICIAN_NAME = "Dr Ñuñez-Ågren Þórsdóttir, médecin-chef de l'hôpital de niveau 2 à Bangui"


class Inbox:
    """aiosmtpd handler: keeps what it accepted; refuses RCPT to refused@ (550) and busy@ (451)."""

    def __init__(self):
        self.received: list[tuple[list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused@"):
            return "550 5.1.1 mailbox unavailable"
        if address.startswith("busy@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"

    def messages(self) -> list[email.message.EmailMessage]:
        with self.lock:
            return [email.message_from_bytes(raw, policy=policy.default) for _, raw in self.received]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def smtp_server():
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def inbox(smtp_server):
    controller, box = smtp_server
    with box.lock:
        box.received.clear()
    return box


def mail_settings(app, port: int):
    return app.extensions["settings"].with_(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        SMTP_STARTTLS=False,
        MAIL_FROM="medevac@mission.example",
        PUBLIC_URL="https://medevac.mission.example",
        REMINDER_MINUTES_BEFORE=15,
    )


@pytest.fixture
def settings(app, smtp_server):
    return mail_settings(app, smtp_server[0].port)


@pytest.fixture
def people(make_clinician, make_user):
    clinician = make_clinician(timezone="Europe/Oslo", display_name=CLINICIAN_NAME, email="clin.ic@mission.example")
    medic = make_user("medic", email="medic@mission.example")
    return clinician, medic


def deliver(settings, now) -> int:
    return mail.deliver(db.session, now=now, settings=settings)


def remind(settings, now) -> int:
    return sweeper.TASKS["telemed.reminders"](db.session, now=now, settings=settings)


def rows(**where) -> list[OutgoingMail]:
    db.session.expire_all()
    query = db.select(OutgoingMail).filter_by(**where).order_by(OutgoingMail.created_at, OutgoingMail.to_address)
    return db.session.execute(query).scalars().all()


def subject(message) -> str:
    # Python folds a long Subject right after the colon; the unfolded value keeps that one space.
    return message["Subject"].strip()


def calendar_part(message) -> tuple[str, bytes]:
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    return part.get_param("method"), part.get_payload(decode=True)


def strict_lines(data: bytes) -> list[str]:
    """RFC 5545 section 3.1: CRLF line ends only, physical lines of at most 75 octets, folded with CRLF then one
    space or tab, never inside a UTF-8 sequence. Returns the unfolded content lines."""
    assert data.endswith(b"\r\n")
    assert b"\r" not in data.replace(b"\r\n", b"") and b"\n" not in data.replace(b"\r\n", b"")
    physical = data[:-2].split(b"\r\n")
    for line in physical:
        assert len(line) <= 75, (len(line), line)
        line.decode("utf-8")  # raises if a fold split a multi-byte character
    assert any(line.startswith(b" ") for line in physical), "expected folded lines (the long name)"
    return re.sub(rb"\r\n[ \t]", b"", data).decode("utf-8").split("\r\n")[:-1]


def attendees(event) -> dict[str, dict]:
    values = event.get("ATTENDEE")
    values = values if isinstance(values, list) else [values]
    return {str(v): dict(v.params) for v in values}


def test_reminder_mail_is_delivered_once_with_two_senders_racing(app, client, people, book, settings, inbox):
    clinician, medic = people
    clock.freeze(at("2026-12-01T07:00"))
    consultation = book(medic, clinician, at("2026-12-01T09:00"), reason="SECRET-REASON").get_json()
    assert remind(settings, at("2026-12-01T08:44")) == 0
    assert remind(settings, at("2026-12-01T08:45")) == 1
    assert remind(settings, at("2026-12-01T08:46")) == 0  # the decision is taken once
    assert len(rows(kind="reminder")) == 2 and len(rows(kind="invitation")) == 2

    barrier, sent = threading.Barrier(2), []

    def sender():
        with app.app_context():
            barrier.wait()
            sent.append(deliver(settings, at("2026-12-01T08:45")))
            db.session.remove()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(sent) == 4, sent  # two invitations and two reminders, each sent by one of the two
    assert deliver(settings, at("2026-12-01T08:46")) == 0
    messages = inbox.messages()
    assert sorted(m["Message-ID"] for m in messages) == sorted({m["Message-ID"] for m in messages})
    reminders = {m["To"]: m for m in messages if subject(m).startswith("Reminder")}
    assert set(reminders) == {"clin.ic@mission.example", "medic@mission.example"}
    assert {r.status for r in rows()} == {"sent"} and {r.attempts for r in rows()} == {1}
    to_clinician = reminders["clin.ic@mission.example"].get_content()
    # In the recipient's zone: the clinician's (Europe/Oslo, 10:00), the medic's mission's (Africa/Bangui, 10:00).
    assert "10:00 Europe/Oslo (09:00 UTC)" in to_clinician and "https://medevac.mission.example/clinic" in to_clinician
    to_medic = reminders["medic@mission.example"].get_content()
    assert "10:00 Africa/Bangui (09:00 UTC)" in to_medic and "Starts in 15 minutes" in to_medic
    for message in messages:
        raw = message.as_string()
        assert "SECRET-REASON" not in raw and "Cpl A" not in raw
    room = db.session.get(Consultation, consultation["id"]).room
    assert all(room not in m.as_string() for m in messages)
    events = db.session.execute(db.select(Event).where(Event.type == "consult.reminder")).scalars().all()
    assert len(events) == 1  # the socket reminder as before


def test_cancel_withdraws_the_pending_reminder_and_mails_cancel(app, client, people, book, headers, settings, inbox):
    clinician, medic = people
    clock.freeze(at("2026-12-01T07:00"))
    consultation = book(medic, clinician, at("2026-12-01T09:00")).get_json()
    assert deliver(settings, at("2026-12-01T07:00")) == 2  # the REQUESTs
    assert remind(settings, at("2026-12-01T08:45")) == 1
    clock.freeze(at("2026-12-01T08:45"))
    resp = client.post(
        f"{API}/consultations/{consultation['id']}/status",
        json={"status": "cancelled", "reason": "evacuated"},
        headers=headers(medic),
    )
    assert resp.status_code == 200, resp.get_json()
    assert {r.status for r in rows(kind="reminder")} == {"cancelled"}
    assert deliver(settings, at("2026-12-01T08:45")) == 2
    messages = inbox.messages()
    assert not [m for m in messages if subject(m).startswith("Reminder")]
    cancels = [m for m in messages if subject(m).startswith("Cancelled")]
    requests = [m for m in messages if subject(m).startswith("Booked")]
    assert len(cancels) == 2 and len(requests) == 2
    method, data = calendar_part(cancels[0])
    assert method == "CANCEL"
    strict_lines(data)
    cal = icalendar.Calendar.from_ical(data)
    event = next(iter(cal.walk("VEVENT")))
    assert cal["METHOD"] == "CANCEL" and event["STATUS"] == "CANCELLED" and event["SEQUENCE"] == 1
    first = next(iter(icalendar.Calendar.from_ical(calendar_part(requests[0])[1]).walk("VEVENT")))
    assert event["UID"] == first["UID"] == f"{consultation['id']}@telemed" and first["SEQUENCE"] == 0
    assert str(event["ORGANIZER"]) == "mailto:clin.ic@mission.example"
    assert set(attendees(event)) == {"mailto:clin.ic@mission.example", "mailto:medic@mission.example"}
    assert all(p["RSVP"] == "FALSE" for p in attendees(event).values())


def test_reschedule_fires_no_reminder_for_the_old_time_and_one_for_the_new(
    app, client, people, book, headers, settings, inbox
):
    clinician, medic = people
    clock.freeze(at("2026-12-01T07:00"))
    consultation = book(medic, clinician, at("2026-12-01T09:00")).get_json()
    assert remind(settings, at("2026-12-01T08:45")) == 1  # the old time's reminder is decided, not yet mailed
    clock.freeze(at("2026-12-01T08:46"))
    resp = client.post(
        f"{API}/consultations/{consultation['id']}/reschedule",
        json={"start": "2026-12-01T11:00:00Z"},
        headers=headers(medic),
    )
    assert resp.status_code == 200, resp.get_json()
    assert {r.status for r in rows(kind="reminder")} == {"cancelled"}
    assert deliver(settings, at("2026-12-01T08:46")) == 2  # the moved REQUESTs only
    assert all(subject(m).startswith("Moved") for m in inbox.messages())
    method, data = calendar_part(inbox.messages()[0])
    event = next(iter(icalendar.Calendar.from_ical(data).walk("VEVENT")))
    assert method == "REQUEST" and event["SEQUENCE"] == 1 and event.decoded("dtstart") == at("2026-12-01T11:00")
    assert remind(settings, at("2026-12-01T09:00")) == 0  # the old time passes: nothing
    assert remind(settings, at("2026-12-01T10:45")) == 1
    assert remind(settings, at("2026-12-01T10:50")) == 0
    assert deliver(settings, at("2026-12-01T10:45")) == 2
    reminders = [m for m in inbox.messages() if subject(m).startswith("Reminder")]
    assert sorted(m["To"] for m in reminders) == ["clin.ic@mission.example", "medic@mission.example"]
    assert all("12:00 Europe/Oslo (11:00 UTC)" in m.get_content() for m in reminders if m["To"].startswith("clin"))


def test_server_down_is_retried_with_backoff_and_delivered_once_back(app, people, book, inbox):
    clinician, medic = people
    port = free_port()  # nothing listens there yet
    settings = mail_settings(app, port).with_(SMTP_TIMEOUT_SECONDS=3.0)
    t0 = at("2026-12-01T07:00")
    clock.freeze(t0)
    book(medic, clinician, at("2026-12-01T09:00"))
    assert deliver(settings, t0) == 0
    pending = rows()
    # The first row failed (connection refused) and the run stopped: the other waits, untouched.
    assert sorted(r.attempts for r in pending) == [0, 1] and {r.status for r in pending} == {"pending"}
    failed = next(r for r in pending if r.attempts == 1)
    assert failed.next_attempt_at == t0 + timedelta(minutes=1) and failed.last_error
    assert deliver(settings, t0 + timedelta(seconds=30)) == 0
    assert sorted(r.attempts for r in rows()) == [1, 1]  # the second row's first try; the first waits
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert deliver(settings, t0 + timedelta(seconds=59)) == 0  # still backing off
        assert deliver(settings, t0 + timedelta(minutes=2)) == 2
        assert deliver(settings, t0 + timedelta(minutes=10)) == 0
    finally:
        controller.stop()
    assert len(box.received) == 2 and {r.status for r in rows()} == {"sent"}
    assert mail.backoff(1) == timedelta(minutes=1) and mail.backoff(3) == timedelta(minutes=4)
    assert mail.backoff(20) == timedelta(hours=1)


def test_permanent_refusal_is_recorded_and_does_not_block_the_others(
    app, make_clinician, make_user, book, settings, inbox, caplog
):
    clinician = make_clinician(email="refused@mission.example")
    medic = make_user("medic", email="busy@mission.example")
    patient = make_user("member", email="patient@mission.example")
    clock.freeze(at("2026-12-01T07:00"))
    book(medic, clinician, at("2026-12-01T09:00"), patient={"user_id": patient.id})
    assert deliver(settings, at("2026-12-01T07:00")) == 1
    by_address = {r.to_address: r for r in rows()}
    assert by_address["refused@mission.example"].status == "failed"
    assert by_address["refused@mission.example"].last_error.startswith("550")
    assert by_address["busy@mission.example"].status == "pending"  # 451: temporary, retried
    assert by_address["busy@mission.example"].last_error.startswith("451")
    assert by_address["patient@mission.example"].status == "sent"
    assert [m["To"] for m in inbox.messages()] == ["patient@mission.example"]
    ours = " ".join(r.getMessage() for r in caplog.records if r.name == "core.mail")
    assert "550" in ours and "@" not in ours  # the log names the row and the reply code, not the address


def test_invitation_organizer_and_attendees_per_rfc_5546(app, client, make_clinician, make_user, book, headers):
    clinician = make_clinician(timezone="Europe/Oslo", display_name=CLINICIAN_NAME, email="clin@mission.example")
    medic = make_user("medic", email="medic@mission.example")
    patient = make_user("member", display_name='Pte "Bo" Ndongo')  # no address: urn:uuid
    clock.freeze(at("2026-12-01T07:00"))
    consultation = book(medic, clinician, at("2026-12-01T09:00"), patient={"user_id": patient.id}).get_json()
    data = client.get(f"{API}/consultations/{consultation['id']}.ics", headers=headers(medic)).data
    lines = strict_lines(data)
    assert "METHOD:REQUEST" in lines and any(line.startswith("ORGANIZER;") for line in lines)
    event = next(iter(icalendar.Calendar.from_ical(data).walk("VEVENT")))
    assert str(event["ORGANIZER"]) == "mailto:clin@mission.example"
    assert event["ORGANIZER"].params["CN"] == CLINICIAN_NAME
    people = attendees(event)
    assert people["mailto:clin@mission.example"] == {
        "CN": CLINICIAN_NAME,
        "ROLE": "CHAIR",
        "PARTSTAT": "ACCEPTED",
        "RSVP": "FALSE",
    }
    assert people["mailto:medic@mission.example"]["PARTSTAT"] == "ACCEPTED"  # they booked it
    assert people["mailto:medic@mission.example"]["ROLE"] == "OPT-PARTICIPANT"
    urn = next(a for a in people if a.startswith("urn:uuid:"))
    assert people[urn] == {
        "CN": "Pte 'Bo' Ndongo",
        "ROLE": "REQ-PARTICIPANT",
        "PARTSTAT": "NEEDS-ACTION",
        "RSVP": "TRUE",
    }
    assert event["DTSTAMP"] and event["SEQUENCE"] == 0 and event["STATUS"] == "CONFIRMED"
    # Only users with an address are mailed.
    assert sorted(r.to_address for r in rows(kind="invitation")) == ["clin@mission.example", "medic@mission.example"]


def test_without_smtp_host_nothing_is_sent_and_the_socket_reminder_still_is(app, people, book):
    clinician, medic = people
    clock.freeze(at("2026-12-01T07:00"))
    book(medic, clinician, at("2026-12-01T09:00"))
    unset = app.extensions["settings"].with_(REMINDER_MINUTES_BEFORE=15)
    assert not unset.SMTP_HOST
    assert remind(unset, at("2026-12-01T08:45")) == 1
    assert sweeper.run_once(db.session, now=at("2026-12-01T08:45"), settings=unset)["mail.deliver"] == 0
    assert {r.status for r in rows()} == {"pending"}
    assert db.session.execute(db.select(Event).where(Event.type == "consult.reminder")).scalars().all()
    deliver(unset, at("2026-12-01T09:30"))  # the consultation has ended: what was not sent expires
    assert {r.status for r in rows()} == {"expired"}


def test_a_reminder_already_sent_is_sent_again_once_for_the_new_time_and_mental_health_stays_unnamed(
    app, client, make_clinician, make_user, book, headers, settings, inbox
):
    psychiatrist = make_clinician(specialties=["psychiatry"], email="psy@mission.example")
    member = make_user("member", email="member@mission.example")
    clock.freeze(at("2026-12-01T07:00"))
    consultation = book(member, psychiatrist, at("2026-12-01T09:00"), kind="mental_health").get_json()
    assert remind(settings, at("2026-12-01T08:45")) == 1
    assert deliver(settings, at("2026-12-01T08:45")) == 4  # two invitations, two reminders
    clock.freeze(at("2026-12-01T08:50"))
    resp = client.post(
        f"{API}/consultations/{consultation['id']}/reschedule",
        json={"start": "2026-12-01T13:00:00Z"},
        headers=headers(member),
    )
    assert resp.status_code == 200, resp.get_json()
    assert remind(settings, at("2026-12-01T08:55")) == 0  # re-armed, but not due until 12:45
    assert remind(settings, at("2026-12-01T12:45")) == 1 and remind(settings, at("2026-12-01T12:50")) == 0
    assert deliver(settings, at("2026-12-01T12:45")) == 4  # the moved invitations, the new reminders
    subjects = sorted(subject(m) for m in inbox.messages())
    assert [s.split(":")[0] for s in subjects] == ["Booked"] * 2 + ["Moved"] * 2 + ["Reminder"] * 4
    assert all("Confidential consultation" in s for s in subjects)
    assert not any("mental" in m.as_string().lower() for m in inbox.messages())


def test_an_invited_interpreter_is_mailed_the_invitation_reminded_and_sent_a_cancel_when_revoked(
    app, client, people, book, headers, settings, inbox, make_user
):
    clinician, medic = people
    interpreter = make_user("member", email="interp@mission.example", display_name="Interprète Sango")
    clock.freeze(at("2026-12-01T07:00"))
    consultation = book(medic, clinician, at("2026-12-01T09:00")).get_json()
    cid = consultation["id"]
    assert deliver(settings, at("2026-12-01T07:00")) == 2  # the REQUESTs to clinician and medic
    invited = client.post(
        f"{API}/consultations/{cid}/participants",
        json={"part": "interpreter", "user_id": interpreter.id, "language": "sg"},
        headers=headers(clinician.user),
    )
    assert invited.status_code == 201, invited.get_json()
    assert deliver(settings, at("2026-12-01T07:01")) == 1  # theirs alone; the others' copies stand
    [request] = [m for m in inbox.messages() if "interp@mission.example" in m["To"]]
    assert subject(request).startswith("Invited") and "You are invited." in request.get_body(("plain",)).get_content()
    method, data = calendar_part(request)
    event = next(iter(icalendar.Calendar.from_ical(data).walk("VEVENT")))
    assert method == "REQUEST" and event["SEQUENCE"] == 0 and event["STATUS"] == "CONFIRMED"
    assert attendees(event)["mailto:interp@mission.example"]["ROLE"] == "REQ-PARTICIPANT"
    assert set(attendees(event)) == {
        "mailto:clin.ic@mission.example",
        "mailto:medic@mission.example",
        "mailto:interp@mission.example",
    }
    ics = client.get(f"{API}/consultations/{cid}.ics", headers=headers(medic)).data
    assert "mailto:interp@mission.example" in attendees(next(iter(icalendar.Calendar.from_ical(ics).walk("VEVENT"))))

    # The reminder goes to the interpreter too; then the invitation is revoked before the next reminder is sent.
    assert remind(settings, at("2026-12-01T08:45")) == 1
    assert sorted(r.to_address for r in rows(kind="reminder")) == [
        "clin.ic@mission.example",
        "interp@mission.example",
        "medic@mission.example",
    ]
    clock.freeze(at("2026-12-01T08:46"))
    revoked = client.delete(
        f"{API}/consultations/{cid}/participants/{invited.get_json()['id']}", headers=headers(clinician.user)
    )
    assert revoked.status_code == 200, revoked.get_json()
    assert [r.status for r in rows(kind="reminder", to_address="interp@mission.example")] == ["cancelled"]
    inbox.received.clear()
    assert deliver(settings, at("2026-12-01T08:46")) == 3  # two reminders, and the interpreter's CANCEL
    messages = inbox.messages()
    assert sorted(m["To"].addresses[0].addr_spec for m in messages if subject(m).startswith("Reminder")) == [
        "clin.ic@mission.example",
        "medic@mission.example",
    ]
    [cancel] = [m for m in messages if subject(m).startswith("Cancelled")]
    assert "interp@mission.example" in cancel["To"]
    method, data = calendar_part(cancel)
    strict_lines(data)
    event = next(iter(icalendar.Calendar.from_ical(data).walk("VEVENT")))
    # RFC 5546 section 3.2.5, an attendee removed: no STATUS (the event stands), that attendee alone, SEQUENCE up.
    assert method == "CANCEL" and "STATUS" not in event and event["SEQUENCE"] == 1
    assert set(attendees(event)) == {"mailto:interp@mission.example"}
