"""The relay: turns committed event-log rows into live Socket.IO emits, and never loses one.

Two steps, run by a background task in every server process (and by tests, step by step):

1. `sequence()`: give every committed, unsequenced event its delivery `seq`, in one serialized step
   (an advisory lock on PostgreSQL, the single writer lock on SQLite). The insert id is not the
   delivery order: ids of concurrent transactions commit out of order, so a client that saw id 11
   could later miss id 10 (ARCHITECTURE.md, Decisions, "seq gaps"). A seq is only assigned to an
   already committed row, and the assignments are serialized, so once seq N is visible every seq
   below N is visible too: a client's "last seen seq" is a complete watermark.
2. `deliver()`: emit, to this process's own clients, every event with a seq above the highest this
   process has emitted (`ignore_queue`: each process fans the event log out itself). The process that
   sequenced events announces them on Redis (the rows themselves, when few) before emitting its own; another
   process emits an announced event at once when it directly follows its own cursor, and otherwise reads
   the log. When Redis is down the others still deliver within `RELAY_POLL_SECONDS`, from the database. So
   an emit is never lost to a Redis outage, a lost or out-of-order announcement costs a read of the log,
   never an event or the seq order, and a crash between commit and emit is caught up by any process.

Clients deduplicate by seq and call `sync` after every (re)connect for what they missed while away.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, func, select, update

from config.extensions import db, socketio
from core import clock
from realtime import authority
from realtime.models import Event

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key of the sequencing step ("seq" in ASCII); advisory locks are per database.
SEQUENCE_LOCK_KEY = 0x736571
BATCH = 500
# At most this many events ride along with an announcement on Redis; a larger batch announces only that
# there is something to read.
ANNOUNCE_MAX = 50


def envelope(row: Mapping) -> dict:
    """The wire format of every logged event (API.md, Real-time), from an event-log row mapping."""
    return {"seq": row["seq"], "type": row["type"], "at": clock.as_utc(row["at"]).isoformat(), "data": row["data"]}


@contextmanager
def _connection(bind: Engine | Connection):
    """The relay's step runs on one connection throughout (one checkout, one pre-ping); tests pass an engine."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


def sequence(bind: Engine | Connection) -> int:
    """Assign seqs to committed, unsequenced events, oldest insert first; returns how many.

    Few round trips, because the first emit waits for this: on PostgreSQL the lock is taken by the same
    statement that looks for unsequenced rows (an idle poll never takes it), then one UPDATE numbers a batch.
    """
    total = 0
    unsequenced = select(Event.id).where(Event.seq.is_(None)).exists()
    with _connection(bind) as conn:
        while True:
            if conn.dialect.name == "sqlite":
                # Cheap unlocked look first, so an idle poll never takes SQLite's single writer lock.
                if not conn.execute(select(unsequenced)).scalar():
                    conn.rollback()
                    return total
                conn.rollback()
                # BEGIN IMMEDIATE takes the single writer lock before the UPDATE reads max(seq): serialized.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif conn.execute(select(func.pg_advisory_xact_lock(SEQUENCE_LOCK_KEY)).where(unsequenced)).first() is None:
                conn.rollback()
                return total
            try:
                # One statement, after the lock: under READ COMMITTED its snapshot sees every earlier holder's
                # commit, so max(seq) is the true last seq and the batch gets the next ones in insert order.
                last = select(func.coalesce(func.max(Event.seq), 0)).scalar_subquery()
                batch = (
                    select(Event.id, (last + func.row_number().over(order_by=Event.id)).label("seq"))
                    .where(Event.seq.is_(None))
                    .order_by(Event.id)
                    .limit(BATCH)
                    .subquery()
                )
                numbered = conn.execute(update(Event).where(Event.id == batch.c.id).values(seq=batch.c.seq)).rowcount
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            total += numbered
            if numbered < BATCH:
                return total


def last_seq(bind: Engine | Connection) -> int:
    with _connection(bind) as conn:
        last = conn.execute(select(func.coalesce(func.max(Event.seq), 0))).scalar_one()
        conn.rollback()
        return last


