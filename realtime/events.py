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


def publish(
    session,
    type: str,
    audience: list[str],
    data: dict,
    *,
    mission_id: str | None = None,
    views: list[tuple[list[str], dict]] | None = None,
) -> Event:
    """Add an event to the caller's transaction; `audience` is a list of room names (realtime.audience).

    `views`: narrower audiences that get their own data, `[(rooms, data)]` (e.g. the filing medic's room with
    a minimal payload), so no event carries a field its audience does not need. A socket in several of them
    gets the data of the first that holds one of its rooms, `audience` first; live emits and `sync` replays
    deliver the same per-audience data. A room belongs to one audience only."""
    rooms = list(audience)
    stored = []
    for view_rooms, view_data in views or ():
        if not view_rooms or any(room in rooms for room in view_rooms):
            raise ValueError("a view needs rooms of its own (a room belongs to one audience)")
        rooms += list(view_rooms)
        stored.append({"rooms": list(view_rooms), "data": view_data})
    if not rooms:
        raise ValueError("an event needs at least one room")
    row = Event(type=type, rooms=rooms, data=data, views=stored or None, mission_id=mission_id, at=clock.now())
    session.add(row)
    _arm(session)
    return row


def audience_rooms(rooms: list[str], views: list[dict] | None) -> list[str]:
    """The rooms of the event's first audience (those that get its `data`)."""
    if not views:
        return list(rooms)
    narrower = {room for view in views for room in view["rooms"]}
    return [room for room in rooms if room not in narrower]


def data_for(user_rooms, rooms: list[str], data: dict, views: list[dict] | None) -> dict:
    """The data a user in `user_rooms` gets (the first audience holding one of them): for `sync`."""
    if views:
        mine = set(user_rooms)
        if not mine.intersection(audience_rooms(rooms, views)):
            for view in views:
                if mine.intersection(view["rooms"]):
                    return view["data"]
    return data


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
