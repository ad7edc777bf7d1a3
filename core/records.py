"""Kernel helpers of every domain's services: a row of the caller's mission by id, a constraint violation
answered as a conflict, and the conditional UPDATE that decides a race."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from core.auth import can_see_mission
from core.db import is_id
from core.errors import conflict, not_found


def get_in_mission(session, model, record_id, *, actor, what: str, **options):
    """The row of `model` with this id if the actor may see its mission, else 404 (the same answer for an
    unknown id, a malformed one and another mission's: API.md, Conventions)."""
    record = session.get(model, record_id, **options) if is_id(record_id) else None
    if record is None or not can_see_mission(actor, record.mission_id):
        raise not_found(what)
    return record


def flush_or_conflict(session, message: str, **extra) -> None:
    """Flush what the session holds; a unique, exclusion or foreign-key violation rolls back and answers 409
    with `message` (the database decides races: ARCHITECTURE.md)."""
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise conflict(message, **extra) from None


def update_where(session, model, /, *conditions, **values) -> int:
    """UPDATE the rows of `model` that meet `conditions` with `values`, in the caller's transaction, leaving
    the objects the session holds as they are; the number of rows changed. With the state a move starts
    from among the conditions, this is how every service decides a race: of concurrent callers, exactly one
    changes the row and gets 1 (the database's row lock decides: ARCHITECTURE.md)."""
    statement = update(model).where(*conditions).values(**values)
    return session.execute(statement.execution_options(synchronize_session=False)).rowcount
