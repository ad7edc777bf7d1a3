"""Telemedicine: clinician profiles with their availability, consultations, notes, replies, attachments.

Shapes follow HL7 FHIR R4 Schedule / Slot / Appointment (DOMAIN.md section 5). Slots are not stored:
they are computed from the availability and the booked intervals (telemed.scheduling.availability).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from config.extensions import db
from core import clock
from core.db import IdColumn, JSONType, UTCDateTime, one_of
from telemed.kinds import KINDS

SPECIALTIES = (
    "trauma_surgery",
    "general_medicine",
    "radiology",
    "dermatology",
    "psychiatry",
    "psychology",
    "paediatrics",
    "internal_medicine",
    "emergency_medicine",
    "orthopaedics",
    "obstetrics",
    "anaesthesiology",
    "infectious_disease",
    "ophthalmology",
    "neurology",
    "cardiology",
)
MODALITIES = ("video", "audio", "chat", "async")
# API.md "Telemedicine": booked -> checked_in -> in_progress -> fulfilled; booked|checked_in ->
# cancelled|noshow (FHIR R4 Appointment.status, DOMAIN.md section 5).
STATUSES = ("booked", "checked_in", "in_progress", "fulfilled", "cancelled", "noshow")
# A consultation in one of these states no longer holds its time.
RELEASED_STATUSES = ("cancelled", "noshow")
# A consultation in one of these states can still be joined.
LIVE_STATUSES = ("booked", "checked_in", "in_progress")
NOTE_KINDS = ("clinical", "psychotherapy")
# What an invited participant takes part as (telemed.policy decides what each part sees).
PARTS = ("interpreter", "clinician")


class Clinician(db.Model):
    """A clinician's profile: what they do, in which languages, in which zone, and when (FHIR Schedule)."""

    __tablename__ = "telemed_clinicians"
    audit_subject = "clinician"  # the subject_type of its audit rows
    id: Mapped[str] = IdColumn()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), unique=True)
    # The user's mission, copied so every query scopes by mission without a join.
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"), index=True)
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    specialties: Mapped[list] = mapped_column(JSONType, default=list)
    languages: Mapped[list] = mapped_column(JSONType, default=list)
    kinds: Mapped[list] = mapped_column(JSONType, default=list)
    timezone: Mapped[str] = mapped_column(String(64))
    # Availability (times in `timezone`): [{"day": "mon", "start": "08:00", "end": "12:00"}, ...] and
    # [{"date": "2026-12-25", "windows": [{"start", "end"}]}] (an override replaces that day).
    weekly: Mapped[list] = mapped_column(JSONType, default=list)
    overrides: Mapped[list] = mapped_column(JSONType, default=list)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=30)
    buffer_minutes: Mapped[int] = mapped_column(Integer, default=0)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=60)
    horizon_days: Mapped[int] = mapped_column(Integer, default=60)
    active: Mapped[bool] = mapped_column(default=True)
    # Bumped (in SQL, atomically) by every change of the profile or availability: slot search caches each
    # clinician's parsed availability per process and re-reads it only when this changes.
    profile_version: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped by every booking transaction: the UPDATE takes the row lock that serialises one clinician's
    # bookings (PostgreSQL row lock; SQLite's single writer lock).
    booking_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)

    user = relationship("User", lazy="joined")


