"""The relay: turns committed event-log rows into live Socket.IO emits, and never loses one.

Two steps, run by a background task in every server process (and by tests, step by step):

1. `sequence()`: give every committed, unsequenced event its delivery `seq`, in one serialized step
   (an advisory lock on PostgreSQL, the single writer lock on SQLite). The insert id is not the
   delivery order: ids of concurrent transactions commit out of order, so a client that saw id 11
   could later miss id 10 (ARCHITECTURE.md, Decisions, "seq gaps"). A seq is only assigned to an
   already committed row, and the assignments are serialized, so once seq N is visible every seq
   below N is visible too: a client's "last seen seq" is a complete watermark.
2. `deliver()`: emit, to this process's own clients, every event with a seq above the highest this
   process has emitted (`ignore_queue`: each process fans the event log out itself). Redis only
   carries a wake-up notice so that the other processes deliver at once instead of at their next poll;
   when Redis is down they still deliver within `RELAY_POLL_SECONDS`, from the database. So an emit
   is never lost to a Redis outage, and a crash between commit and emit is caught up by any process.

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
from realtime.models import Event

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key of the sequencing step ("seq" in ASCII); advisory locks are per database.
SEQUENCE_LOCK_KEY = 0x736571
BATCH = 500


def envelope(event: Event | dict) -> dict:
    """The wire format of every logged event (API.md, Real-time)."""
    if isinstance(event, Mapping):
        return {"seq": event["seq"], "type": event["type"], "at": clock.as_utc(event["at"]).isoformat(),
                "data": event["data"]}
    return {"seq": event.seq, "type": event.type, "at": clock.as_utc(event.at).isoformat(), "data": event.data}


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
            elif conn.execute(select(func.pg_advisory_xact_lock(SEQUENCE_LOCK_KEY)).where(unsequenced)).first() \
                    is None:
                conn.rollback()
                return total
            try:
                # One statement, after the lock: under READ COMMITTED its snapshot sees every earlier holder's
                # commit, so max(seq) is the true last seq and the batch gets the next ones in insert order.
                last = select(func.coalesce(func.max(Event.seq), 0)).scalar_subquery()
                batch = (select(Event.id, (last + func.row_number().over(order_by=Event.id)).label("seq"))
                         .where(Event.seq.is_(None)).order_by(Event.id).limit(BATCH).subquery())
                numbered = conn.execute(update(Event).where(Event.id == batch.c.id)
                                        .values(seq=batch.c.seq)).rowcount
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
        self.app = None
        self.poll_seconds = 1.0
        self.notify_others = None  # callable(count sequenced) set by realtime.setup when Redis is configured

    # -- the two steps -------------------------------------------------------------------------------
    def start_from_now(self, bind: Engine | Connection) -> None:
        """Events sequenced before this process started are for `sync`, not for live emits."""
        self.cursor = last_seq(bind)

    def deliver(self, bind: Engine | Connection) -> int:
        """Emit every event above this process's cursor to its rooms on this process; returns how many."""
        delivered = 0
        with _connection(bind) as conn:
            if self.cursor is None:
                self.start_from_now(conn)
            while True:
                rows = conn.execute(select(Event.id, Event.seq, Event.type, Event.at, Event.data, Event.rooms,
                                           Event.emitted_at)
                                    .where(Event.seq > self.cursor).order_by(Event.seq).limit(BATCH)).mappings().all()
                for row in rows:
                    # Local only: every process delivers the log to its own clients (see module docstring).
                    socketio.emit(row["type"], envelope(row), to=list(row["rooms"]), ignore_queue=True)
                    self.cursor = row["seq"]
                delivered += len(rows)
                first_emits = [row["id"] for row in rows if row["emitted_at"] is None]
                if first_emits:
                    conn.execute(update(Event).where(Event.id.in_(first_emits), Event.emitted_at.is_(None))
                                 .values(emitted_at=clock.now()))
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
            sequenced = sequence(conn)
            if sequenced and self.notify_others is not None:
                # Before this process's own delivery: the others read the log and emit side by side with it.
                self.notify_others(sequenced)
            return self.deliver(conn)

    # -- the background loop -------------------------------------------------------------------------
    def wake(self) -> None:
        """After a commit that published events, or when another process announces new ones."""
        self._wake.set()

    def loop(self, app) -> None:
        self.app = app
        self.running = True
        with app.app_context():
            while self.running:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                try:
                    self.run_once(db.engine)
                except Exception:  # noqa: BLE001 - the database may be briefly away: retry next tick
                    log.exception("relay step failed; retrying")
                    time.sleep(min(self.poll_seconds, 1.0))

    def stop(self) -> None:
        self.running = False
        self._wake.set()


relay = Relay()
