"""The sweeper runner: every process runs every task; the task's conditional update makes it exactly-once."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select, text

from config.extensions import db
from core import clock
from realtime import audience, events, sweeper
from realtime.models import Event
from tests.factories import MissionFactory


def probe_escalation(session, *, now, settings):
    """A domain-shaped task on a scratch table: claim due rows with a conditional UPDATE, then publish."""
    claimed = session.execute(
        text(
            "UPDATE sweeper_probe SET escalated_at = :now WHERE escalated_at IS NULL AND due_at <= :now "
            "RETURNING id, mission_id"
        ),
        {"now": now},
    ).all()
    for row in claimed:
        events.publish(
            session,
            "probe.escalated",
            audience.coordinators_and_admins(row.mission_id),
            {"id": row.id},
            mission_id=row.mission_id,
        )
    return len(claimed)


def test_three_sweepers_escalate_each_due_row_exactly_once(pg_app, monkeypatch):
    mission_id = MissionFactory().id
    now = clock.now()
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE sweeper_probe (id int PRIMARY KEY, mission_id varchar(36), "
                "due_at timestamptz NOT NULL, escalated_at timestamptz)"
            )
        )
        conn.execute(
            text("INSERT INTO sweeper_probe (id, mission_id, due_at) VALUES (:id, :m, :due)"),
            [
                {
                    "id": n,
                    "m": mission_id,
                    "due": now - timedelta(seconds=n % 5) if n < 40 else now + timedelta(hours=1),
                }
                for n in range(50)
            ],
        )
    monkeypatch.setattr(sweeper, "TASKS", {"probe": probe_escalation})
    runners = [sweeper.Sweeper() for _ in range(3)]
    threads = [threading.Thread(target=r.loop, args=(pg_app,), kwargs={"interval": 0.005}) for r in runners]
    try:
        for t in threads:
            t.start()
        deadline = clock.now() + timedelta(seconds=10)
        while clock.now() < deadline:
            with db.engine.connect() as conn:
                if (
                    conn.execute(text("SELECT count(*) FROM sweeper_probe WHERE escalated_at IS NOT NULL")).scalar()
                    == 40
                ):
                    break
        for _ in range(20):  # let all three keep sweeping over the claimed rows for a while
            threading.Event().wait(0.01)
    finally:
        for r in runners:
            r.stop()
        for t in threads:
            t.join()
        ids = (
            db.session.execute(select(Event.data["id"].as_integer()).where(Event.type == "probe.escalated"))
            .scalars()
            .all()
        )
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE sweeper_probe"))
    assert sorted(ids) == list(range(40))  # every due row once; none of the 10 not yet due


def test_a_failing_task_is_rolled_back_and_the_others_still_run(app, mission):
    mission_id = mission.id

    def broken(session, *, now, settings):
        events.publish(session, "never", audience.coordinators(mission_id), {}, mission_id=mission_id)
        raise RuntimeError("bug in a task")

    def fine(session, *, now, settings):
        events.publish(session, "fine", audience.coordinators(mission_id), {}, mission_id=mission_id)
        return 1

    original = dict(sweeper.TASKS)
    sweeper.TASKS.clear()
    sweeper.TASKS.update({"broken": broken, "fine": fine})
    try:
        effects = sweeper.run_once(db.session, now=clock.now(), settings=app.extensions["settings"])
    finally:
        sweeper.TASKS.clear()
        sweeper.TASKS.update(original)
    assert effects == {"fine": 1}
    assert db.session.execute(select(Event.type)).scalars().all() == ["fine"]
    assert db.session.execute(select(func.count()).select_from(Event).where(Event.type == "never")).scalar() == 0
