"""Reads of requests by key, without a visibility check: for callers inside the domain that already hold the
right to the record (the field links' sender, the TAK gateway's service user, an answer being made smaller).
Visibility-checked reads for users are casevac.requests.access.get_visible."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from casevac.requests.models import ACTIVE_STATUSES, FINAL_STATUSES, CasevacRequest, Casualty

_WITH_CASUALTIES = selectinload(CasevacRequest.casualties).selectinload(Casualty.signs_history)


def by_client_ref(session, *, user_id: str, client_ref: str) -> CasevacRequest | None:
    """The request this user filed under this client_ref (the key of an idempotent filing)."""
    return session.execute(
        select(CasevacRequest).where(CasevacRequest.filed_by == user_id, CasevacRequest.client_ref == client_ref)
    ).scalar_one_or_none()


def find_request(session, request_id: str) -> CasevacRequest | None:
    """The request by id, no visibility check: for a caller that already answered it to a user who may see it."""
    return session.get(CasevacRequest, request_id)


def latest_filed_by(session, *, user_id: str, active_only: bool = False) -> CasevacRequest | None:
    """The newest request the user filed (only among the active ones with `active_only`)."""
    query = select(CasevacRequest).where(CasevacRequest.filed_by == user_id)
    if active_only:
        query = query.where(CasevacRequest.status.in_(ACTIVE_STATUSES))
    order = (CasevacRequest.created_at.desc(), CasevacRequest.id.desc())
    return session.execute(query.order_by(*order).limit(1)).scalar_one_or_none()


def with_casualties(session, request_id) -> CasevacRequest | None:
    """The request with its casualties and their signs history loaded (None for no such id)."""
    if not isinstance(request_id, str):
        return None
    return session.execute(
        select(CasevacRequest).where(CasevacRequest.id == request_id).options(_WITH_CASUALTIES)
    ).scalar_one_or_none()


def open_in_mission(session, *, mission_id: str) -> list[CasevacRequest]:
    """The mission's requests not in a final state, oldest first, casualties loaded."""
    query = (
        select(CasevacRequest)
        .where(CasevacRequest.mission_id == mission_id, CasevacRequest.status.not_in(FINAL_STATUSES))
        .options(_WITH_CASUALTIES)
        .order_by(CasevacRequest.created_at)
    )
    return list(session.execute(query).scalars())
