"""What the TAK gateway keeps: its place in the event log, which TAK uid filed which request, emergencies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from config.extensions import db
from core import clock
from core.db import UTCDateTime

EMERGENCY_KINDS = ("911", "troops_in_contact", "ring_the_bell")


class TakGatewayState(db.Model):
    """One row per (mission, TAK server): the last event-log seq sent there, and whether it is connected
    (read by /readyz). Several copies of one gateway share the row (a restart overlapping the old one)."""

    __tablename__ = "tak_gateway_state"
    __table_args__ = (UniqueConstraint("mission_id", "server"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"))
    # host:port of TAK_URL (never credentials).
    server: Mapped[str] = mapped_column(String(200))
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class TakRequestLink(db.Model):
    """A request filed from TAK: the event uid (its marker's uid on every TAK screen) and the device and
    callsign that filed it (where GeoChat answers go). Unique per mission: the database decides."""

    __tablename__ = "tak_request_links"
    __table_args__ = (UniqueConstraint("mission_id", "event_uid"),)
    request_id: Mapped[str] = mapped_column(ForeignKey("casevac_requests.id", ondelete="CASCADE"), primary_key=True)
    mission_id: Mapped[str] = mapped_column(String(36))
    event_uid: Mapped[str] = mapped_column(String(200))
    sender_uid: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sender_callsign: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class TakEmergency(db.Model):
    """An emergency beacon (b-a-o-tbl/opn/pan) seen by a gateway: raised once however often ATAK repeats it
    and however many gateways see it (the unique constraint), cancelled once by b-a-o-can."""

    __tablename__ = "tak_emergencies"
    __table_args__ = (
        UniqueConstraint("mission_id", "uid"),
        CheckConstraint("kind IN ('911', 'troops_in_contact', 'ring_the_bell')", name="kind"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"))
    uid: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    callsign: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
