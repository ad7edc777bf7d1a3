"""The mass-casualty plan (pure): many requests, one fleet, tier by tier (API.md /plan, docs/dispatch.md).
A joint assignment per tier (scipy's linear_sum_assignment) over the options casevac.dispatch.rules
ranks, so no asset or bed is promised twice."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from casevac.dispatch.rules import (
    PLAN_TIERS,
    Arrays,
    asset_exclusions,
    clock_of,
    evaluate,
    facility_exclusions,
)
from casevac.dispatch.states import AssetState, EvacuationNeed, FacilityState
from casevac.geo import is_night
from casevac.precedence import PRECEDENCE_RANK

INFEASIBLE = 1e12


def _tier_name(tier: tuple[str, ...]) -> str:
    return " / ".join(tier)


def _summary(excluded: list[dict], what: str) -> str:
    counts: dict[str, int] = {}
    for entry in excluded:
        for reason in entry["reasons"]:
            key = reason.split(" (")[0]
            counts[key] = counts.get(key, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:3]
    return f"no {what}: " + "; ".join(f"{reason} ({n})" for reason, n in top) if top else f"no {what}"


def plan(
    needs: Sequence[EvacuationNeed],
    assets: Sequence[AssetState],
    facilities: Sequence[FacilityState],
    *,
    now: datetime,
    road_factor: float,
) -> dict:
    """A joint assignment of available assets to requests, without side effects (API.md /plan).

    Tier by tier, most urgent first (PLAN_TIERS), so an urgent request is never left for a routine one.
    Within a tier, scipy's linear_sum_assignment (the Hungarian method) minimises the total time to
    delivery, i.e. to surgery for urgent-surgical casualties, whose only destinations have damage-control
    surgery; missing the deadline or 10-1-2 costs more than any delay, so as many requests as possible are
    served in time. Each asset serves one request; beds are consumed as requests are placed.
    """

    available = [a for a in assets if a.status == "available"]
    used: set[str] = set()
    beds = {f.id: f.beds_available for f in facilities}
    assignments: list[dict] = []
    unserved: list[dict] = []
    for need in needs:
        if need.precedence is None:
            unserved.append({"request_id": need.request_id, "reason": "no patients on line 3"})
    for tier in PLAN_TIERS:
        tier_needs = sorted(
            (n for n in needs if n.precedence in tier),
            key=lambda n: (PRECEDENCE_RANK[n.precedence], n.filed_at, n.request_id or ""),
        )
        if not tier_needs:
            continue
        remaining = [a for a in available if a.id not in used]
        cost = np.full((len(tier_needs), max(1, len(remaining))), INFEASIBLE)
        choices: dict[tuple[int, int], list[int]] = {}
        context: list[tuple] = []
        for r, need in enumerate(tier_needs):
            night = is_night(need.pickup, now)
            clock = clock_of(need, now)
            fit_ids = {a.id for a in available if not asset_exclusions(need, a, night=night)}
            cols = [c for c, a in enumerate(remaining) if a.id in fit_ids]
            fit_facilities = [f for f in facilities if not facility_exclusions(need, f) and beds[f.id] >= need.total]
            context.append((night, clock, fit_facilities))
            if not fit_ids:
                excluded = [{"reasons": asset_exclusions(need, a, night=night)} for a in available]
                unserved.append(
                    {"request_id": need.request_id, "reason": _summary(excluded, "available asset can fly it")}
                )
                continue
            if not fit_facilities:
                excluded = [
                    {
                        "reasons": facility_exclusions(need, f)
                        or ["too few beds left once more urgent requests are placed"]
                    }
                    for f in facilities
                ]
                unserved.append({"request_id": need.request_id, "reason": _summary(excluded, "facility can take it")})
                continue
            if not cols:
                unserved.append(
                    {
                        "request_id": need.request_id,
                        "reason": "every asset that can fly it is assigned to a more urgent request",
                    }
                )
                continue
            keyed = Arrays(need, [remaining[c] for c in cols], fit_facilities, road_factor).keys(clock, 1.0)
            for k, c in enumerate(cols):
                order = np.argsort(keyed[k], kind="stable")
                cost[r, c] = keyed[k, order[0]]
                choices[(r, c)] = order.tolist()
        rows, cols_chosen = linear_sum_assignment(cost)
        assigned_rows: set[int] = set()
        bedless: set[int] = set()
        placed = sorted(
            ((r, c) for r, c in zip(rows.tolist(), cols_chosen.tolist(), strict=False) if cost[r, c] < INFEASIBLE),
            key=lambda rc: cost[rc],
        )
        for r, c in placed:
            need, asset = tier_needs[r], remaining[c]
            night, clock, fit_facilities = context[r]
            facility = next(
                (fit_facilities[j] for j in choices[(r, c)] if beds[fit_facilities[j].id] >= need.total), None
            )
            if facility is None:
                bedless.add(r)
                continue
            option = evaluate(need, asset, facility, now=now, road_factor=road_factor, clock=clock)
            beds[facility.id] -= need.total
            used.add(asset.id)
            assigned_rows.add(r)
            reasons = [
                f"joint assignment of {len(tier_needs)} {_tier_name(tier)} request(s) to "
                f"{len(remaining)} available asset(s), minimising the total time to delivery"
            ] + option.reasons
            assignments.append(
                {
                    "request_id": need.request_id,
                    "precedence": need.precedence,
                    "asset_id": asset.id,
                    "facility_id": facility.id,
                    "pickup_eta_minutes": option.pickup_eta_minutes,
                    "delivery_eta_minutes": option.delivery_eta_minutes,
                    "meets_deadline": option.meets_deadline,
                    "meets_ten_one_two": option.meets_ten_one_two,
                    "reasons": reasons,
                }
            )
        listed = {u["request_id"] for u in unserved}
        for r, need in enumerate(tier_needs):
            if r in bedless:
                unserved.append(
                    {
                        "request_id": need.request_id,
                        "reason": "the beds of every facility that can take it went to requests placed before it",
                    }
                )
            elif r not in assigned_rows and need.request_id not in listed:
                unserved.append(
                    {
                        "request_id": need.request_id,
                        "reason": f"the assets that can fly it are assigned to other {_tier_name(tier)} "
                        f"requests, which together arrive sooner",
                    }
                )
    late = [
        {"request_id": a["request_id"], "reason": "assigned, but misses the deadline or 10-1-2"}
        for a in assignments
        if not (a["meets_deadline"] and a["meets_ten_one_two"])
    ]
    return {"assignments": assignments, "unserved": unserved, "late": late}
