"""Who may do what in telemedicine: named role groups and predicates. Services and views ask these; no
module of the domain tests a role itself.

- a diagnostic consultation: its participants (the clinician, the patient if a user, whoever booked it)
  and the mission's coordinators and admins;
- a mental-health consultation: its clinician and its patient only (404 for everyone else, admins
  included: DOMAIN.md section 6, confidentiality);
- and, for either kind, whoever the clinician invited (telemed_participants), while the invitation is
  active (not revoked, the consultation not over), by their part:

  | part              | consultation, call, chat | clinical notes | attachments, replies | psychotherapy notes |
  | interpreter       | yes                      | no             | no                   | no                  |
  | second clinician  | yes                      | yes (read)     | yes                  | no (author only)    |
"""

from __future__ import annotations

from core import clock
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


def active_invitations(consultation) -> list:
    """The invitations in force: not revoked, and the consultation not over (they end with it)."""
    if clock.now() >= consultation.end:
        return []
    return [p for p in consultation.invitations if p.revoked_at is None]


def invitation(actor, consultation):
    """The actor's invitation in force into this consultation, or None."""
    return next((p for p in active_invitations(consultation) if p.user_id == actor.id), None)


def invited_as(actor, consultation, part: str) -> bool:
    found = invitation(actor, consultation)
    return found is not None and found.part == part


def audience(consultation) -> set[str]:
    """Who hears of a consultation's changes: its participants and whoever is invited into it."""
    return participants(consultation) | {p.user_id for p in active_invitations(consultation)}


def may_see_consultation(actor, consultation) -> bool:
    if not can_see_mission(actor, consultation.mission_id):
        return False
    return is_participant(actor, consultation) or oversees(actor, consultation) or bool(invitation(actor, consultation))


def may_read_reason(actor, consultation) -> bool:
    """The clinical reason for a consultation is for those who treat or oversee: an invited interpreter sees
    the consultation (its time, kind, status) without it (need to know: DOMAIN.md section 6)."""
    return (
        is_participant(actor, consultation)
        or oversees(actor, consultation)
        or not invited_as(actor, consultation, "interpreter")
    )


def may_join(actor, consultation) -> bool:
    """Ask for a join token: a participant or an invitee (each part joins the call and its chat)."""
    return is_participant(actor, consultation) or invitation(actor, consultation) is not None


def may_invite(actor, consultation) -> bool:
    """Invite or revoke: the consultation's clinician, or an admin of its mission for a diagnostic one (an
    admin never sees a mental-health consultation)."""
    return actor.id == consultation.clinician.user_id or (consultation.kind != "mental_health" and is_admin(actor))


def may_read_clinical_notes(actor, consultation) -> bool:
    """The clinician, the patient, and an invited second clinician (never an interpreter). Psychotherapy
    notes are narrower still: their author alone, whatever the part (records.list_notes)."""
    if actor.id in (consultation.clinician.user_id, consultation.patient_user_id):
        return True
    return invited_as(actor, consultation, "clinician")


def may_use_records(actor, consultation) -> bool:
    """Attachments and replies: the participants and an invited second clinician (never an interpreter)."""
    return is_participant(actor, consultation) or invited_as(actor, consultation, "clinician")


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
