"""Missions, users and the append-only audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from config.extensions import db
from core import clock
from core.db import IdColumn, JSONType, UTCDateTime, one_of

ROLES = ("admin", "coordinator", "medic", "clinician", "member")
# pending -> sending (claimed) -> sent | pending (retry) | failed; pending -> cancelled | expired.
MAIL_STATUSES = ("pending", "sending", "sent", "failed", "cancelled", "expired")


class Mission(db.Model):
    __tablename__ = "missions"
    audit_subject = "mission"  # the subject_type of its audit rows
    id: Mapped[str] = IdColumn()
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Mission area centre, used as a default map view and for demo data.
    lat: Mapped[float | None] = mapped_column(nullable=True)
    lon: Mapped[float | None] = mapped_column(nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class User(db.Model):
    __tablename__ = "users"
    audit_subject = "user"  # the subject_type of its audit rows
    __table_args__ = (CheckConstraint("role IN ('admin','coordinator','medic','clinician','member')", name="role"),)
    id: Mapped[str] = IdColumn()
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"), index=True)
    superadmin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Field links (casevac.links): the SMS number (E.164) and the satellite messenger (IMEI) a medic files
    # from; each names one user only.
    phone: Mapped[str | None] = mapped_column(String(16), unique=True, nullable=True)
    imei: Mapped[str | None] = mapped_column(String(15), unique=True, nullable=True)
    # Where reminders and invitations are mailed (core.mail); stored lower-case, so unique per lower-case value.
    email: Mapped[str | None] = mapped_column(String(254), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    def __repr__(self) -> str:  # never show the hash
        return f"<User {self.username} {self.role}>"


class DeviceSession(db.Model):
    """A short bearer token for a field device (core.device_tokens), exchanged at login: 26 characters
    instead of a 460-character JWT on every request over 2G. Stored as its sha256; bound to the user's
    mission at issue; expires like the JWT; revoked by DELETE /auth/device-token."""

    __tablename__ = "device_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    mission_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:  # never show the hash
        return f"<DeviceSession {self.user_id}>"


class AuditEntry(db.Model):
    """Append-only (a database trigger refuses UPDATE and DELETE): who did what to which record."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, index=True)
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    mission_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    # Free text never goes here: detail holds field names and codes, not medical content.
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class OutgoingMail(db.Model):
    """The mail outbox (core.mail): one row per message and recipient, written in the transaction of the change
    that causes it; the sender claims due rows with a conditional UPDATE and marks each sent once."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        CheckConstraint(one_of("status", MAIL_STATUSES), name="status"),
        Index("ix_mail_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_mail_outbox_subject", "subject_type", "subject_id"),
    )
    id: Mapped[str] = IdColumn()
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"))
    # What the message is (e.g. "reminder", "invitation") and what it is about (e.g. a consultation).
    kind: Mapped[str] = mapped_column(String(32))
    subject_type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(64))
    recipient_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # The page of the app the message points to ("/me"): the sender prefixes PUBLIC_URL when it sends.
    link_path: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # An iTIP (RFC 5546) object sent as text/calendar; method=<calendar_method> beside the text.
    calendar: Mapped[str | None] = mapped_column(Text, nullable=True)
    calendar_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When a pending row is next due; while sending, when the claim lapses (a sender that died).
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # Not sent by then: expired (a reminder after the consultation is noise).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The SMTP reply of the last failure (code and text), never the message.
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
