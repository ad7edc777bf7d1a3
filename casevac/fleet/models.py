"""Evacuation assets (with their position track and device token) and medical facilities."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    cast,
)
from sqlalchemy.orm import Mapped, mapped_column

from config.extensions import db
from core import clock
from core.db import IdColumn, JSONType, UTCDateTime, one_of

ASSET_KINDS = ("rotary_wing", "fixed_wing", "ground_ambulance")
ASSET_CAPABILITIES = ("hoist", "extraction", "ventilator", "night", "armored", "medical_crew")
ASSET_STATUSES = ("available", "tasked", "maintenance", "offline")
# UN Medical Support Manual levels (DOMAIN.md section 4), as strings because of "1+" and "2+".
FACILITY_LEVELS = ("1", "1+", "2", "2+", "3", "4")
FACILITY_CAPABILITIES = (
    "damage_control_surgery",
    "icu",
    "blood_bank",
    "ct",
    "burns",
    "neurosurgery",
    "paediatrics",
    "obstetrics",
    "mental_health",
)
# Emergency-department status after OASIS EDXL-HAVE (DOMAIN.md section 4).
FACILITY_STATUSES = ("normal", "diverting", "closed")
# Fixes in one batched position report (docs/dispatch.md): a tracker flushing its buffer sends at most this many.
MAX_FIXES_PER_REPORT = 500


def has_capability(column, capability: str):
    """SQL: the JSON capability list holds this one (as text on both databases, '["hoist", "night"]':
    portable, and the values are a closed set)."""
    return cast(column, String).like(f'%"{capability}"%')


class Asset(db.Model):
    __tablename__ = "assets"
    audit_subject = "asset"  # the subject_type of its audit rows
    __table_args__ = (
        UniqueConstraint("mission_id", "callsign"),
        CheckConstraint(one_of("kind", ASSET_KINDS), name="kind"),
        CheckConstraint(one_of("status", ASSET_STATUSES), name="status"),
        CheckConstraint("litter_capacity >= 0 AND ambulatory_capacity >= 0", name="capacity"),
        CheckConstraint("cruise_speed_kmh > 0 AND readiness_minutes >= 0", name="performance"),
        # A tasked asset always names the request it serves, and only a tasked one does.
        CheckConstraint("(status = 'tasked') = (tasked_request_id IS NOT NULL)", name="tasked_request"),
    )
    id: Mapped[str] = IdColumn()
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"), index=True)
    callsign: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    capabilities: Mapped[list] = mapped_column(JSONType, default=list)
    litter_capacity: Mapped[int] = mapped_column(Integer)
    ambulatory_capacity: Mapped[int] = mapped_column(Integer)
    cruise_speed_kmh: Mapped[float] = mapped_column(Float)
    readiness_minutes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="available")
    # Set with status 'tasked' by dispatch in one conditional UPDATE; cleared when the request ends.
    tasked_request_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    base_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    base_lat: Mapped[float] = mapped_column(Float)
    base_lon: Mapped[float] = mapped_column(Float)
    # Latest position in the database mode (without Redis); with Redis the live one is there.
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    heading: Mapped[float | None] = mapped_column(Float, nullable=True)
    speed_kmh: Mapped[float | None] = mapped_column(Float, nullable=True)
    position_reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # sha256 of the device token (a 256-bit random secret): never returned, never logged.
    device_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    def __repr__(self) -> str:  # never show the token hash
        return f"<Asset {self.callsign} {self.kind} {self.status}>"

    # The live fix (Redis) or the row's, set by casevac.fleet.assets.asset_view for AssetOut; not a column.
    position = None  # dict | None

    @property
    def base(self) -> dict:
        return {"name": self.base_name, "lat": self.base_lat, "lon": self.base_lon}

    @property
    def has_device_token(self) -> bool:
        return self.device_token_hash is not None


class AssetPosition(db.Model):
    """The track: every accepted position report, in the order reported."""

    __tablename__ = "asset_positions"
    __table_args__ = (Index("ix_asset_positions_asset_reported", "asset_id", "reported_at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    mission_id: Mapped[str] = mapped_column(String(36))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    heading: Mapped[float | None] = mapped_column(Float, nullable=True)
    speed_kmh: Mapped[float | None] = mapped_column(Float, nullable=True)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    source: Mapped[str] = mapped_column(String(16))  # coordinator | device
    # The Redis stream entry id when the report came through Redis: a redelivered entry is not stored twice.
    stream_id: Mapped[str | None] = mapped_column(String(40), nullable=True, unique=True)


class Facility(db.Model):
    __tablename__ = "facilities"
    audit_subject = "facility"  # the subject_type of its audit rows
    __table_args__ = (
        UniqueConstraint("mission_id", "name"),
        CheckConstraint(one_of("level", FACILITY_LEVELS), name="level"),
        CheckConstraint(one_of("status", FACILITY_STATUSES), name="status"),
        CheckConstraint("beds_available >= 0", name="beds"),
    )
    id: Mapped[str] = IdColumn()
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(4))
    capabilities: Mapped[list] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(20), default="normal")
    beds_available: Mapped[int] = mapped_column(Integer, default=0)
    helipad: Mapped[bool] = mapped_column(Boolean, default=False)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    @property
    def location(self) -> dict:
        return {"lat": self.lat, "lon": self.lon}


class FleetVersion(db.Model):
    """One counter, bumped in the transaction of every committed write to assets or facilities
    (casevac.fleet.versions): what a process keeps of the fleet in memory is valid while it is unchanged."""

    __tablename__ = "fleet_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)
