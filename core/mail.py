"""The mail outbox: messages are rows written in the transaction of the change that causes them; a sweeper task
delivers due rows over SMTP.

- `enqueue` adds a row (nothing for a user without an e-mail address or a disabled one); `withdraw` cancels
  the pending rows about a record (a cancelled or moved consultation's reminder).
- `deliver` (the sweeper task `mail.deliver`) claims each due row with a conditional UPDATE committed before it
  sends, so two processes never send the same row; a claim lapses after CLAIM_SECONDS (a sender that died).
  A temporary failure (connection refused or lost, a 4xx reply) retries with backoff (1, 2, 4 ... minutes,
  at most an hour; MAX_ATTEMPTS in all); a permanent one (a 5xx reply to the message) is recorded as `failed`
  at once. A server that cannot be reached ends the run: the other rows wait, unclaimed, for the next one.
- With SMTP_HOST unset nothing is sent: rows wait until they expire (`expires_at`).

A row is marked sent after the server accepted it; a process killed in between would send it again after the
claim lapses (the same Message-ID, so mail clients show it once). Logs name the row and the SMTP reply code,
never the address or the text.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from config.extensions import db
from core import clock
from core.models import OutgoingMail, User
from core.records import update_where

log = logging.getLogger(__name__)

CLAIM_SECONDS = 300
MAX_ATTEMPTS = 10
BATCH = 50


def enqueue(
    session,
    *,
    recipient: User,
    mission_id: str,
    kind: str,
    subject_type: str,
    subject_id: str,
    subject: str,
    body: str,
    now: datetime,
    link_path: str | None = None,
    calendar: bytes | None = None,
    calendar_method: str | None = None,
    expires_at: datetime | None = None,
) -> OutgoingMail | None:
    """Add a message to the caller's transaction; None when the recipient has no address or is disabled."""
    if not recipient.email or not recipient.active:
        return None
    row = OutgoingMail(
        mission_id=mission_id,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        recipient_id=recipient.id,
        to_address=recipient.email,
        subject=subject[:200],
        body=body,
        link_path=link_path,
        calendar=calendar.decode() if calendar is not None else None,
        calendar_method=calendar_method,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        expires_at=expires_at,
        created_at=now,
    )
    session.add(row)
    return row


def withdraw(
    session, *, subject_type: str, subject_id: str, kinds: tuple[str, ...], recipient_id: str | None = None
) -> int:
    """Cancel the pending rows of these kinds about this record (in the caller's transaction); only those to
    `recipient_id` when given."""
    conditions = [
        OutgoingMail.subject_type == subject_type,
        OutgoingMail.subject_id == subject_id,
        OutgoingMail.kind.in_(kinds),
        OutgoingMail.status == "pending",
    ]
    if recipient_id is not None:
        conditions.append(OutgoingMail.recipient_id == recipient_id)
    return update_where(session, OutgoingMail, *conditions, status="cancelled")


def deliver(session, *, now: datetime, settings) -> int:
    """Send the due rows (the sweeper task): returns how many were sent."""
    update_where(
        session, OutgoingMail, OutgoingMail.status == "pending", OutgoingMail.expires_at <= now, status="expired"
    )
    session.commit()
    if not settings.SMTP_HOST:
        return 0
    due = (
        session.execute(
            db.select(OutgoingMail.id)
            .where(OutgoingMail.status.in_(("pending", "sending")), OutgoingMail.next_attempt_at <= now)
            .order_by(OutgoingMail.next_attempt_at, OutgoingMail.id)
            .limit(BATCH)
        )
        .scalars()
        .all()
    )
    sent = 0
    connection = None
    try:
        for row_id in due:
            if not _claim(session, row_id, now):
                continue  # another process has it
            row = session.get(OutgoingMail, row_id, populate_existing=True)
            try:
                connection = connection or _connect(settings)
                connection.send_message(_message(row, settings, now), settings.MAIL_FROM, [row.to_address])
            except smtplib.SMTPResponseException as exc:
                _failed(session, row, now, exc.smtp_code, exc.smtp_error, connection_level=connection is None)
                if connection is None:
                    break
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = next(iter(exc.recipients.values()))
                _failed(session, row, now, code, reply, connection_level=False)
            except (smtplib.SMTPException, OSError) as exc:
                # Refused, unreachable, timed out or cut: the server, not this message. Try the rest next run.
                _failed(session, row, now, None, type(exc).__name__, connection_level=True)
                break
            else:
                update_where(
                    session,
                    OutgoingMail,
                    OutgoingMail.id == row_id,
                    OutgoingMail.status == "sending",
                    status="sent",
                    sent_at=now,
                    last_error=None,
                )
                session.commit()
                sent += 1
    finally:
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()
    return sent


def _claim(session, row_id: str, now: datetime) -> bool:
    won = update_where(
        session,
        OutgoingMail,
        OutgoingMail.id == row_id,
        OutgoingMail.status.in_(("pending", "sending")),
        OutgoingMail.next_attempt_at <= now,
        status="sending",
        attempts=OutgoingMail.attempts + 1,
        next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS),
    )
    session.commit()  # the claim is visible to every other sender before this one talks to the server
    return won == 1


def _failed(session, row: OutgoingMail, now: datetime, code: int | None, reply, *, connection_level: bool) -> None:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    error = f"{code} {text}" if code else text
    permanent = code is not None and code >= 500 and not connection_level
    values = {"last_error": error[:300]}
    if permanent or row.attempts >= MAX_ATTEMPTS:
        values["status"] = "failed"
    else:
        values.update(status="pending", next_attempt_at=now + backoff(row.attempts))
    update_where(session, OutgoingMail, OutgoingMail.id == row.id, OutgoingMail.status == "sending", **values)
    session.commit()
    log.warning(
        "mail %s (%s) not sent, attempt %d: %s%s",
        row.id,
        row.kind,
        row.attempts,
        code or "no reply",
        "" if values["status"] == "pending" else ", given up",
    )


def backoff(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: 1, 2, 4 ... minutes, at most an hour."""
    return clock.backoff(attempts, first=timedelta(minutes=1), at_most=timedelta(hours=1))


def _connect(settings) -> smtplib.SMTP:
    connection = smtplib.SMTP(settings.SMTP_HOST, settings.SMTP_PORT, timeout=settings.SMTP_TIMEOUT_SECONDS)
    try:
        connection.ehlo()
        if settings.SMTP_STARTTLS:
            connection.starttls(context=ssl.create_default_context())
            connection.ehlo()
        if settings.SMTP_USER:
            connection.login(settings.SMTP_USER, settings.SMTP_PASSWORD)
    except BaseException:
        connection.close()
        raise
    return connection


def _message(row: OutgoingMail, settings, now: datetime) -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = settings.MAIL_FROM
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Date"] = format_datetime(now)
    # Stable across retries: a message sent twice (a sender killed after the server accepted it) shows once.
    message["Message-ID"] = f"<{row.id}@{settings.MAIL_FROM.rsplit('@', 1)[-1]}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    body = row.body
    if row.link_path and settings.PUBLIC_URL:
        body += f"\n\n{settings.PUBLIC_URL.rstrip('/')}{row.link_path}\n"
    message.set_content(body, cte="quoted-printable")
    if row.calendar:
        # RFC 6047 (iMIP): the iTIP object as text/calendar with the method parameter of its METHOD; base64 keeps
        # its CRLF line ends and folding byte for byte.
        message.add_alternative(
            row.calendar.encode(),
            maintype="text",
            subtype="calendar",
            cte="base64",
            params={"method": row.calendar_method, "charset": "UTF-8"},
        )
    return message
