"""The lifecycle of a CASEVAC request (API.md): requested -> acknowledged -> (dispatch) -> at_pickup ->
in_transit -> delivered, cancelled before delivery; and the escalation of unanswered urgent requests.

Every move is a conditional UPDATE ... WHERE status = <what was read>, so of racing moves exactly one wins; it
writes its history row, audit row and event-log row in the same transaction (the transactional outbox)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from casevac import policy, ten_one_two
from casevac.precedence import URGENT
from casevac.requests import access, events
from casevac.requests.models import FINAL_STATUSES, CasevacRequest, StatusChange
from casevac.requests.schemas import RequestOut
from core import audit, clock
from core.errors import conflict, forbidden, invalid
from core.records import update_where
from realtime import audience

NEXT = {
    "requested": ("acknowledged", "dispatched", "cancelled"),
    "acknowledged": ("dispatched", "cancelled"),
    "dispatched": ("at_pickup", "cancelled"),
    "at_pickup": ("in_transit", "cancelled"),
    "in_transit": ("delivered", "cancelled"),
    "delivered": (),
    "cancelled": (),
}
VIA_DISPATCH = "dispatched"
# Called as hook(session, request) in the transaction that makes a request cancelled or delivered (dispatch adds
# the one that frees the asset, from casevac.init_app).
RELEASE_HOOKS: list[Callable] = []
# Built once (a schema instance costs about 0.1 ms).
_REQUEST_OUT = RequestOut()


def add_release_hook(hook: Callable) -> None:
    if hook not in RELEASE_HOOKS:
        RELEASE_HOOKS.append(hook)


# Called as hook(session, request, from_status) in the transaction of every status move (casevac.links queues
# the text that tells a medic who filed by SMS or satellite).
STATUS_HOOKS: list[Callable] = []


def add_status_hook(hook: Callable) -> None:
    if hook not in STATUS_HOOKS:
        STATUS_HOOKS.append(hook)


def allowed_next(actor, request: CasevacRequest) -> list[str]:
    """The states this actor may move the request to through the status endpoint."""
    if policy.drives_lifecycle(actor):
        return [s for s in NEXT[request.status] if s != VIA_DISPATCH]
    if policy.may_cancel_as_filer(actor, request):
        return ["cancelled"]
    return []


def transition(session, *, actor, request_id: str, status: str, note: str | None = None) -> CasevacRequest:
    """Move a request along the lifecycle (API.md): 409 naming the allowed next states otherwise."""
    request = access.get_visible(session, actor=actor, request_id=request_id)
    if not (policy.drives_lifecycle(actor) or policy.is_filer(actor, request)):
        raise forbidden("coordinators drive the lifecycle")
    note = (note or "").strip() or None
    if status == "cancelled" and not note:
        raise invalid("note", "a note is required when cancelling")
    allowed = allowed_next(actor, request)
    if status not in allowed:
        raise _illegal_move(request, status, allowed)
    if not _move(session, actor=actor, request=request, to_status=status, note=note):
        # Another transaction moved it first (two coordinators acknowledging at once): report its state.
        session.rollback()
        session.refresh(request)
        raise _illegal_move(request, status, allowed_next(actor, request))
    session.commit()
    return access.reload(session, request)


def _illegal_move(request: CasevacRequest, status: str, allowed: list[str]):
    if status == VIA_DISPATCH and status in NEXT[request.status]:
        message = f"{VIA_DISPATCH} is reached only through POST /api/v1/casevac/requests/{request.id}/dispatch"
    else:
        message = f"cannot move from {request.status} to {status}"
    message += f"; allowed: {', '.join(allowed)}" if allowed else "; no move is allowed"
    if VIA_DISPATCH in NEXT[request.status] and status != VIA_DISPATCH:
        message += f" (and {VIA_DISPATCH}, through the dispatch endpoint)"
    return conflict(message, current=request.status, allowed=allowed)


def mark_dispatched(
    session,
    *,
    actor,
    request: CasevacRequest,
    asset_id: str,
    facility_id: str,
    medical_crew: bool,
    surgery_at_destination: bool,
) -> bool:
    """requested|acknowledged -> dispatched with the asset and facility, in the caller's transaction (no
    commit). False when another transaction changed the request first (the caller answers 409)."""
    return _move(
        session,
        actor=actor,
        request=request,
        to_status=VIA_DISPATCH,
        note=None,
        values={
            "asset_id": asset_id,
            "facility_id": facility_id,
            "medical_crew": medical_crew,
            "surgery_at_destination": surgery_at_destination,
        },
    )


def answer(request: CasevacRequest) -> dict:
    """The request as the API answers it (RequestOut), for another sub-domain's endpoint that answers with the
    request it moved (the dispatch): the requests' serialiser stays theirs."""
    return _REQUEST_OUT.dump(request)


