"""Retention of the event log (issue 17): events older than EVENTS_RETENTION_DAYS (default 30; 0 keeps
everything) are deleted by a sweeper task, oldest seq first, and never:

- the newest sequenced event (seqs continue from the highest one, so it always stays);
- an unsequenced event (the relay has not numbered it yet);
- anything a connected client may still need: each process keeps a floor per socket (the seq it connected
  at, then the watermark of its last `sync`: the `since` while it pages with `more`, the returned `last_seq`
  once caught up) and its relay's cursor; the lowest is the process's floor, published in Redis for the other
  processes (with an expiry, refreshed every sweep). Nothing above the lowest floor of any process is deleted;
  when Redis is configured but unreachable, nothing is deleted at all.

Only a contiguous prefix of seqs is deleted, so the retained range is `min(seq)..max(seq)` without holes, and
`sync` from before it answers `"truncated": true` with `"retained_from"` (the oldest seq kept): the client
missed events that no longer exist and reloads the state it shows over HTTP (docs/realtime.md).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from datetime import timedelta

from sqlalchemy import delete, func, select

from core import clock
from realtime.models import Event

log = logging.getLogger(__name__)

BATCH = 5000
PROCESS = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"

_floors: dict[str, int] = {}
_lock = threading.Lock()


def set_floor(sid: str, seq: int) -> None:
    """The socket needs every event with a seq above `seq`."""
    with _lock:
        _floors[sid] = int(seq)


def forget(sid: str) -> None:
    with _lock:
        _floors.pop(sid, None)


def local_floor() -> int | None:
    """The lowest seq above which this process's sockets and relay need events (None: they need nothing)."""
    from realtime.relay import relay

    with _lock:
        values = list(_floors.values())
    if relay.cursor is not None and relay.running:
        values.append(relay.cursor)
    return min(values) if values else None


def _redis(settings):
    from flask import current_app

    return current_app.extensions.get("redis") if settings.REDIS_URL else None


def deployment_floor(settings) -> tuple[bool, int | None]:
    """(known, floor) over every process: publish this process's floor, read the others'. `known` is False
    when Redis is configured but unreachable: then nothing may be deleted."""
    floor = local_floor()
    client = _redis(settings)
    if client is None:
        return True, floor
    prefix = f"{settings.REDIS_PREFIX}-retention-floor:"
    ttl = max(60, int(3 * settings.SWEEPER_INTERVAL_SECONDS))
    try:
        client.set(prefix + PROCESS, "none" if floor is None else str(floor), ex=ttl)
        values = [floor] if floor is not None else []
        for key in client.scan_iter(match=prefix + "*", count=500):
            raw = client.get(key)
            if raw not in (None, b"none", "none"):
                values.append(int(raw))
    except Exception as exc:  # noqa: BLE001 - Redis away: keep everything this time
        log.warning("event retention skipped: the other processes' floors are unknown (%s)", exc)
        return False, None
    return True, (min(values) if values else None)


def prune(session, *, now, days: float, floor: int | None, batch: int = BATCH) -> int:
    """Delete the oldest events older than `days`, at most `batch`, below `floor` and below the newest seq;
    returns how many."""
    if days <= 0:
        return 0
    newest = session.execute(select(func.max(Event.seq))).scalar()
    if newest is None:
        return 0
    limit = newest - 1 if floor is None else min(newest - 1, floor)
    cutoff = now - timedelta(days=days)
    rows = session.execute(
        select(Event.seq, Event.at).where(Event.seq.is_not(None), Event.seq <= limit).order_by(Event.seq).limit(batch)
    ).all()
    last = None
    for seq, at in rows:
        if clock.as_utc(at) >= cutoff:
            break
        last = seq
    if last is None:
        return 0
    return session.execute(delete(Event).where(Event.seq.is_not(None), Event.seq <= last)).rowcount


def retention_task(session, *, now, settings) -> int:
    """The sweeper task (realtime.setup registers it)."""
    if settings.EVENTS_RETENTION_DAYS <= 0:
        return 0
    known, floor = deployment_floor(settings)
    if not known:
        return 0
    return prune(session, now=now, days=settings.EVENTS_RETENTION_DAYS, floor=floor)


def retained_from(session) -> int | None:
    """The oldest seq kept (None: the log is empty)."""
    return session.execute(select(func.min(Event.seq))).scalar()
