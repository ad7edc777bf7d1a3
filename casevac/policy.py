"""Who may do what in CASEVAC (requests, fleet, dispatch): named role groups and predicates. Services and
views ask these; no module of the domain tests a role itself."""

from __future__ import annotations

from core.auth import COORDINATORS, FIELD_STAFF, can_see_mission

# Roles that reach each group of endpoints (views pass these to auth.current_user).
FILERS = frozenset({"medic", "coordinator"})  # file a 9-line
REQUEST_READERS = FIELD_STAFF  # a medic sees their own requests, the others their mission's
DRIVERS = COORDINATORS  # drive the lifecycle, dispatch, plan, read metrics
FLEET_READERS = FIELD_STAFF
FLEET_WRITERS = COORDINATORS
# Before dispatch the filing medic may still cancel and correct the request.
BEFORE_DISPATCH = ("requested", "acknowledged")
FINAL_STATUSES = ("delivered", "cancelled")


def drives_lifecycle(actor) -> bool:
    return actor.role in DRIVERS


def is_filer(actor, request) -> bool:
    """The medic who filed the request."""
    return actor.role == "medic" and request.filed_by == actor.id


def may_see_request(actor, request) -> bool:
    """A medic: what they filed; a coordinator or admin: their mission's (404 for anything else)."""
    if actor.role == "medic":
        return request.filed_by == actor.id
    return drives_lifecycle(actor) and can_see_mission(actor, request.mission_id)


def may_edit_request(actor, request, *, vitals: bool = False) -> bool:
    """Correct or complete a request that is not final: a coordinator at any time; the filing medic before
    dispatch, and (vitals: casualties' signs and treatments) also after, while waiting and in flight."""
    if request.status in FINAL_STATUSES:
        return False
    if drives_lifecycle(actor):
        return True
    return is_filer(actor, request) and (vitals or request.status in BEFORE_DISPATCH)


def may_cancel_as_filer(actor, request) -> bool:
    return is_filer(actor, request) and request.status in BEFORE_DISPATCH
