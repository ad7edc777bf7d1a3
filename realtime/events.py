"""publish(): the one way to write an event. The row joins the caller's transaction; after commit the
relay emits it (the relay is registered by realtime at start-up; until then nothing is emitted live,
and `sync` still replays from the table)."""

from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import event as sa_event

from core import clock
from realtime.models import Event

log = logging.getLogger(__name__)

_after_commit: list[Callable[[], None]] = []


def on_commit(callback: Callable[[], None]) -> None:
    """Register what runs after a transaction that published events commits (the relay's wake-up)."""
    if callback not in _after_commit:
        _after_commit.append(callback)


def publish(session, type: str, audience: list[str], data: dict, *, mission_id: str | None = None) -> Event:
    """Add an event to the caller's transaction; `audience` is a list of room names (realtime.audience)."""
    if not audience:
        raise ValueError("an event needs at least one room")
    row = Event(type=type, rooms=list(audience), data=data, mission_id=mission_id, at=clock.now())
    session.add(row)
    _arm(session)
    return row


def _arm(session) -> None:
    # db.session is a scoped_session: listen on the real Session behind it. The two listeners are added once
    # per Session (SQLAlchemy's once=True never removes a listener, so adding them per transaction piled them
    # up); the flag says whether the transaction that ends published anything.
    target = session.registry() if hasattr(session, "registry") else session
    target.info["events_armed"] = True
    if not target.info.get("events_listening"):
        target.info["events_listening"] = True
        sa_event.listen(target, "after_commit", _fire)
        sa_event.listen(target, "after_rollback", _clear)


def _fire(session) -> None:
    if not session.info.pop("events_armed", None):
        return
    for callback in list(_after_commit):
        try:
            callback()
        except Exception:
            log.exception("after-commit event callback failed")


def _clear(session) -> None:
    session.info.pop("events_armed", None)


def emit_volatile(type: str, audience: list[str], data: dict, *, coalesce_key: str | None = None) -> None:
    """A live-only event (not logged, not replayed by sync), e.g. asset.position. Events with the same
    `coalesce_key` (e.g. the asset id) are coalesced: at most one per key per second per client, the newest
    value last. Never raises: a lost position is superseded by the next one."""
    from realtime import setup

    envelope = {"seq": None, "type": type, "at": clock.now().isoformat(), "data": data}
    try:
        setup.dispatch_volatile(type, list(audience), envelope, coalesce_key)
    except Exception:  # noqa: BLE001 - live-only: never fail the caller
        log.warning("volatile emit of %s failed", type, exc_info=True)
