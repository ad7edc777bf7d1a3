"""The event log (transactional outbox): one row per domain event, written in the business transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from config.extensions import db
from core import clock
from core.db import JSONType, UTCDateTime


class Event(db.Model):
    __tablename__ = "events"
    # Insert order; may commit out of order across concurrent transactions (see realtime.relay).
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    # Delivery order, assigned after commit in one serialized step, so it never has gaps that fill later.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True, nullable=True)
    type: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    mission_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # Socket.IO room names the event goes to (realtime.audience builds them).
    rooms: Mapped[list] = mapped_column(JSONType)
    data: Mapped[dict] = mapped_column(JSONType)
    # Narrower audiences with their own data: [{"rooms": [...], "data": {...}}] (realtime.events.publish);
    # `data` is for the other rooms. None: one data for every room.
    views: Mapped[list | None] = mapped_column(JSONType, nullable=True)
    emitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
