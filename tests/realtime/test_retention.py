"""Retention of the event log (issue 17), on SQLite and PostgreSQL: old events go, the newest seq, unsequenced
rows and whatever a connected client (of any process) still needs stay; `sync` from before the retained
range says so."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis as redis_lib

from config.extensions import db
from core import clock
from realtime import audience, events, retention, sweeper
from realtime.models import Event
from realtime.relay import sequence
from tests.conftest import RUN_ID
from tests.e2e.conftest import free_port


def _publish_at(moment, mission_id, count=1):
    clock.freeze(moment)
    try:
        for n in range(count):
            events.publish(
                db.session, "asset.updated", audience.coordinators(mission_id), {"n": n}, mission_id=mission_id
            )
        db.session.commit()
    finally:
        clock.freeze(None)
    sequence(db.engine)


def _seqs() -> list[int | None]:
    db.session.expire_all()
    return [row.seq for row in db.session.execute(db.select(Event).order_by(Event.id)).scalars()]


def _settings(app, **changes):
    return app.extensions["settings"].with_(**changes)


def test_old_events_are_deleted_the_newest_and_recent_ones_stay(app, mission):
    now = clock.now()
    _publish_at(now - timedelta(days=45), mission.id, 4)  # seqs 1-4: old
    _publish_at(now - timedelta(days=1), mission.id, 2)  # seqs 5-6: recent
    effects = sweeper.run_once(db.session, now=now, settings=_settings(app))
    assert effects["realtime.retention"] == 4
    assert _seqs() == [5, 6]
    # Everything old, even the newest event: the newest seq stays (seqs continue from it).
    assert retention.prune(db.session, now=now + timedelta(days=90), days=30, floor=None) == 1
    db.session.commit()
    assert _seqs() == [6]
    _publish_at(now, mission.id)
    assert _seqs() == [6, 7]


def test_unsequenced_events_are_never_deleted(app, mission):
    now = clock.now()
    _publish_at(now - timedelta(days=45), mission.id, 3)
    clock.freeze(now - timedelta(days=60))
    events.publish(db.session, "asset.updated", audience.coordinators(mission.id), {}, mission_id=mission.id)
    db.session.commit()
    clock.freeze(None)
    retention.prune(db.session, now=now, days=30, floor=None)
    db.session.commit()
    assert _seqs() == [3, None]


def test_zero_days_keeps_everything(app, mission):
    now = clock.now()
    _publish_at(now - timedelta(days=4000), mission.id, 3)
    assert (
        sweeper.run_once(db.session, now=now, settings=_settings(app, EVENTS_RETENTION_DAYS=0))["realtime.retention"]
        == 0
    )
    assert _seqs() == [1, 2, 3]


def test_a_connected_clients_needs_are_kept_and_sync_before_the_range_says_so(app, mission, make_user, connect):
    now = clock.now()
    _publish_at(now - timedelta(days=45), mission.id, 6)  # seqs 1-6, all old
    sock = connect(make_user("coordinator"))
    page = sock.emit("sync", {"since": 2, "limit": 2}, callback=True)
    assert [e["seq"] for e in page["events"]] == [3, 4] and page["more"] is True
    sweeper.run_once(db.session, now=now, settings=_settings(app))
    assert _seqs() == [3, 4, 5, 6]  # the client pages from 2: 3 onwards stays
    rest = sock.emit("sync", {"since": 4}, callback=True)
    assert [e["seq"] for e in rest["events"]] == [5, 6] and "truncated" not in rest
    sweeper.run_once(db.session, now=now, settings=_settings(app))
    assert _seqs() == [6]  # caught up at 6: the newest stays anyway

    late = connect(make_user("coordinator"))
    answer = late.emit("sync", {"since": 0}, callback=True)
    assert answer["truncated"] is True and answer["retained_from"] == 6
    assert [e["seq"] for e in answer["events"]] == [6]
    # From within the retained range: no flag.
    assert "truncated" not in late.emit("sync", {"since": 5}, callback=True)
    sock.disconnect()
    late.disconnect()


def test_the_other_processes_floors_in_redis_are_respected(app, mission, redis_url):
    now = clock.now()
    _publish_at(now - timedelta(days=45), mission.id, 6)
    client = redis_lib.Redis.from_url(redis_url)
    prefix = f"t{RUN_ID}-retention"
    settings = _settings(app, REDIS_URL=redis_url, REDIS_PREFIX=prefix)
    app.extensions["redis"], saved = client, app.extensions.get("redis")
    try:
        client.set(f"{prefix}-retention-floor:another-process", "2", ex=60)
        assert retention.retention_task(db.session, now=now, settings=settings) == 2
        db.session.commit()
        assert _seqs() == [3, 4, 5, 6]
        # This process published its own floor for the others ("none": its sockets need nothing).
        assert client.get(f"{prefix}-retention-floor:{retention.PROCESS}") == b"none"
        client.delete(f"{prefix}-retention-floor:another-process")
        assert retention.retention_task(db.session, now=now, settings=settings) == 3
        db.session.commit()
        assert _seqs() == [6]
    finally:
        app.extensions["redis"] = saved
        for key in client.scan_iter(match=f"{prefix}-*"):
            client.delete(key)


def test_nothing_is_deleted_when_the_other_processes_floors_are_unknown(app, mission):
    now = clock.now()
    _publish_at(now - timedelta(days=45), mission.id, 4)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = _settings(app, REDIS_URL=dead)
    app.extensions["redis"], saved = (
        redis_lib.Redis.from_url(dead, socket_connect_timeout=0.5),
        app.extensions.get("redis"),
    )
    try:
        assert retention.retention_task(db.session, now=now, settings=settings) == 0
    finally:
        app.extensions["redis"] = saved
    assert _seqs() == [1, 2, 3, 4]


@pytest.mark.parametrize("days", [30, 0.5])
def test_the_setting_is_the_age_limit(app, mission, days):
    now = clock.now()
    _publish_at(now - timedelta(days=days, hours=1), mission.id, 2)
    _publish_at(now - timedelta(days=days) + timedelta(hours=1), mission.id, 2)
    retention.prune(db.session, now=now, days=days, floor=None)
    db.session.commit()
    assert _seqs() == [3, 4]
