"""Aggregate mental-health metrics of a mission, k-anonymous: per calendar month, per instrument, counts of
people withheld below MIN_GROUP_SIZE (small-cell suppression)."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone

from config.extensions import db
from core import clock
from core.models import User
from telemed.mental import confidentiality
from telemed.mental import screening as instruments
from telemed.mental.models import Screening, SelfReferral

# Smallest group a metric may describe (k-anonymity): smaller counts could point at a person.
MIN_GROUP_SIZE = 5


def metrics(session, *, actor: User, month: str | None = None) -> dict:
    """Counts of people per instrument and result for one calendar month of the caller's mission, each
    person counted once per instrument (their latest screening that month). Any count under
    MIN_GROUP_SIZE people is withheld (null), and so is the next smallest when the withheld ones could be
    worked out from the total. Fixed calendar months (no arbitrary from/to) keep two overlapping queries
    from being subtracted to isolate one person."""
    if actor.role == "clinician":
        confidentiality.require_clinician(session, actor)
    start, end, label = _month_bounds(month)
    rows = session.execute(
        db.select(Screening.member_id, Screening.instrument, Screening.severity, Screening.positive, Screening.flags)
        .where(Screening.mission_id == actor.mission_id, Screening.created_at >= start, Screening.created_at < end)
        .order_by(Screening.created_at, Screening.id)
    ).all()
    latest = {}
    for row in rows:
        latest[(row.member_id, row.instrument)] = row  # later rows overwrite: the month's latest
    per_instrument = []
    for code, inst in instruments.INSTRUMENTS.items():
        results = [r for (member, instrument), r in latest.items() if instrument == code]
        people = len(results)
        if inst.bands:
            groups = {band.name: sum(1 for r in results if r.severity == band.name) for band in inst.bands}
        else:
            groups = {
                "positive": sum(1 for r in results if r.positive),
                "negative": sum(1 for r in results if not r.positive),
            }
        flagged = {"flagged": sum(1 for r in results if r.flags), "not_flagged": sum(1 for r in results if not r.flags)}
        per_instrument.append(
            {
                "instrument": code,
                "people": people if people >= MIN_GROUP_SIZE else None,
                "results": suppress(groups, people),
                "flagged": suppress(flagged, people),
            }
        )
    referrers = session.execute(
        db.select(db.func.count(db.distinct(SelfReferral.member_id))).where(
            SelfReferral.mission_id == actor.mission_id, SelfReferral.created_at >= start, SelfReferral.created_at < end
        )
    ).scalar_one()
    return {
        "mission_id": actor.mission_id,
        "month": label,
        "min_group_size": MIN_GROUP_SIZE,
        "instruments": per_instrument,
        "self_referrals": {"people": referrers if referrers >= MIN_GROUP_SIZE else None},
    }


def suppress(groups: dict[str, int], total: int, k: int = MIN_GROUP_SIZE) -> dict[str, int | None]:
    """Small-cell suppression: cells of 1..k-1 people are withheld; if the withheld cells add up to fewer
    than k (so the total would reveal a small group), the smallest shown non-zero cells are withheld too."""
    if total < k:
        return {name: None for name in groups}
    hidden = {name for name, count in groups.items() if 0 < count < k}
    while hidden and sum(groups[n] for n in hidden) < k:
        shown = sorted((count, name) for name, count in groups.items() if name not in hidden and count > 0)
        if not shown:
            break
        hidden.add(shown[0][1])
    return {name: (None if name in hidden else count) for name, count in groups.items()}


def _month_bounds(month: str | None) -> tuple[datetime, datetime, str]:
    if month is None:
        today = clock.now()
        year, number = today.year, today.month
    else:
        year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=timezone.utc)
    days = calendar.monthrange(year, number)[1]
    return start, start + timedelta(days=days), f"{year:04d}-{number:02d}"
