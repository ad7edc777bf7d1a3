"""Precedence of a 9-line (line 3) and its evacuation deadline (DOMAIN.md section 1, ATP 4-02.2): the rule
every CASEVAC sub-domain shares."""

from __future__ import annotations

from datetime import timedelta

PRECEDENCES = ("urgent", "urgent_surgical", "priority", "routine", "convenience")
PRECEDENCE_RANK = {name: rank for rank, name in enumerate(PRECEDENCES)}
URGENT = ("urgent", "urgent_surgical")
# Evacuation deadlines by precedence; convenience has none.
DEADLINES = {
    "urgent": timedelta(hours=1),
    "urgent_surgical": timedelta(hours=1),
    "priority": timedelta(hours=4),
    "routine": timedelta(hours=24),
    "convenience": None,
}


def precedence_of(patients: dict) -> str | None:
    """The most urgent precedence with at least one patient (line 3); None when no patient is counted."""
    return next((name for name in PRECEDENCES if int(patients.get(name) or 0) > 0), None)
