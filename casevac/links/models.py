"""Message gateways (an SMS gateway or a satellite messenger relay, each with its own secret) and the
messages they delivered: one row per inbound message, unique per (gateway, message id) and per
(IMEI, MOMSN), so a gateway's retry is answered from the row instead of acting twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from config.extensions import db
from core import clock
from core.db import IdColumn, UTCDateTime

KINDS = ("sms", "sbd")
CHANNELS = ("sms", "twilio", "smssync", "sbd")
OUTCOMES = ("filed", "completed", "status", "refused", "rejected")


class MessageGateway(db.Model):
    __tablename__ = "casevac_gateways"
    audit_subject = "casevac_gateway"  # the subject_type of its audit rows
    __table_args__ = (
        CheckConstraint("kind IN ('sms', 'sbd')", name="kind"),
        UniqueConstraint("mission_id", "name", name="uq_casevac_gateways_mission_id_name"),
    )
    id: Mapped[str] = IdColumn()
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(8))
    # sha256 of the secret (256 random bits: a fast hash is enough, and it is looked up by its hash).
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class InboundMessage(db.Model):
    """What arrived and what was answered; never the message text (the request holds what was filed)."""

    __tablename__ = "casevac_inbound_messages"
    __table_args__ = (
        UniqueConstraint("gateway_id", "message_id", name="uq_casevac_inbound_messages_gateway_id_message_id"),
        UniqueConstraint("imei", "momsn", name="uq_casevac_inbound_messages_imei_momsn"),
        CheckConstraint("channel IN ('sms', 'twilio', 'smssync', 'sbd')", name="channel"),
        CheckConstraint("outcome IN ('filed', 'completed', 'status', 'refused', 'rejected')", name="outcome"),
        CheckConstraint("(message_id IS NOT NULL) OR (imei IS NOT NULL AND momsn IS NOT NULL)", name="identified"),
        Index("ix_casevac_inbound_messages_user_received", "user_id", "received_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gateway_id: Mapped[str] = mapped_column(ForeignKey("casevac_gateways.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    # SMS: the gateway's message id. Satellite: the device's IMEI and its message sequence number.
    message_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    imei: Mapped[str | None] = mapped_column(String(15), nullable=True)
    momsn: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sender: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    outcome: Mapped[str] = mapped_column(String(12))
    reply: Mapped[str | None] = mapped_column(Text, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class OutboundMessage(db.Model):
    """A short text pushed back to a medic who filed by SMS or satellite, written in the transaction of the
    status change it tells (the transactional outbox of casevac.links.outbound); one per request and status.
    Its id is the uuid SMSSync confirms (POST ?task=sent)."""

    __tablename__ = "casevac_outbound_messages"
    __table_args__ = (
        UniqueConstraint("request_id", "status", name="uq_casevac_outbound_messages_request_id_status"),
        CheckConstraint("channel IN ('twilio', 'smssync', 'sbd')", name="channel"),
        CheckConstraint("state IN ('pending', 'sending', 'sent', 'failed')", name="state"),
        Index("ix_casevac_outbound_messages_state_due", "state", "next_attempt_at"),
    )
    id: Mapped[str] = IdColumn()
    gateway_id: Mapped[str] = mapped_column(ForeignKey("casevac_gateways.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    # The phone number (E.164) or the IMEI the request came from.
    recipient: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The provider's id of the message (Twilio's sid, RockBLOCK's message id); errors without credentials.
    provider_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
