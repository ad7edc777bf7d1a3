"""The sweeper: periodic domain tasks (escalations, reminders) run in every server process.

Domains register a task; realtime knows no domain. A task must make its effect exactly-once across
processes itself, with a conditional update (`UPDATE ... WHERE escalated_at IS NULL`) before it publishes:
every process runs every task (ARCHITECTURE.md, "How a CASEVAC request flows", step 4).

A task is `task(session, *, now, settings) -> int` (the number of effects). The runner commits the
session after each task (rolls back and logs when it raises), so the conditional update and the events
it publishes commit together; the relay then emits them.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)

# name -> task(session, *, now, settings) -> number of effects
TASKS: dict[str, Callable] = {}


def register(name: str, task: Callable) -> None:
    TASKS[name] = task


def run_once(session, *, now, settings) -> dict[str, int]:
    """Run every registered task once, each in its own transaction; returns effects per task."""
    effects: dict[str, int] = {}
    for name, task in list(TASKS.items()):
        try:
            effects[name] = int(task(session, now=now, settings=settings) or 0)
            session.commit()
        except Exception:
            session.rollback()
            log.exception("sweeper task %s failed", name)
    return effects


class Sweeper:
    """The background runner of one process: every SWEEPER_INTERVAL_SECONDS, every task."""

    def __init__(self):
        self._stop = threading.Event()

    def loop(self, app, interval: float | None = None) -> None:
        from config.extensions import db
        from core import clock

        settings = app.extensions["settings"]
        interval = settings.SWEEPER_INTERVAL_SECONDS if interval is None else interval
        self._stop.clear()
        while not self._stop.is_set():
            with app.app_context():
                try:
                    run_once(db.session, now=clock.now(), settings=settings)
                except Exception:
                    log.exception("sweeper run failed")
                finally:
                    db.session.remove()
            self._stop.wait(interval)

    def stop(self) -> None:
        self._stop.set()


sweeper = Sweeper()
