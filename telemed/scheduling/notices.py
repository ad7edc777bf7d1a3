"""What a consultation's participants are mailed (core.mail outbox rows, written in the transaction of the change):

- the invitation, an iTIP object (RFC 5546, exports.calendar): METHOD:REQUEST on booking and on every move
  (SEQUENCE grows), METHOD:CANCEL on cancellation, to those an earlier invitation went to; an invited interpreter
  or second clinician gets a REQUEST when invited and a CANCEL when the invitation is revoked;
- the reminder, when the sweeper decides it (booking.send_reminders): once per booking time.

A cancelled, moved, no-show or finished consultation's pending reminder and invitation rows are withdrawn in the
same transaction (cal.com's bug: a moved meeting kept its old reminders). Store-and-forward consultations hold no
time: no invitation, no reminder. The text names the kind (exports.KIND_LABELS), the modality, the clinician and
the time in the recipient's zone (a clinician's profile zone, else the mission's), and the recipient's page of
the app; never the reason, a patient's name, a note or a join token.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from config.extensions import db
from core import clock, mail
from core.models import Mission, OutgoingMail, User
from telemed import policy
from telemed.scheduling import exports
from telemed.scheduling.models import Consultation

SUBJECT_TYPE = "consultation"
REMINDER, INVITATION = "reminder", "invitation"
# Where each role finds its consultations (the pages of web/).
PAGES = {"clinician": "/clinic", "member": "/me"}


def changed(session, consultation: Consultation) -> None:
    """After a booking, a move or a status change, in its transaction: withdraw what is pending about the old
    state, then mail the invitation of the new one (REQUEST while booked, CANCEL once cancelled)."""
    if consultation.modality == "async" or consultation.status in ("checked_in", "in_progress"):
        return
    earlier = _invited(session, consultation) if consultation.status == "cancelled" else set()
    mail.withdraw(session, subject_type=SUBJECT_TYPE, subject_id=consultation.id, kinds=(REMINDER, INVITATION))
    if consultation.status == "booked":
        moved = exports.sequence(consultation) > 0
        _send(session, consultation, _recipients(session, consultation), "Moved" if moved else "Booked", "REQUEST")
    elif consultation.status == "cancelled":
        recipients = [u for u in _recipients(session, consultation) if u.id in earlier]
        _send(session, consultation, recipients, "Cancelled", "CANCEL")


def invited(session, consultation: Consultation, user: User) -> None:
    """An interpreter or second clinician was invited: they get the invitation (REQUEST, the attendee list with
    them in it, RFC 5546 section 2.1.4 on adding an attendee); the others' copies stay as they are."""
    if consultation.modality != "async" and consultation.status in ("booked", "checked_in", "in_progress"):
        _send(session, consultation, _with_address(session, [user.id]), "Invited", "REQUEST")


def uninvited(session, consultation: Consultation, user_id: str) -> None:
    """An invitation was revoked: what is pending for that person is withdrawn, and if an invitation reached
    them they get a CANCEL of the event (RFC 5546 section 3.2.5, an attendee removed)."""
    earlier = _invited(session, consultation)
    mail.withdraw(
        session,
        subject_type=SUBJECT_TYPE,
        subject_id=consultation.id,
        kinds=(REMINDER, INVITATION),
        recipient_id=user_id,
    )
    if user_id in earlier:
        calendar = exports.calendar(session, consultation, uninvited=user_id)
        _send(session, consultation, _with_address(session, [user_id]), "Cancelled", "CANCEL", calendar=calendar)


def remind(session, consultation: Consultation, *, now: datetime) -> None:
    """The reminder mail, in the transaction of the sweeper's reminder decision."""
    minutes = max(0, int((consultation.start - now).total_seconds() // 60))
    for user in _recipients(session, consultation):
        _enqueue(
            session,
            consultation,
            user,
            REMINDER,
            subject=f"Reminder: {exports.KIND_LABELS[consultation.kind]} in {minutes} minutes",
            line=f"Starts in {minutes} minutes.",
            now=now,
        )


LINES = {"Booked": "Booked.", "Moved": "Moved to this time.", "Cancelled": "Cancelled.", "Invited": "You are invited."}


def _send(
    session, consultation: Consultation, recipients: list[User], what: str, method: str, *, calendar=None
) -> None:
    if not recipients:
        return
    now = clock.now()
    calendar = calendar or exports.calendar(session, consultation)
    for user in recipients:
        _enqueue(
            session,
            consultation,
            user,
            INVITATION,
            subject=f"{what}: {exports.KIND_LABELS[consultation.kind]}, {_when(session, consultation, user)}",
            line=LINES[what],
            now=now,
            calendar=calendar,
            calendar_method=method,
        )


def _enqueue(
    session,
    consultation: Consultation,
    user: User,
    kind: str,
    *,
    subject: str,
    line: str,
    now: datetime,
    calendar: bytes | None = None,
    calendar_method: str | None = None,
) -> None:
    """One mail about the consultation to one recipient: the text around `line`, a link to the recipient's page;
    it lapses at the consultation's end (an outbox row, in the caller's transaction)."""
    mail.enqueue(
        session,
        recipient=user,
        mission_id=consultation.mission_id,
        kind=kind,
        subject_type=SUBJECT_TYPE,
        subject_id=consultation.id,
        subject=subject,
        body=_text(session, consultation, user, line),
        link_path=PAGES.get(user.role, "/"),
        now=now,
        calendar=calendar,
        calendar_method=calendar_method,
        expires_at=consultation.end,
    )


def _recipients(session, consultation: Consultation) -> list[User]:
    """Everyone the consultation's mail goes to: its participants and its invitees in force (policy.audience)."""
    return _with_address(session, policy.audience(consultation))


def _with_address(session, ids) -> list[User]:
    users = session.execute(db.select(User).where(User.id.in_(sorted(ids)), User.email.is_not(None))).scalars().all()
    return sorted((u for u in users if u.active), key=lambda u: u.id)


def _invited(session, consultation: Consultation) -> set[str]:
    """Who an invitation about this consultation went (or is going) to: only they are told of a cancellation."""
    rows = session.execute(
        db.select(OutgoingMail.recipient_id).where(
            OutgoingMail.subject_type == SUBJECT_TYPE,
            OutgoingMail.subject_id == consultation.id,
            OutgoingMail.kind == INVITATION,
            OutgoingMail.status.in_(("sending", "sent")),
        )
    )
    return set(rows.scalars())


def _zone(session, consultation: Consultation, user: User) -> str:
    if user.id == consultation.clinician.user_id:
        return consultation.clinician.timezone
    mission = session.get(Mission, consultation.mission_id)
    return mission.timezone if mission is not None else "UTC"


def _when(session, consultation: Consultation, user: User) -> str:
    zone = _zone(session, consultation, user)
    local = consultation.start.astimezone(ZoneInfo(zone))
    return f"{local:%a} {local.day} {local:%b %Y %H:%M} ({zone})"


def _text(session, consultation: Consultation, user: User, line: str) -> str:
    zone = _zone(session, consultation, user)
    local = consultation.start.astimezone(ZoneInfo(zone))
    utc = clock.as_utc(consultation.start)
    name = consultation.clinician.display_name or "your clinician"
    return (
        f"{exports.KIND_LABELS[consultation.kind]} ({consultation.modality}) with {name}. {line}\n\n"
        f"When: {local:%A} {local.day} {local:%B %Y, %H:%M} {zone} ({utc:%H:%M} UTC), "
        f"{consultation.duration_minutes} minutes.\n"
        "Join from the app, from 15 minutes before the start."
    )
