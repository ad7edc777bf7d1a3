"""The relay: delivery order is commit order, nothing committed is ever skipped, emits never fail a write."""

from __future__ import annotations

import random
import threading
import time

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from config.extensions import db, socketio
from core import clock
from realtime import audience, events, replay
from realtime.models import Event
from realtime.relay import Relay, relay, sequence
from tests.factories import MissionFactory, UserFactory
from tests.realtime.conftest import received, sync_all


@pytest.fixture
def side_session(pg_app):
    """A second session (another transaction); rolled back and closed at teardown whatever happens."""
    sessions = []

    def _make():
        sessions.append(Session(db.engine))
        return sessions[-1]

    yield _make
    for session in sessions:
        session.rollback()
        session.close()


def test_out_of_order_commit_is_not_skipped(pg_app, connect, fresh_relay, side_session):
    """The outbox gap: transaction A inserts first but commits after B. A client that has seen B must
    still get A, live and by sync (ARCHITECTURE.md, Decisions, "seq gaps")."""
    mission = MissionFactory()
    coordinator = UserFactory(role="coordinator", mission_id=mission.id)
    rooms = audience.coordinators(mission.id)
    c = connect(coordinator)

    slow = side_session()
    a = events.publish(slow, "casevac.created", rooms, {"name": "A"}, mission_id=mission.id)
    slow.flush()  # A has its insert id now, and is not committed
    b = events.publish(db.session, "casevac.created", rooms, {"name": "B"}, mission_id=mission.id)
    db.session.flush()
    b_id = b.id
    db.session.commit()
    assert a.id < b_id

    relay.run_once()
    [seen_b] = received(c)
    assert seen_b["data"]["name"] == "B"
    # The client's watermark is now B's seq: with insert ids as seqs, A (a smaller id) would be below it.
    slow.commit()
    relay.run_once()
    [live_a] = received(c)
    assert live_a["data"]["name"] == "A" and live_a["seq"] > seen_b["seq"]
    missed, _ = sync_all(c, since=seen_b["seq"])
    assert [e["data"]["name"] for e in missed] == ["A"]


def test_concurrent_writers_and_a_polling_reader_never_miss_an_event(pg_app, fresh_relay):
    """Many transactions commit in random order while a reader follows its watermark through sync and a
    relay sequences continuously: the reader sees every event exactly once, seqs 1..N without a hole."""
    mission = MissionFactory()
    coordinator = UserFactory(role="coordinator", mission_id=mission.id)
    mission_id, rooms = mission.id, audience.coordinators(mission.id)
    writers, per_writer = 6, 12
    done = threading.Event()
    errors: list[BaseException] = []
    app = pg_app

    def writer(n):
        try:
            with app.app_context():
                for i in range(per_writer):
                    with Session(db.engine) as session:
                        events.publish(session, "probe", rooms, {"w": n, "i": i}, mission_id=mission_id)
                        session.flush()
                        time.sleep(random.uniform(0, 0.01))  # hold the insert id uncommitted a while
                        session.commit()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def sequencer():
        with app.app_context():
            while not done.is_set():
                sequence(db.engine)
            sequence(db.engine)

    seen: list[dict] = []
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    seq_thread = threading.Thread(target=sequencer)
    seq_thread.start()
    for t in threads:
        t.start()
    since = 0
    with app.app_context():
        while any(t.is_alive() for t in threads) or len(seen) < writers * per_writer:
            with Session(db.engine) as session:
                user = session.get(type(coordinator), coordinator.id)
                page = replay.events_since(session, user=user, rooms=rooms, since=since)
            seen += page["events"]
            since = page["last_seq"]
            if not any(t.is_alive() for t in threads):
                done.set()
            if done.is_set() and not seq_thread.is_alive() and not page["events"] and not page["more"]:
                break
    done.set()
    for t in threads:
        t.join()
    seq_thread.join()
    assert not errors
    assert sorted((e["data"]["w"], e["data"]["i"]) for e in seen) == sorted(
        (w, i) for w in range(writers) for i in range(per_writer)
    )
    assert [e["seq"] for e in seen] == list(range(1, writers * per_writer + 1))


def test_events_committed_without_a_wake_up_are_caught_up(app, mission, make_user, connect, fresh_relay):
    """A process that crashed between commit and emit (or another program writing the log): the next
    relay step of any process sequences and emits it."""
    coordinator = make_user("coordinator")
    c = connect(coordinator)
    with db.engine.begin() as conn:  # no Session, no after-commit hook: nobody is woken
        conn.execute(
            insert(Event).values(
                type="casevac.created",
                rooms=audience.coordinators(mission.id),
                data={"n": 1},
                mission_id=mission.id,
                at=clock.now(),
            )
        )
    assert received(c) == []
    assert relay.run_once() == 1
    [envelope] = received(c)
    assert envelope["seq"] == 1
    row = db.session.execute(select(Event)).scalar_one()
    assert row.seq == 1 and row.emitted_at is not None


