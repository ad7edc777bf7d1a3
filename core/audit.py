"""The append-only audit log: every change and every read of a sensitive record."""
from __future__ import annotations

from flask import has_request_context, request

from core.models import AuditEntry


def client_address() -> str | None:
    if not has_request_context():
        return None
    return request.remote_addr


def record(session, *, actor, action: str, subject_type: str, subject_id: str | None,
           mission_id: str | None = None, detail: dict | None = None) -> AuditEntry:
    """Add an audit row to the caller's transaction (it commits or rolls back with the change)."""
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
