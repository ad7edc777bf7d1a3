"""CASEVAC metrics: counts, median minutes from filing to each stage, share delivered within the precedence
deadline and 10-1-2 compliance per leg."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from casevac import ten_one_two
from casevac.requests.models import PRECEDENCES, STATUSES, CasevacRequest
from core import clock
from core.errors import invalid

STAGES = ("acknowledged", "dispatched", "at_pickup", "delivered")


def metrics(session, *, actor, start: datetime | None = None, end: datetime | None = None) -> dict:
    """Over requests filed in [start, end] of the actor's mission: counts, median minutes from filing to
    each stage, share delivered within the precedence deadline, 10-1-2 compliance per leg."""
    end = end or clock.now()
    start = start or end - timedelta(days=7)
    if start >= end:
        raise invalid("from", "must be before to", location="query")
    requests = (
        session.execute(
            select(CasevacRequest)
            .where(
                CasevacRequest.mission_id == actor.mission_id,
                CasevacRequest.created_at >= start,
                CasevacRequest.created_at <= end,
            )
            .options(selectinload(CasevacRequest.casualties))
        )
        .scalars()
        .all()
    )
    by_precedence = {name: 0 for name in PRECEDENCES}
    by_status = {name: 0 for name in STATUSES}
    waits: dict[str, list[float]] = {stage: [] for stage in STAGES}
    deadline = {"counted": 0, "met": 0}
    legs = {name: {"counted": 0, "met": 0} for name in ten_one_two.LEG_NAMES}
    now = clock.now()
    for request in requests:
        by_precedence[request.precedence] += 1
        by_status[request.status] += 1
        for stage in STAGES:
            reached = getattr(request, f"{stage}_at")
            if reached is not None:
                waits[stage].append((reached - request.created_at).total_seconds() / 60)
        if request.deadline is not None and request.status == "delivered":
            deadline["counted"] += 1
            deadline["met"] += int(request.delivered_at <= request.deadline)
        elif request.deadline is not None and request.status != "cancelled" and now > request.deadline:
            deadline["counted"] += 1  # still not delivered after its deadline: missed
        for casualty in request.casualties:
            for name, leg in ten_one_two.timeline(casualty, now=now).items():
                if leg["state"] in ("met", "breached"):
                    legs[name]["counted"] += 1
                    legs[name]["met"] += int(leg["state"] == "met")
    return {
        "from_": start,
        "to": end,
        "total": len(requests),
        "by_precedence": by_precedence,
        "by_status": by_status,
        "median_minutes": {
            stage: round(statistics.median(values), 1) if values else None for stage, values in waits.items()
        },
        "within_deadline": _share(deadline),
        "ten_one_two": {name: _share(counts) for name, counts in legs.items()},
    }


def _share(counts: dict) -> dict:
    return {**counts, "share": round(counts["met"] / counts["counted"], 3) if counts["counted"] else None}
