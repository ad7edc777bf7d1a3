"""Mental-health records: screenings, the alerts they raise, and confidential self-referrals.

Confidential (DOMAIN.md section 6): visible to the member they belong to and the mission's mental-health
clinicians only; answers and referral reasons never leave these tables except to those readers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from config.extensions import db
from core import clock
from core.db import IdColumn, JSONType, UTCDateTime, one_of

INSTRUMENT_CODES = ("phq9", "gad7", "pcl5", "auditc")
REFERRAL_STATUSES = ("open", "booked", "closed")


class Screening(db.Model):
    __tablename__ = "screenings"
    audit_subject = "screening"  # the subject_type of its audit rows
    __table_args__ = (
        CheckConstraint(one_of("instrument", INSTRUMENT_CODES), name="instrument"),
        CheckConstraint("score >= 0", name="score"),
        # The trend of one member on one instrument is the clinician's query.
        Index("ix_screenings_member_instrument_created", "member_id", "instrument", "created_at"),
        Index("ix_screenings_mission_created", "mission_id", "created_at"),
    )
    id: Mapped[str] = IdColumn()
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"))
    # The member screened; entered_by is the member themself or the clinician who administered it.
    member_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    entered_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    instrument: Mapped[str] = mapped_column(String(16))
    answers: Mapped[list] = mapped_column(JSONType)
    sex: Mapped[str | None] = mapped_column(String(16), nullable=True)
    score: Mapped[int] = mapped_column(Integer)
    severity: Mapped[str | None] = mapped_column(String(32), nullable=True)
    positive: Mapped[bool] = mapped_column(Boolean)
    criteria: Mapped[dict] = mapped_column(JSONType)
    clusters: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    flags: Mapped[list] = mapped_column(JSONType)
    recommended_action: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class ScreeningAlert(db.Model):
    """A flagged screening waiting for a clinician: acknowledged once, escalated once if nobody does in time.
    Both transitions are conditional UPDATEs, so racing clinicians and sweepers act exactly once."""

    __tablename__ = "screening_alerts"
    id: Mapped[str] = IdColumn()
    screening_id: Mapped[str] = mapped_column(ForeignKey("screenings.id"), unique=True)
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"), index=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    flags: Mapped[list] = mapped_column(JSONType)
    recommended_action: Mapped[str] = mapped_column(String(40))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    ack_due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SelfReferral(db.Model):
    """A member's confidential request for a mental-health consultation, made without command
    (DOMAIN.md section 6: stigma keeps most who screen positive from seeking care, Hoge 2004)."""

    __tablename__ = "self_referrals"
    audit_subject = "self_referral"  # the subject_type of its audit rows
    __table_args__ = (
        CheckConstraint(one_of("status", REFERRAL_STATUSES), name="status"),
        Index("ix_self_referrals_member_created", "member_id", "created_at"),
        Index("ix_self_referrals_mission_created", "mission_id", "created_at"),
    )
    id: Mapped[str] = IdColumn()
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"))
    member_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    # Free text from the member: stays in this table, never in an audit row, event or log line.
    reason: Mapped[str] = mapped_column(Text)
    preferred_language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    contact: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    consultation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
