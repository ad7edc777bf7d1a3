"""Who takes part in a consultation, who may see it, and the audited reads of confidential ones.

- a diagnostic consultation: its participants (the clinician, the patient if a user, whoever booked it)
  and the mission's coordinators and admins;
- a mental-health consultation: its clinician and its patient only (404 for everyone else, admins
  included); every read of one is audited (DOMAIN.md section 6, confidentiality).
"""

from __future__ import annotations

from config.extensions import db
from core import audit, clock
from core.db import is_id
from core.errors import not_found
from core.models import User
from realtime import audience, events
from telemed import policy
from telemed.scheduling.models import Consultation


def load_visible(session, actor: User, consultation_id: str) -> Consultation:
    if not is_id(consultation_id):
        raise not_found("consultation")
    query = db.select(Consultation).where(Consultation.id == consultation_id)
    consultation = session.execute(query.execution_options(populate_existing=True)).unique().scalar_one_or_none()
    if consultation is None or not policy.may_see_consultation(actor, consultation):
        raise not_found("consultation")
    return consultation


class ReasonWithheld:
    """A consultation as someone who may see it but not its clinical reason reads it (an invited
    interpreter): every attribute the consultation's, the reason None. Nothing is written to the row."""

    reason = None

    def __init__(self, consultation: Consultation):
        self._consultation = consultation

    def __getattr__(self, name):
        return getattr(self._consultation, name)


def as_seen_by(actor: User, consultation: Consultation):
    """The consultation for an answer to this actor: the reason withheld where policy.may_read_reason says."""
    return consultation if policy.may_read_reason(actor, consultation) else ReasonWithheld(consultation)


def audit_read(session, actor: User, consultation: Consultation, what: str) -> None:
    """Every read of a mental-health record is audited (issue 6/7; the member can see who read it)."""
    if consultation.kind == "mental_health":
        audit.record(
            session, actor, "telemed.consultation.read", consultation, detail={"kind": "mental_health", "what": what}
        )


def event_data(consultation: Consultation, **extra) -> dict:
    # No reason, notes or replies: events carry what a client needs to refresh, never clinical text.
    return {
        "id": consultation.id,
        "kind": consultation.kind,
        "status": consultation.status,
        "modality": consultation.modality,
        "clinician_id": consultation.clinician_id,
        "start": consultation.start.isoformat(),
        "end": consultation.end.isoformat(),
        **extra,
    }


def publish(session, consultation: Consultation, type_: str, *, also: tuple[str, ...] = (), **extra) -> None:
    """To the consultation's audience (participants and invitees in force) and the users in `also`."""
    rooms = sorted(audience.user(uid) for uid in policy.audience(consultation) | set(also))
    events.publish(session, type_, rooms, event_data(consultation, **extra), mission_id=consultation.mission_id)


def add_history(consultation: Consultation, status: str, actor: User | None, **extra) -> None:
    entry = {"status": status, "at": clock.now().isoformat(), "by": getattr(actor, "id", None)}
    entry.update({k: v for k, v in extra.items() if v is not None})
    consultation.history = [*(consultation.history or []), entry]
