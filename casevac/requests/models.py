"""CASEVAC requests (the 9-line, DOMAIN.md section 1), their casualties (MIST-AT, section 2), vital-sign
readings (appended, never overwritten) and the status history of the lifecycle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from casevac.precedence import PRECEDENCES
from config.extensions import db
from core import clock
from core.db import IdColumn, JSONType, UTCDateTime, one_of

# Line 3 categories, most urgent first (ATP 4-02.2; NATO STANAG 3204 dropped "convenience": accepted).
STATUSES = ("requested", "acknowledged", "dispatched", "at_pickup", "in_transit", "delivered", "cancelled")
FINAL_STATUSES = ("delivered", "cancelled")
ACTIVE_STATUSES = tuple(s for s in STATUSES if s not in FINAL_STATUSES)


class CasevacRequest(db.Model):
    __tablename__ = "casevac_requests"
    audit_subject = "casevac_request"  # the subject_type of its audit rows
    __table_args__ = (
        # Idempotent filing over a poor link: one request per (medic, client_ref), decided by the database.
        UniqueConstraint("filed_by", "client_ref", name="uq_casevac_requests_filed_by_client_ref"),
        CheckConstraint(one_of("status", STATUSES), name="status"),
        CheckConstraint(one_of("precedence", PRECEDENCES), name="precedence"),
        CheckConstraint(
            "patients_urgent >= 0 AND patients_urgent_surgical >= 0 AND patients_priority >= 0 "
            "AND patients_routine >= 0 AND patients_convenience >= 0",
            name="patients_non_negative",
        ),
        CheckConstraint("litter >= 0 AND ambulatory >= 0", name="types_non_negative"),
        # DOMAIN.md section 1, consistency rule: line 3 total equals line 5 total, at least one patient.
        CheckConstraint(
            "patients_urgent + patients_urgent_surgical + patients_priority + patients_routine "
            "+ patients_convenience = litter + ambulatory",
            name="line3_equals_line5",
        ),
        CheckConstraint("litter + ambulatory >= 1", name="at_least_one_patient"),
        CheckConstraint("lat >= -90 AND lat <= 90 AND lon >= -180 AND lon <= 180", name="coordinates"),
        # The coordinator's queue: mission, most urgent first, then oldest.
        Index("ix_casevac_requests_queue", "mission_id", "precedence_rank", "created_at", "id"),
        Index("ix_casevac_requests_filed_by_created", "filed_by", "created_at"),
        Index("ix_casevac_requests_status", "status"),
    )

    id: Mapped[str] = IdColumn()
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"))
    filed_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    client_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # sha256 of the canonical filing body: a retry with the same client_ref must carry the same body.
    body_hash: Mapped[str] = mapped_column(String(64))

    # Line 1: pickup site, normalised (source: the form the medic used).
    lat: Mapped[float] = mapped_column()
    lon: Mapped[float] = mapped_column()
    mgrs: Mapped[str] = mapped_column(String(20))
    location_source: Mapped[str] = mapped_column(String(8))
    location_text: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Line 2: frequency, call sign, suffix.
    frequency: Mapped[str] = mapped_column(String(32))
    callsign: Mapped[str] = mapped_column(String(64))
    suffix: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Line 3: patients by precedence.
    patients_urgent: Mapped[int] = mapped_column(SmallInteger, default=0)
    patients_urgent_surgical: Mapped[int] = mapped_column(SmallInteger, default=0)
    patients_priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    patients_routine: Mapped[int] = mapped_column(SmallInteger, default=0)
    patients_convenience: Mapped[int] = mapped_column(SmallInteger, default=0)
    # Line 4: special equipment (subset of hoist, extraction, ventilator; empty: none).
    equipment: Mapped[list] = mapped_column(JSONType, default=list)
    # Line 5: patients by type.
    litter: Mapped[int] = mapped_column(SmallInteger)
    ambulatory: Mapped[int] = mapped_column(SmallInteger)
    # Line 6: security at the pickup site (wartime) or wounds (peacetime).
    security: Mapped[str | None] = mapped_column(String(1), nullable=True)
    wounds: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Line 7: marking method.
    marking: Mapped[str | None] = mapped_column(String(16), nullable=True)
    marking_detail: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Line 8: {category: count}, categories configurable (casevac.requests.service.NATIONALITY_CATEGORIES).
    nationality: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    # Line 9: CBRN contamination (wartime) or terrain description (peacetime).
    cbrn: Mapped[list | None] = mapped_column(JSONType, nullable=True)
    terrain: Mapped[str | None] = mapped_column(Text, nullable=True)
    remarks: Mapped[str | None] = mapped_column(Text, nullable=True)

    # Derived from line 3: the most urgent category present, and its rank for ordering the queue.
    precedence: Mapped[str] = mapped_column(String(20))
    precedence_rank: Mapped[int] = mapped_column(SmallInteger)
    # Evacuation deadline from precedence (ATP 4-02.2: 1 h / 4 h / 24 h; convenience: none).
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    status: Mapped[str] = mapped_column(String(20), default="requested")
    # Set by dispatch (casevac.dispatch.rules); no foreign key here: the asset and facility tables are its own.
    asset_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    facility_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # Recorded at dispatch (casevac.ten_one_two): the asset had a medical crew; the destination had
    # damage-control surgery. None before dispatch.
    medical_crew: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    surgery_at_destination: Mapped[bool | None] = mapped_column(Boolean, nullable=True)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    # When each state was first reached: metrics and the 10-1-2 clocks read these.
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    at_pickup_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    in_transit_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Escalations happen once each (the sweeper's conditional UPDATE ... WHERE ... IS NULL).
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    surgery_escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # Loaded on demand: the queue reads none of these; get_visible loads them in three queries.
    casualties: Mapped[list["Casualty"]] = relationship(
        back_populates="request", order_by="Casualty.position", cascade="all, delete-orphan"
    )
    history: Mapped[list["StatusChange"]] = relationship(order_by="StatusChange.id", cascade="all, delete-orphan")

    @property
    def patients(self) -> dict[str, int]:
        return {name: getattr(self, f"patients_{name}") for name in PRECEDENCES}

    @property
    def patients_total(self) -> int:
        return self.litter + self.ambulatory

    @property
    def needs_ventilator(self) -> bool:
        """A ventilated patient: line 4 asks for a ventilator (the dispatch engine then needs an ICU)."""
        return "ventilator" in (self.equipment or [])

    @property
    def location(self) -> dict:
        out = {
            "lat": self.lat,
            "lon": self.lon,
            "mgrs": self.mgrs,
            "source": self.location_source,
            "precision_m": self.location_precision_m,
        }
        if self.location_text:
            out["text"] = self.location_text
        return out

    @property
    def location_precision_m(self) -> float:
        """An MGRS pickup keeps the reference as given: its digits say how precise the point is."""
        from casevac.geo import mgrs_precision_m

        return mgrs_precision_m(self.mgrs) if self.location_source == "mgrs" else 1.0

    @property
    def warnings(self) -> list[str]:
        from casevac.geo import coarse_location_warning

        warning = coarse_location_warning(self.location_precision_m)
        return [warning] if warning else []

    @property
    def missing_lines(self) -> list[int]:
        """Lines 6-9 still to send (DOMAIN.md section 1: they may follow lines 1-5)."""
        missing = []
        if self.security is None and not self.wounds:
            missing.append(6)
        if self.marking is None:
            missing.append(7)
        if self.nationality is None:
            missing.append(8)
        if self.cbrn is None and not self.terrain:
            missing.append(9)
        return missing

    @property
    def lines_complete(self) -> bool:
        return not self.missing_lines

    @property
    def active(self) -> bool:
        return self.status not in FINAL_STATUSES


class StatusChange(db.Model):
    """One row per lifecycle move (and the filing itself): who, when, from what, why."""

    __tablename__ = "casevac_status_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("casevac_requests.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class Casualty(db.Model):
    """MIST-AT (DOMAIN.md section 2): one per casualty, with a battle-roster (zap) number."""

    __tablename__ = "casevac_casualties"
    audit_subject = "casevac_casualty"  # the subject_type of its audit rows
    __table_args__ = (
        CheckConstraint(one_of("precedence", PRECEDENCES) + " OR precedence IS NULL", name="precedence"),
        CheckConstraint("age IS NULL OR (age >= 0 AND age <= 120)", name="age"),
    )
    id: Mapped[str] = IdColumn()
    request_id: Mapped[str] = mapped_column(ForeignKey("casevac_requests.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(SmallInteger, default=0)
    zap: Mapped[str | None] = mapped_column(String(32), nullable=True)
    age: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    sex: Mapped[str | None] = mapped_column(String(1), nullable=True)
    # Unknown: the request's filing time stands in for the 10-1-2 clocks (DOMAIN.md section 3).
    time_of_injury: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    mechanism: Mapped[str | None] = mapped_column(String(32), nullable=True)
    mechanism_detail: Mapped[str | None] = mapped_column(String(200), nullable=True)
    injuries: Mapped[list] = mapped_column(JSONType, default=list)
    # [{"code", "at", "detail"?}] in the order given; appended to, never rewritten.
    treatments: Mapped[list] = mapped_column(JSONType, default=list)
    precedence: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)

    request: Mapped[CasevacRequest] = relationship(back_populates="casualties")
    signs_history: Mapped[list["SignsReading"]] = relationship(
        order_by="SignsReading.taken_at, SignsReading.id", cascade="all, delete-orphan"
    )

    @property
    def effective_precedence(self) -> str:
        """The casualty's own triage category, else the request's (line 3)."""
        return self.precedence or self.request.precedence

    @property
    def clock_start(self) -> datetime:
        """10-1-2 clocks run from the time of injury; unknown, from the filing (DOMAIN.md section 3)."""
        return self.time_of_injury or self.request.created_at

    @property
    def signs(self) -> dict | None:
        return self.signs_history[-1].as_dict() if self.signs_history else None

    @property
    def signs_count(self) -> int:
        return len(self.signs_history)


class SignsReading(db.Model):
    """One set of vital signs, with the time it was taken (DOMAIN.md section 2: keep the history)."""

    __tablename__ = "casevac_signs"
    __table_args__ = (CheckConstraint("avpu IS NULL OR avpu IN ('A','V','P','U')", name="avpu"),)
    VITALS = ("pulse", "resp_rate", "spo2", "sbp", "dbp", "gcs", "avpu", "temp_c")

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    casualty_id: Mapped[str] = mapped_column(ForeignKey("casevac_casualties.id", ondelete="CASCADE"), index=True)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    recorded_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    pulse: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    resp_rate: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    spo2: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    sbp: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    dbp: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    gcs: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    avpu: Mapped[str | None] = mapped_column(String(1), nullable=True)
    temp_c: Mapped[float | None] = mapped_column(nullable=True)

    def as_dict(self) -> dict:
        out = {name: getattr(self, name) for name in self.VITALS if getattr(self, name) is not None}
        out["taken_at"] = self.taken_at
        return out
