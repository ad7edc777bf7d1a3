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

from sqlalchemy import bindparam, func, select, text, update

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


def sequence(engine) -> int:
    """Assign seqs to committed, unsequenced events, oldest insert first; returns how many."""
    with engine.connect() as conn:
        # Cheap unlocked look first, so an idle poll never takes the lock (nor SQLite's write lock).
        if conn.execute(select(Event.id).where(Event.seq.is_(None)).limit(1)).first() is None:
            return 0
        conn.rollback()
        total = 0
        while True:
            if engine.dialect.name == "sqlite":
                # BEGIN IMMEDIATE takes the single writer lock before reading max(seq): serialized.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEQUENCE_LOCK_KEY})
            try:
                # Read after the lock: a READ COMMITTED statement sees every earlier holder's commit.
                last = conn.execute(select(func.coalesce(func.max(Event.seq), 0))).scalar_one()
                ids = conn.execute(select(Event.id).where(Event.seq.is_(None)).order_by(Event.id)
                                   .limit(BATCH)).scalars().all()
                if ids:
                    conn.execute(update(Event).where(Event.id == bindparam("b_id"))
                                 .values(seq=bindparam("b_seq")),
                                 [{"b_id": id_, "b_seq": last + n} for n, id_ in enumerate(ids, start=1)])
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            total += len(ids)
            if len(ids) < BATCH:
                return total


def last_seq(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.coalesce(func.max(Event.seq), 0))).scalar_one()


class Relay:
    """One per process: the local delivery cursor, the wake-up signal and the background loop."""

    def __init__(self):
        self.cursor: int | None = None  # highest seq emitted by this process
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self.running = False
        self.app = None
        self.poll_seconds = 1.0
        self.notify_others = None  # callable(seq) set by realtime.setup when Redis is configured

    # -- the two steps -------------------------------------------------------------------------------
    def start_from_now(self, engine) -> None:
        """Events sequenced before this process started are for `sync`, not for live emits."""
        self.cursor = last_seq(engine)

    def deliver(self, engine) -> int:
        """Emit every event above this process's cursor to its rooms on this process; returns how many."""
        if self.cursor is None:
            self.start_from_now(engine)
        delivered = 0
        while True:
            with engine.connect() as conn:
                rows = conn.execute(select(Event.id, Event.seq, Event.type, Event.at, Event.data, Event.rooms,
                                           Event.emitted_at)
                                    .where(Event.seq > self.cursor).order_by(Event.seq).limit(BATCH)).mappings().all()
            if not rows:
                return delivered
            for row in rows:
                # Local only: every process delivers the log to its own clients (see module docstring).
                socketio.emit(row["type"], envelope(row), to=list(row["rooms"]), ignore_queue=True)
                self.cursor = row["seq"]
            delivered += len(rows)
            first_emits = [row["id"] for row in rows if row["emitted_at"] is None]
            if first_emits:
                with engine.begin() as conn:
                    conn.execute(update(Event).where(Event.id.in_(first_emits), Event.emitted_at.is_(None))
                                 .values(emitted_at=clock.now()))
            if len(rows) < BATCH:
                return delivered

    def run_once(self, engine=None) -> int:
        """Sequence then deliver (serialised within the process); returns how many events were emitted."""
        engine = engine or db.engine
        with self._lock:
            sequenced = sequence(engine)
            delivered = self.deliver(engine)
        if sequenced and self.notify_others is not None:
            self.notify_others(self.cursor)
        return delivered

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