def test_seqs_follow_commit_order_and_are_assigned_once(app, mission, publish):
    rooms = audience.coordinators(mission.id)
    ids = [publish("probe", rooms, {"n": n}) for n in range(3)]
    assert sequence(db.engine) == 3
    assert sequence(db.engine) == 0
    rows = db.session.execute(select(Event.id, Event.seq).order_by(Event.seq)).all()
    assert [(r.id, r.seq) for r in rows] == list(zip(ids, [1, 2, 3], strict=False))


def test_a_failing_emit_never_fails_the_business_write_and_is_retried(
    app, mission, make_user, connect, fresh_relay, monkeypatch
):
    coordinator = make_user("coordinator")
    mission_id = mission.id
    c = connect(coordinator)
    real_emit = socketio.emit

    def broken(*args, **kwargs):
        raise ConnectionError("transport down")

    monkeypatch.setattr(socketio, "emit", broken)
    events.publish(db.session, "casevac.created", audience.coordinators(mission_id), {"n": 1}, mission_id=mission_id)
    db.session.commit()  # the after-commit wake-up cannot fail the commit
    assert db.session.execute(select(Event)).scalar_one().data == {"n": 1}
    with pytest.raises(ConnectionError):
        relay.run_once()  # the background loop logs this and retries
    monkeypatch.setattr(socketio, "emit", real_emit)
    assert relay.run_once() == 1
    assert [e["data"]["n"] for e in received(c)] == [1]


def test_announced_events_are_emitted_in_seq_order_and_a_gap_reads_the_log(
    app, mission, make_user, connect, fresh_relay, monkeypatch
):
    """Another process announces the events it sequenced (Redis): this process emits them at once when they
    follow its cursor; a gap (a lost announcement) or nothing announced makes it read the log instead."""
    c = connect(make_user("coordinator"))
    rooms = audience.coordinators(mission.id)
    other = Relay()  # the process that sequences, with what it announces captured
    other.start_from_now(db.engine)
    announcements = []
    other.notify_others = announcements.append
    woken = []
    monkeypatch.setattr(relay, "wake", lambda: woken.append(1))

    def file(n):
        events.publish(db.session, "casevac.created", rooms, {"n": n}, mission_id=mission.id)
        db.session.commit()
        other.run_once()
        received(c)  # what the other process emitted (same Socket.IO server in this test): not this one's
        return announcements.pop()

    first, second, third = file(1), file(2), file(3)
    relay.on_announced(first)
    assert [(e["seq"], e["data"]["n"]) for e in received(c)] == [(1, 1)] and not woken
    relay.on_announced(third)  # seq 3 while this process is at 1: the announcement of 2 was lost
    assert received(c) == [] and woken == [1]
    assert relay.run_once() == 2  # reading the log
    assert [e["seq"] for e in received(c)] == [2, 3]
    relay.on_announced(second)  # late: already delivered
    relay.on_announced(None)  # a batch too large to carry: read the log
    assert received(c) == [] and woken == [1, 1]


def test_a_failing_after_commit_callback_does_not_undo_the_commit(app, mission):
    def explode():
        raise RuntimeError("relay down")

    events.on_commit(explode)
    try:
        events.publish(db.session, "probe", audience.coordinators(mission.id), {}, mission_id=mission.id)
        db.session.commit()
    finally:
        events._after_commit.remove(explode)
    assert db.session.execute(select(Event)).scalar_one().type == "probe"


def test_the_after_commit_callbacks_run_once_per_commit_that_published(app, mission):
    calls = []

    def count():
        calls.append(1)

    events.on_commit(count)
    try:
        session = db.session()
        for _ in range(3):
            events.publish(db.session, "probe", audience.coordinators(mission.id), {}, mission_id=mission.id)
            db.session.commit()
        assert len(calls) == 3
        events.publish(db.session, "probe", audience.coordinators(mission.id), {}, mission_id=mission.id)
        db.session.rollback()  # nothing published survives: no wake-up, and none carried over
        db.session.commit()
        assert len(calls) == 3
        events.publish(db.session, "probe", audience.coordinators(mission.id), {}, mission_id=mission.id)
        db.session.commit()
        assert len(calls) == 4
        assert db.session() is session  # the same Session throughout
    finally:
        events._after_commit.remove(count)
