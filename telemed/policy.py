"""Who may do what in telemedicine: named role groups and predicates. Services and views ask these; no
module of the domain tests a role itself.

- a diagnostic consultation: its participants (the clinician, the patient if a user, whoever booked it)
  and the mission's coordinators and admins;
- a mental-health consultation: its clinician and its patient only (404 for everyone else, admins
  included: DOMAIN.md section 6, confidentiality).
"""

from __future__ import annotations

from core.auth import COORDINATORS, can_see_mission, is_admin

# Who may book which kind of consultation (API.md, Telemedicine).
BOOKING_ROLES = {
    "diagnostic": frozenset({"medic", "coordinator", "clinician", "admin"}),
    "mental_health": frozenset({"member", "medic", "coordinator", "clinician", "admin"}),
}
# Who reaches the mental-health endpoints at all; services narrow clinicians to mental-health ones.
CARE_ROLES = frozenset({"member", "clinician"})
# Moves only the consultation's clinician makes (the others: any participant).
CLINICIAN_MOVES = ("in_progress", "fulfilled", "noshow")


def oversees(actor, consultation) -> bool:
    """A coordinator or admin of the mission, for a diagnostic consultation (never a mental-health one)."""
    return consultation.kind != "mental_health" and actor.role in COORDINATORS


def participants(consultation) -> set[str]:
    ids = {consultation.clinician.user_id}
    if consultation.patient_user_id:
        ids.add(consultation.patient_user_id)
    if consultation.kind != "mental_health":
        ids.add(consultation.booked_by)
    return ids


def is_participant(actor, consultation) -> bool:
    return actor.id in participants(consultation)


def may_see_consultation(actor, consultation) -> bool:
    if not can_see_mission(actor, consultation.mission_id):
        return False
    return is_participant(actor, consultation) or oversees(actor, consultation)


def may_change_consultation(actor, consultation) -> bool:
    """Change its status or reschedule it: a participant, or whoever oversees it."""
    return is_participant(actor, consultation) or oversees(actor, consultation)


def may_make_clinician_move(actor, consultation) -> bool:
    return actor.id == consultation.clinician.user_id or oversees(actor, consultation)


def may_book(actor, kind: str) -> bool:
    return actor.role in BOOKING_ROLES[kind]


def may_edit_clinician(actor, clinician) -> bool:
    """The clinician themself, or an admin of the clinician's mission."""
    return actor.id == clinician.user_id or (is_admin(actor) and can_see_mission(actor, clinician.mission_id))


def may_grant_credentials(actor) -> bool:
    """Credentials that open confidential records (a mental-health specialty or kind, activating a profile)
    are granted by an admin only: a clinician cannot give them to themself."""
    return is_admin(actor)
