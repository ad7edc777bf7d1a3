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
