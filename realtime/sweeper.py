"""The sweeper: periodic domain tasks (escalations, reminders) run in every server process.

Domains register a task; realtime knows no domain. A task must make its effect exactly-once across
processes itself, with a conditional update (`UPDATE ... WHERE escalated_at IS NULL`) before it publishes.
"""
from __future__ import annotations

from typing import Callable

# name -> task(session, *, now, settings) -> number of effects
TASKS: dict[str, Callable] = {}


def register(name: str, task: Callable) -> None:
    TASKS[name] = task