class Consultation(db.Model):
    """A booked consultation (FHIR Appointment). `block_start`/`block_end` is the time it holds on the
    clinician's calendar, buffer included: [start, end + buffer). On PostgreSQL an exclusion constraint
    (btree_gist, migration 0005_telemed) forbids two overlapping blocks of one clinician."""

    __tablename__ = "telemed_consultations"
    audit_subject = "consultation"  # the subject_type of its audit rows
    __table_args__ = (
        CheckConstraint(one_of("kind", KINDS), name="kind"),
        CheckConstraint(one_of("modality", MODALITIES), name="modality"),
        CheckConstraint(one_of("status", STATUSES), name="status"),
        CheckConstraint('"end" > start', name="end_after_start"),
        Index("ix_telemed_consultations_clinician_block", "clinician_id", "block_start"),
        Index("ix_telemed_consultations_mission_start", "mission_id", "start"),
        Index("ix_telemed_consultations_mission_block", "mission_id", "block_start"),
    )
    id: Mapped[str] = IdColumn()
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"))
    clinician_id: Mapped[str] = mapped_column(ForeignKey("telemed_clinicians.id"))
    kind: Mapped[str] = mapped_column(String(20))
    modality: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default="booked")
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    # Null for store-and-forward (async) consultations, which hold no time; null once released.
    block_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    block_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    patient_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    patient_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    patient_casualty_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    booked_by: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    # Random, never derived from ids (DOMAIN.md section 5, Bahmni review).
    room: Mapped[str] = mapped_column(String(64), unique=True)
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    history: Mapped[list] = mapped_column(JSONType, default=list)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    first_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)

    clinician = relationship(Clinician, lazy="joined")
    # Everyone invited, revoked invitations included (telemed.policy picks the active ones).
    invitations = relationship("Participant", lazy="selectin", order_by="Participant.invited_at")


class Participant(db.Model):
    """Someone the clinician invited into a live consultation: an interpreter (with the language they
    interpret) or a second clinician, a user of the consultation's mission. Active until revoked or until
    the consultation ends (its `end`, so a reschedule moves it). At most one active invitation per user and
    consultation (a partial unique index on both databases)."""

    __tablename__ = "telemed_participants"
    __table_args__ = (
        CheckConstraint(one_of("part", PARTS), name="part"),
        CheckConstraint("(part = 'interpreter') = (language IS NOT NULL)", name="language_of_interpreter"),
        Index(
            "uq_telemed_participants_active",
            "consultation_id",
            "user_id",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )
    id: Mapped[str] = IdColumn()
    consultation_id: Mapped[str] = mapped_column(ForeignKey("telemed_consultations.id"), index=True)
    mission_id: Mapped[str] = mapped_column(ForeignKey("missions.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    part: Mapped[str] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(2), nullable=True)
    invited_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    user = relationship("User", foreign_keys=[user_id], lazy="joined")


class WrittenInConsultation:
    """The columns of a text written in a consultation by one author: notes and replies (each its own table,
    as each has its own readers)."""

    id: Mapped[str] = IdColumn()
    consultation_id: Mapped[str] = mapped_column(ForeignKey("telemed_consultations.id"), index=True)
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class ClinicalNote(WrittenInConsultation, db.Model):
    """Part of the medical record: readable by the consultation's clinician and the patient (if a user)."""

    __tablename__ = "telemed_clinical_notes"


class PsychotherapyNote(WrittenInConsultation, db.Model):
    """Psychotherapy notes (HIPAA 45 CFR 164.501 sense, DOMAIN.md section 5/6): kept apart from the
    medical record, readable by their author alone, never in a list, export or event."""

    __tablename__ = "telemed_psychotherapy_notes"
    __table_args__ = (Index("ix_telemed_psychotherapy_notes_author_id", "author_id"),)


class Reply(WrittenInConsultation, db.Model):
    """A written message in a consultation (store-and-forward: the clinician's answer)."""

    __tablename__ = "telemed_replies"


class Attachment(db.Model):
    """An uploaded image or PDF, stored under UPLOAD_DIR with a random name (never the client's)."""

    __tablename__ = "telemed_attachments"
    __table_args__ = (
        CheckConstraint("content_type IN ('image/jpeg', 'image/png', 'application/pdf')", name="content_type"),
    )
    id: Mapped[str] = IdColumn()
    consultation_id: Mapped[str] = mapped_column(ForeignKey("telemed_consultations.id"), index=True)
    uploaded_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
