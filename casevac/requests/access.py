"""Loading a CASEVAC request with visibility (a medic: what they filed; a coordinator or admin: their
mission's) and the edit guard shared by line and casualty edits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from casevac import policy
from casevac.requests.models import FINAL_STATUSES, CasevacRequest, Casualty
from core.errors import conflict, forbidden, not_found

# A request with everything its view shows, in three extra queries whatever the number of casualties.
_FULL = [
    selectinload(CasevacRequest.casualties).selectinload(Casualty.signs_history),
    selectinload(CasevacRequest.history),
]
# What ranking evacuations reads (casevac.dispatch): the request and its casualties, in one query.
_CASUALTIES = [joinedload(CasevacRequest.casualties)]


def get_visible(session, *, actor, request_id: str, full: bool = True) -> CasevacRequest:
    """The request if this actor may see it, else 404, the same for an unknown id as for another mission's
    (API.md, Conventions). `full`: with everything its view shows; else with its casualties only (anything
    else still loads on access)."""
    options = _FULL if full else _CASUALTIES
    request = session.get(CasevacRequest, request_id, options=options) if isinstance(request_id, str) else None
    if request is None or not policy.may_see_request(actor, request):
        raise not_found("casevac request")
    return request


def reload(session, request: CasevacRequest) -> CasevacRequest:
    """After a commit (which expires everything): the request and what its view shows, in four queries."""
    return session.execute(select(CasevacRequest).where(CasevacRequest.id == request.id).options(*_FULL)).scalar_one()


def lock(session, *, actor, request_id: str) -> CasevacRequest:
    """The visible request, row-locked (PostgreSQL) so an edit and a status move do not interleave."""
    request = get_visible(session, actor=actor, request_id=request_id)
    session.execute(select(CasevacRequest.id).where(CasevacRequest.id == request.id).with_for_update())
    session.refresh(request)
    return request


def ensure_may_edit(actor, request: CasevacRequest, allow_after_dispatch_for_filer: bool = False) -> None:
    # The filing medic keeps updating vital signs while waiting and during the flight (allow_after_dispatch).
    if policy.may_edit_request(actor, request, vitals=allow_after_dispatch_for_filer):
        return
    if request.status in FINAL_STATUSES:
        raise conflict(f"the request is {request.status}: it can no longer be changed", current=request.status)
    if policy.is_filer(actor, request):
        raise conflict("the request is dispatched: ask the coordinator to change it", current=request.status)
    raise forbidden("only the filing medic or a coordinator changes a request")