def _move(
    session, *, actor, request: CasevacRequest, to_status: str, note: str | None, values: dict | None = None
) -> bool:
    """The conditional UPDATE ... WHERE status = <what we read>: exactly one of racing moves wins."""
    from_status = request.status
    if to_status not in NEXT.get(from_status, ()):
        return False
    now = clock.now()
    stamp = {f"{to_status}_at": func.coalesce(getattr(CasevacRequest, f"{to_status}_at"), now)}
    if to_status == VIA_DISPATCH:
        # Dispatching answers the request: it counts as acknowledged and stops the escalation clock.
        stamp["acknowledged_at"] = func.coalesce(CasevacRequest.acknowledged_at, now)
    moved = update_where(
        session,
        CasevacRequest,
        CasevacRequest.id == request.id,
        CasevacRequest.status == from_status,
        status=to_status,
        updated_at=now,
        **stamp,
        **(values or {}),
    )
    if moved != 1:
        return False
    session.refresh(request)
    session.add(
        StatusChange(
            request_id=request.id,
            status=to_status,
            from_status=from_status,
            at=now,
            by=actor.id if actor is not None else None,
            note=note,
        )
    )
    audit.record(
        session,
        actor,
        f"casevac.status.{to_status}",
        request,
        detail={"from": from_status, "to": to_status, **({k: v for k, v in (values or {}).items()})},
    )
    if to_status in FINAL_STATUSES:
        for hook in list(RELEASE_HOOKS):
            hook(session, request)
    for hook in list(STATUS_HOOKS):
        hook(session, request, from_status)
    session.flush()
    session.expire(request, ["history"])
    events.publish(session, "casevac.updated", request, change="status", from_status=from_status)
    return True


# ---- escalation (the sweeper's task) -------------------------------------------------------------


def escalate(session, *, now: datetime, settings) -> int:
    """API.md "Escalation": an urgent or urgent-surgical request not acknowledged within
    ESCALATE_AFTER_SECONDS raises casevac.escalated once; a dispatched one that will miss its 10-1-2
    surgery deadline (due within the surgery leg's warning margin, not delivered) raises it once more.
    Exactly once across processes: UPDATE ... WHERE escalated_at IS NULL; commits each escalation."""
    count = 0
    cutoff = now - timedelta(seconds=settings.ESCALATE_AFTER_SECONDS)
    unacknowledged = (
        session.execute(
            select(CasevacRequest.id)
            .where(
                CasevacRequest.status == "requested",
                CasevacRequest.precedence.in_(URGENT),
                CasevacRequest.escalated_at.is_(None),
                CasevacRequest.created_at <= cutoff,
            )
            .order_by(CasevacRequest.created_at)
        )
        .scalars()
        .all()
    )
    for request_id in unacknowledged:
        won = (
            update_where(
                session,
                CasevacRequest,
                CasevacRequest.id == request_id,
                CasevacRequest.escalated_at.is_(None),
                CasevacRequest.status == "requested",
                escalated_at=now,
            )
            == 1
        )
        if won:
            request = session.get(CasevacRequest, request_id)
            session.refresh(request)
            _escalation_event(
                session,
                request,
                reason="not_acknowledged",
                waited_seconds=int((now - request.created_at).total_seconds()),
            )
            count += 1
        session.commit()

    surgery_margin = ten_one_two.LEGS[2].at_risk_before
    flying = (
        session.execute(
            select(CasevacRequest)
            .where(
                CasevacRequest.status.in_(("dispatched", "at_pickup", "in_transit")),
                CasevacRequest.precedence.in_(URGENT),
                CasevacRequest.surgery_escalated_at.is_(None),
            )
            .options(selectinload(CasevacRequest.casualties))
        )
        .scalars()
        .all()
    )
    for request in flying:
        due = ten_one_two.surgery_due(request)
        if now < due - surgery_margin:
            continue
        won = (
            update_where(
                session,
                CasevacRequest,
                CasevacRequest.id == request.id,
                CasevacRequest.surgery_escalated_at.is_(None),
                CasevacRequest.status.in_(("dispatched", "at_pickup", "in_transit")),
                surgery_escalated_at=now,
            )
            == 1
        )
        if won:
            session.refresh(request)
            _escalation_event(session, request, reason="surgery_deadline", surgery_due=due.isoformat())
            count += 1
        session.commit()
    return count


def _escalation_event(session, request: CasevacRequest, *, reason: str, **extra) -> None:
    audit.record(session, None, "casevac.escalate", request, detail={"reason": reason})
    events.publish(
        session,
        "casevac.escalated",
        request,
        coordinators=audience.coordinators_and_admins(request.mission_id),
        reason=reason,
        **extra,
    )