class Relay:
    """One per process: the local delivery cursor, the wake-up signal and the background loop."""

    def __init__(self):
        self.cursor: int | None = None  # highest seq emitted by this process
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self.running = False
        self.poll_seconds = 1.0
        # callable(events: list of {"envelope", "rooms"} or None) set by realtime.setup when Redis is configured
        self.notify_others = None

    # -- the two steps -------------------------------------------------------------------------------
    def start_from_now(self, bind: Engine | Connection) -> None:
        """Events sequenced before this process started are for `sync`, not for live emits."""
        self.cursor = last_seq(bind)

    def deliver(self, bind: Engine | Connection, *, announce: bool = False) -> int:
        """Emit every event above this process's cursor to its rooms on this process; returns how many.
        With `announce`, first tell the other processes (with the events themselves when few)."""
        delivered = 0
        with _connection(bind) as conn:
            if self.cursor is None:
                self.start_from_now(conn)
            while True:
                rows = (
                    conn.execute(
                        select(
                            Event.id,
                            Event.seq,
                            Event.type,
                            Event.at,
                            Event.data,
                            Event.rooms,
                            Event.views,
                            Event.emitted_at,
                        )
                        .where(Event.seq > self.cursor)
                        .order_by(Event.seq)
                        .limit(BATCH)
                    )
                    .mappings()
                    .all()
                )
                outgoing = [(row["type"], envelope(row), list(row["rooms"]), row["views"]) for row in rows]
                if announce and self.notify_others is not None:
                    # Before this process's own emits: the others emit side by side with it.
                    self.notify_others(
                        [{"envelope": env, "rooms": rooms, "views": views} for _, env, rooms, views in outgoing]
                        if len(outgoing) <= ANNOUNCE_MAX
                        else None
                    )
                    announce = False
                # Expired tokens end their sockets first: once per batch (and on every idle turn).
                authority.expire_due()
                for type_, env, rooms, views in outgoing:
                    # Local only: every process delivers the log to its own clients (see module docstring),
                    # with the user's authority as it is now (realtime.authority).
                    authority.emit_logged(type_, env, rooms, views)
                    self.cursor = env["seq"]
                delivered += len(rows)
                first_emits = [row["id"] for row in rows if row["emitted_at"] is None]
                if first_emits:
                    conn.execute(
                        update(Event)
                        .where(Event.id.in_(first_emits), Event.emitted_at.is_(None))
                        .values(emitted_at=clock.now())
                    )
                    conn.commit()
                else:
                    conn.rollback()
                if len(rows) < BATCH:
                    return delivered

    def run_once(self, engine=None) -> int:
        """Sequence then deliver (serialised within the process, on one connection); returns how many events
        were emitted."""
        engine = engine or db.engine
        with self._lock, engine.connect() as conn:
            return self.deliver(conn, announce=sequence(conn) > 0)

    def on_announced(self, events: list[dict] | None) -> None:
        """Another process sequenced events (Redis): emit the announced ones at once when they directly follow
        this process's cursor (seq order, nothing skipped); otherwise (none sent, a gap, not started) read the
        log."""
        try:
            emitted = bool(events) and self._emit_announced(events)
        except (KeyError, TypeError):  # not what a relay announces (e.g. another version): read the log
            emitted = False
        if not emitted:
            self.wake()

    def _emit_announced(self, events: list[dict]) -> bool:
        with self._lock:
            if self.cursor is None:
                return False
            ahead = [e for e in events if e["envelope"]["seq"] > self.cursor]
            if [e["envelope"]["seq"] for e in ahead] != list(range(self.cursor + 1, self.cursor + 1 + len(ahead))):
                return False
            if any(authority.needs_database(e["envelope"]["type"], e["rooms"]) for e in ahead):
                return False  # checked against the database by the relay loop, which reads the log
            authority.expire_due()
            for event in ahead:
                authority.emit_to_audiences(
                    event["envelope"]["type"], event["envelope"], list(event["rooms"]), event.get("views")
                )
                self.cursor = event["envelope"]["seq"]
            return True

    # -- the background loop -------------------------------------------------------------------------
    def wake(self) -> None:
        """When another process announces new events, or to stop: the loop runs at its next turn."""
        self._wake.set()

    def wake_now(self) -> None:
        """After a commit that published events: wake the loop and yield to it at once, so that under gevent it
        starts sequencing while the request goes on (else it would wait until the request blocks on I/O,
        after building its response). Under threads the yield is a plain sleep(0)."""
        self._wake.set()
        if self.running:
            socketio.sleep(0)

    def loop(self, app) -> None:
        self.running = True
        with app.app_context():
            while self.running:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                try:
                    self.run_once(db.engine)
                except Exception:
                    log.exception("relay step failed; retrying")
                    time.sleep(min(self.poll_seconds, 1.0))

    def stop(self) -> None:
        self.running = False
        self._wake.set()


relay = Relay()
