"""The append-only audit log: every change and every read of a sensitive record."""

from __future__ import annotations

from typing import Callable

from flask import has_request_context, request
from sqlalchemy import and_, not_

from core.models import AuditEntry

# Subjects whose audit rows are themselves confidential: that someone was screened, self-referred or read
# a mental-health record is mental-health information (DOMAIN.md section 6, need-to-know). The admin's
# audit list (core.service.list_audit) leaves them out; the member sees the reads of their own records
# at GET /api/v1/telemed/me/access-log.
CONFIDENTIAL_SUBJECT_TYPES: frozenset[str] = frozenset({"screening", "self_referral"})
# subject_type -> a function returning a SELECT of that type's confidential ids, for types only some of
# whose records are confidential (telemed's mental-health consultations). Domains register at import.
_CONFIDENTIAL_IDS: dict[str, Callable] = {}


def register_confidential(subject_type: str, ids_select: Callable) -> None:
    _CONFIDENTIAL_IDS[subject_type] = ids_select


def not_confidential():
    """SQL condition: the audit row is about no confidential record."""
    clauses = [AuditEntry.subject_type.not_in(CONFIDENTIAL_SUBJECT_TYPES)]
    for subject_type, ids_select in _CONFIDENTIAL_IDS.items():
        clauses.append(
            not_(
                and_(
                    AuditEntry.subject_type == subject_type,
                    AuditEntry.subject_id.is_not(None),
                    AuditEntry.subject_id.in_(ids_select()),
                )
            )
        )
    return and_(*clauses)


def client_address() -> str | None:
    if not has_request_context():
        return None
    return request.remote_addr


def record(
    session,
    actor,
    action: str,
    subject=None,
    *,
    subject_type: str | None = None,
    subject_id: str | None = None,
    mission_id: str | None = None,
    detail: dict | None = None,
) -> AuditEntry:
    """Add an audit row to the caller's transaction (it commits or rolls back with the change).

    `subject` is the record acted on: a model naming its audit type in `audit_subject`, whose id and mission
    the row takes. Without one, `subject_type` and `subject_id` say what it was (a token, an alert's
    screening); the mission is then the actor's unless given."""
    if subject is not None:
        subject_type, subject_id = type(subject).audit_subject, subject.id
        if mission_id is None:
            mission_id = subject.mission_id
    if subject_type is None:
        raise TypeError("audit.record needs a subject or a subject_type")
    entry = AuditEntry(
        actor_id=getattr(actor, "id", actor),
        mission_id=mission_id if mission_id is not None else getattr(actor, "mission_id", None),
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        address=client_address(),
        detail=detail,
    )
    session.add(entry)
    return entry
