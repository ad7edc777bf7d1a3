"""Consultations as the other sub-domains see them (telemed.mental, the audit's confidential subjects): one
by id, and the ids of mental-health consultations, as a subquery. Visibility and audited reads of a
consultation are telemed.scheduling.access's."""

from __future__ import annotations

from config.extensions import db
from core.db import is_id
from telemed.scheduling.models import Consultation


def get(session, consultation_id: str | None) -> Consultation | None:
    """The consultation with this id, or None (no id, or one no consultation can have)."""
    if not is_id(consultation_id):
        return None
    return session.get(Consultation, consultation_id)


def mental_health_ids(*, patient_user_id: str | None = None):
    """Ids of mental-health consultations (of this patient when given), as a subquery: their audit rows are
    as confidential as a screening's (kept out of the admin's audit list; listed in the member's access log)."""
    query = db.select(Consultation.id).where(Consultation.kind == "mental_health")
    if patient_user_id is not None:
        query = query.where(Consultation.patient_user_id == patient_user_id)
    return query
