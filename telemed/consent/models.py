"""Consent records: one row per patient, kind and version of the consent text (append-only: the
migration's triggers refuse UPDATE and DELETE on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from config.extensions import db
from core import clock
from core.db import IdColumn, UTCDateTime, one_of
from telemed.kinds import KINDS


class ConsentRecord(db.Model):
    __tablename__ = "consent_records"
    audit_subject = "consent"  # the subject_type of its audit rows
    __table_args__ = (
        CheckConstraint(one_of("kind", KINDS), name="kind"),
        UniqueConstraint("patient_id", "kind", "version"),
    )
    id: Mapped[str] = IdColumn()
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"))
    patient_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(32))
    text_sha256: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
