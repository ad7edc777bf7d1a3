"""Which asset should fly, to which facility: the rules of recommendation and of the mass-casualty plan.

Pure functions over small value objects (EvacuationNeed, AssetState, FacilityState), so every rule can be
tested case by case; the service functions at the end (recommend_for_request, assign, plan_for_requests)
load those objects from the database and hold the transactions. docs/dispatch.md explains the scoring.

Distances: every reported distance is casevac.geo.distance_km (geodesic). To stay fast with a thousand
assets, candidates are first screened with a vectorised spherical distance whose error bound (SPHERE_ERROR)
is applied in both directions, so the screen never drops an option that the geodesic ranking would keep.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sqlalchemy import select, update

from casevac.fleet import service as fleet_service
from casevac.requests import service as casevac_service
from casevac.fleet.models import Asset, Facility
from casevac.geo import distance_km
from casevac.requests.models import FINAL_STATUSES, PRECEDENCES, CasevacRequest
from casevac.requests.service import BEFORE_DISPATCH
from casevac.ten_one_two import LEGS
from core import audit
from core import clock as core_clock
from core.clock import as_utc as clock_utc
from core.errors import conflict, not_found

# Plan tiers: a more urgent tier is served before a less urgent one is considered (API.md /plan).
PLAN_TIERS = (("urgent", "urgent_surgical"), ("priority",), ("routine", "convenience"))
EQUIPMENT_CAPABILITY = {"hoist": "hoist", "extraction": "extraction", "ventilator": "ventilator"}
AIRCRAFT = ("rotary_wing", "fixed_wing")
# Assumption (docs/dispatch.md): a helicopter that cannot land at the destination lands at the nearest
# landing zone and a road ambulance covers the last leg: unloading, transfer and drive together.
GROUND_LEG_MINUTES = 20.0
# Ranking penalties in minutes (docs/dispatch.md): a diverting facility is used only when it clearly pays;
# an asset carrying scarce equipment the request does not need is kept free for one that does.
DIVERTING_PENALTY_MINUTES = 30.0
SPARE_EQUIPMENT_PENALTY_MINUTES = 3.0
SCARCE_CAPABILITIES = ("hoist", "extraction", "ventilator")
# 10-1-2 (DOMAIN.md section 3), as casevac.ten_one_two defines it: resuscitation within 1 h of injury,
# damage-control surgery within 2 h.
RESUSCITATION_DUE = LEGS[1].window
SURGERY_DUE = LEGS[2].window
# Night for flying: the sun more than 6 degrees below the horizon (end of civil twilight).
NIGHT_SUN_ELEVATION_DEG = -6.0
# Spherical (mean radius) vs WGS-84 geodesic distance: under 0.6 % apart; 1 % leaves a margin.
EARTH_MEAN_RADIUS_KM = 6371.0088
SPHERE_ERROR = 0.01
LATE = 1e7  # ranks an option that misses the deadline or 10-1-2 after every one that meets them


# ---------------------------------------------------------------- value objects

class Casualty(NamedTuple):
    precedence: str | None
    time_of_injury: datetime | None


@dataclass(frozen=True)
class EvacuationNeed:
    """What a request needs from an evacuation (lines 1, 3, 4, 5 and 6 of the 9-line, and the casualties)."""

    pickup: tuple[float, float]
    patients: Mapping[str, int]
    litter: int
    ambulatory: int
    filed_at: datetime
    deadline: datetime | None
    equipment: frozenset[str] = frozenset()
    casualties: tuple[Casualty, ...] = ()
    security: str | None = None
    request_id: str | None = None

    @property
    def total(self) -> int:
        return self.litter + self.ambulatory

    @property
    def precedence(self) -> str | None:
        for precedence in PRECEDENCES:
            if self.patients.get(precedence, 0) > 0:
                return precedence
        return None

    @property
    def surgical(self) -> int:
        described = sum(1 for c in self.casualties if c.precedence == "urgent_surgical")
        return max(self.patients.get("urgent_surgical", 0), described)

    def clocks(self) -> tuple[list[datetime], list[datetime], bool]:
        """Times of injury for the resuscitation leg (every casualty) and the surgery leg (urgent-surgical
        casualties); whether the filing time stood in for an unknown time of injury (DOMAIN.md section 3)."""
        stand_in = False
        resuscitation: list[datetime] = []
        surgery: list[datetime] = []
        described: dict[str | None, int] = {}
        for casualty in self.casualties:
            injured = casualty.time_of_injury
            if injured is None:
                injured, stand_in = self.filed_at, True
            resuscitation.append(injured)
            if casualty.precedence == "urgent_surgical":
                surgery.append(injured)
            described[casualty.precedence] = described.get(casualty.precedence, 0) + 1
        for precedence, count in self.patients.items():
            missing = max(0, count - described.get(precedence, 0))
            if missing:
                stand_in = True
                resuscitation.extend([self.filed_at] * missing)
                if precedence == "urgent_surgical":
                    surgery.extend([self.filed_at] * missing)
        return resuscitation, surgery, stand_in


class AssetState(NamedTuple):  # a tuple: a thousand of them are built per recommendation
    id: str
    callsign: str
    kind: str
    capabilities: frozenset[str]
    litter_capacity: int
    ambulatory_capacity: int
    cruise_speed_kmh: float
    readiness_minutes: float
    status: str
    position: tuple[float, float]


class FacilityState(NamedTuple):
    id: str
    name: str
    level: str
    capabilities: frozenset[str]
    status: str
    beds_available: int
    helipad: bool
    location: tuple[float, float]


@dataclass
class Option:
    asset_id: str
    facility_id: str
    callsign: str
    facility_name: str
    pickup_eta_minutes: float
    delivery_eta_minutes: float
    distance_km: float
    route_km: float
    meets_deadline: bool
    meets_ten_one_two: bool
    ground_leg: bool
    score_minutes: float
    reasons: list[str] = field(default_factory=list)

    def rank_key(self):
        late = not (self.meets_deadline and self.meets_ten_one_two)
        return (late, self.score_minutes, self.delivery_eta_minutes, self.callsign, self.facility_name)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Recommendations:
    options: list[Option]
    excluded_assets: list[dict]
    excluded_facilities: list[dict]
    night: bool
    time_of_injury_estimated: bool

    def as_dict(self) -> dict:
        return {"options": [o.as_dict() for o in self.options], "excluded_assets": self.excluded_assets,
                "excluded_facilities": self.excluded_facilities, "night": self.night,
                "time_of_injury_estimated": self.time_of_injury_estimated}


# ---------------------------------------------------------------- rules

def sun_elevation_deg(lat: float, lon: float, at: datetime) -> float:
    """Solar elevation (NOAA general solar position equations), accurate to a fraction of a degree."""
    at = clock_utc(at)
    day_of_year = at.timetuple().tm_yday
    hours = at.hour + at.minute / 60 + at.second / 3600
    gamma = 2 * math.pi / 365 * (day_of_year - 1 + (hours - 12) / 24)
    equation_of_time = 229.18 * (0.000075 + 0.001868 * math.cos(gamma) - 0.032077 * math.sin(gamma)
                                 - 0.014615 * math.cos(2 * gamma) - 0.040849 * math.sin(2 * gamma))
    declination = (0.006918 - 0.399912 * math.cos(gamma) + 0.070257 * math.sin(gamma)
                   - 0.006758 * math.cos(2 * gamma) + 0.000907 * math.sin(2 * gamma)
                   - 0.002697 * math.cos(3 * gamma) + 0.00148 * math.sin(3 * gamma))
    true_solar_minutes = hours * 60 + equation_of_time + 4 * lon
    hour_angle = math.radians(true_solar_minutes / 4 - 180)
    phi = math.radians(lat)
    cos_zenith = math.sin(phi) * math.sin(declination) + math.cos(phi) * math.cos(declination) * math.cos(hour_angle)
    return 90 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))


def is_night(point: tuple[float, float], at: datetime) -> bool:
    return sun_elevation_deg(point[0], point[1], at) < NIGHT_SUN_ELEVATION_DEG


def asset_exclusions(need: EvacuationNeed, asset: AssetState, *, night: bool) -> list[str]:
    """Why this asset cannot fly this evacuation (empty: it can)."""
    reasons = []
    if asset.status != "available":
        reasons.append(f"not available ({asset.status})")
    if asset.kind == "fixed_wing":
        reasons.append("fixed-wing: needs an airstrip, not a point-of-injury pickup site")
    if need.litter > asset.litter_capacity:
        reasons.append(f"too few litter places ({asset.litter_capacity} for {need.litter} litter patients)")
    elif need.total > asset.litter_capacity + asset.ambulatory_capacity:
        # An ambulatory patient may sit in a free litter place, not the other way round.
        reasons.append(f"too few places ({asset.litter_capacity + asset.ambulatory_capacity} "
                       f"for {need.total} patients)")
    for equipment in sorted(need.equipment):
        capability = EQUIPMENT_CAPABILITY.get(equipment)
        if capability and capability not in asset.capabilities:
            reasons.append(f"no {equipment} (asked for on line 4)")
    if night and asset.kind in AIRCRAFT and "night" not in asset.capabilities:
        reasons.append("no night capability, and it is night at the pickup site")
    if need.security == "X" and asset.kind == "ground_ambulance" and "armored" not in asset.capabilities:
        reasons.append("not armored, and line 6 says X (armed escort required)")
    return reasons


def facility_exclusions(need: EvacuationNeed, facility: FacilityState) -> list[str]:
    """Why this facility cannot receive these casualties (empty: it can)."""
    reasons = []
    if facility.status == "closed":
        reasons.append("closed")
    if facility.beds_available < need.total:
        reasons.append(f"too few beds ({facility.beds_available} for {need.total} patients)")
    if need.surgical and "damage_control_surgery" not in facility.capabilities:
        # DOMAIN.md sections 1 and 4: urgent-surgical needs forward surgery (UN Level 2 or higher).
        reasons.append("no damage-control surgery for the urgent-surgical casualty")
    if "ventilator" in need.equipment and "icu" not in facility.capabilities:
        reasons.append("no ICU for the ventilated patient")
    return reasons


def _minutes_per_km(asset: AssetState, road_factor: float) -> float:
    # Ground ambulances follow roads: geodesic distance times the road factor (docs/dispatch.md).
    factor = road_factor if asset.kind == "ground_ambulance" else 1.0
    return factor * 60.0 / asset.cruise_speed_kmh


def _spare_penalty(need: EvacuationNeed, asset: AssetState) -> float:
    needed = {EQUIPMENT_CAPABILITY[e] for e in need.equipment if e in EQUIPMENT_CAPABILITY}
    spare = [c for c in SCARCE_CAPABILITIES if c in asset.capabilities and c not in needed]
    return SPARE_EQUIPMENT_PENALTY_MINUTES * len(spare)


@dataclass(frozen=True)
class _Clock:
    """Minutes from now to each due time; None when the leg has no casualty."""

    deadline: float | None
    resuscitation: float | None
    surgery: float | None
    stand_in: bool


def _clock(need: EvacuationNeed, now: datetime) -> _Clock:
    resuscitation, surgery, stand_in = need.clocks()

    def minutes(due: datetime | None) -> float | None:
        return None if due is None else (due - now).total_seconds() / 60

    return _Clock(
        deadline=minutes(need.deadline),
        resuscitation=minutes(min(resuscitation) + RESUSCITATION_DUE) if resuscitation else None,
        surgery=minutes(min(surgery) + SURGERY_DUE) if surgery else None,
        stand_in=stand_in,
    )


def evaluate(need: EvacuationNeed, asset: AssetState, facility: FacilityState, *, now: datetime,
             road_factor: float, clock: _Clock | None = None, pickup_km: float | None = None,
             delivery_km: float | None = None) -> Option:
    """One (asset, facility) option with its ETAs (readiness + travel at cruise speed), checks and reasons."""
    clock = clock or _clock(need, now)
    if pickup_km is None:
        pickup_km = distance_km(asset.position, need.pickup)
    if delivery_km is None:
        delivery_km = distance_km(need.pickup, facility.location)
    per_km = _minutes_per_km(asset, road_factor)
    pickup_eta = asset.readiness_minutes + pickup_km * per_km
    ground_leg = asset.kind in AIRCRAFT and not facility.helipad
    delivery_eta = pickup_eta + delivery_km * per_km + (GROUND_LEG_MINUTES if ground_leg else 0.0)
    route_factor = road_factor if asset.kind == "ground_ambulance" else 1.0
    meets_deadline = clock.deadline is None or delivery_eta <= clock.deadline
    crew = "medical_crew" in asset.capabilities
    # Resuscitation begins when medical staff reach the casualty: the crew at pickup, else the facility.
    resuscitation_at = pickup_eta if crew else delivery_eta
    meets_resuscitation = clock.resuscitation is None or resuscitation_at <= clock.resuscitation
    meets_surgery = clock.surgery is None or delivery_eta <= clock.surgery
    score = delivery_eta + _spare_penalty(need, asset)
    if facility.status == "diverting":
        score += DIVERTING_PENALTY_MINUTES

    reasons = [f"{asset.callsign} ({asset.kind}): ready in {asset.readiness_minutes:g} min, "
               f"{pickup_km:.1f} km to the pickup site at {asset.cruise_speed_kmh:g} km/h"]
    if asset.kind == "ground_ambulance":
        reasons.append(f"by road: distances taken as {road_factor:g} x the geodesic distance")
    for equipment in sorted(need.equipment):
        reasons.append(f"carries the {equipment} asked for")
    reasons.append(f"{facility.name} (Level {facility.level}), {delivery_km:.1f} km from the pickup site, "
                   f"{facility.beds_available} beds available")
    if need.surgical:
        reasons.append("damage-control surgery for the urgent-surgical casualty")
    if "ventilator" in need.equipment:
        reasons.append("ICU for the ventilated patient")
    if ground_leg:
        reasons.append(f"no helipad at {facility.name}: {GROUND_LEG_MINUTES:g} min ground leg added")
    if facility.status == "diverting":
        reasons.append(f"{facility.name} is diverting: ranked as if {DIVERTING_PENALTY_MINUTES:g} min further")
    if _spare_penalty(need, asset):
        reasons.append("carries scarce equipment this request does not need: ranked lower to keep it free")
    if clock.deadline is None:
        reasons.append("no evacuation deadline for this precedence")
    elif meets_deadline:
        reasons.append(f"meets the {need.precedence} deadline with {clock.deadline - delivery_eta:.0f} min to spare")
    else:
        reasons.append(f"misses the {need.precedence} deadline by {delivery_eta - clock.deadline:.0f} min")
    if clock.resuscitation is not None:
        who = "the medical crew at pickup" if crew else "the facility (no medical crew on board)"
        verdict = "within" if meets_resuscitation else "later than"
        reasons.append(f"10-1-2: resuscitation by {who}, {verdict} 1 h of injury")
    if clock.surgery is not None:
        verdict = "within" if meets_surgery else "later than"
        reasons.append(f"10-1-2: damage-control surgery {verdict} 2 h of injury")
    if clock.stand_in:
        reasons.append("time of injury unknown for some casualties: the filing time stands in")
    return Option(asset_id=asset.id, facility_id=facility.id, callsign=asset.callsign, facility_name=facility.name,
                  pickup_eta_minutes=round(pickup_eta, 1), delivery_eta_minutes=round(delivery_eta, 1),
                  distance_km=round(pickup_km + delivery_km, 2),
                  route_km=round((pickup_km + delivery_km) * route_factor, 2),
                  meets_deadline=meets_deadline, meets_ten_one_two=meets_resuscitation and meets_surgery,
                  ground_leg=ground_leg, score_minutes=round(score, 1), reasons=reasons)


# ---------------------------------------------------------------- the vectorised screen

def _sphere_km(lat1, lon1, lat2, lon2):
    """Great-circle distance on the mean-radius sphere (a screen only; never reported)."""
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_MEAN_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


class _Arrays:
    """The per-asset and per-facility numbers the screen needs, as numpy arrays (built once per call)."""

    def __init__(self, need: EvacuationNeed, assets: Sequence[AssetState], facilities: Sequence[FacilityState],
                 road_factor: float):
        n = len(assets)
        a_lat, a_lon = np.empty(n), np.empty(n)
        self.per_km, self.readiness = np.empty(n), np.empty(n)
        self.aircraft, self.crew = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        self.spare = np.empty(n)
        for i, asset in enumerate(assets):
            a_lat[i], a_lon[i] = asset.position
            self.per_km[i] = _minutes_per_km(asset, road_factor)
            self.readiness[i] = asset.readiness_minutes
            self.aircraft[i] = asset.kind in AIRCRAFT
            self.crew[i] = "medical_crew" in asset.capabilities
            self.spare[i] = _spare_penalty(need, asset)
        f_lat = np.array([f.location[0] for f in facilities])
        f_lon = np.array([f.location[1] for f in facilities])
        self.helipad = np.array([f.helipad for f in facilities], dtype=bool)
        self.diverting = np.array([DIVERTING_PENALTY_MINUTES if f.status == "diverting" else 0.0
                                   for f in facilities])
        self.to_pickup = _sphere_km(a_lat, a_lon, need.pickup[0], need.pickup[1])
        self.to_facility = _sphere_km(need.pickup[0], need.pickup[1], f_lat, f_lon)

    def keys(self, clock: _Clock, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """(n, m) score and rank key (score, plus LATE when a check fails) with distances times `scale`."""
        pickup = self.readiness + self.to_pickup * scale * self.per_km
        delivery = pickup[:, None] + (self.to_facility * scale)[None, :] * self.per_km[:, None]
        delivery += np.where(self.aircraft[:, None] & ~self.helipad[None, :], GROUND_LEG_MINUTES, 0.0)
        meets = np.ones(delivery.shape, dtype=bool)
        if clock.deadline is not None:
            meets &= delivery <= clock.deadline
        if clock.resuscitation is not None:
            meets &= np.where(self.crew[:, None], pickup[:, None], delivery) <= clock.resuscitation
        if clock.surgery is not None:
            meets &= delivery <= clock.surgery
        score = delivery + self.spare[:, None] + self.diverting[None, :]
        return score, score + np.where(meets, 0.0, LATE)


def _screen(need, assets, facilities, clock, road_factor, limit) -> list[tuple[int, int]]:
    """Pairs that may rank in the top `limit` once distances are geodesic: an optimistic key no worse than
    the limit-th pessimistic key (keys: LATE when the checks fail, plus the score)."""
    arrays = _Arrays(need, assets, facilities, road_factor)
    low = arrays.keys(clock, 1 - SPHERE_ERROR)[1]
    high = arrays.keys(clock, 1 + SPHERE_ERROR)[1].ravel()
    k = min(limit, high.size) - 1
    threshold = np.partition(high, k)[k]
    rows, cols = np.nonzero(low <= threshold)
    return list(zip(rows.tolist(), cols.tolist()))


# ---------------------------------------------------------------- recommend

def recommend(need: EvacuationNeed, assets: Iterable[AssetState], facilities: Iterable[FacilityState], *,
              now: datetime, road_factor: float, limit: int = 10) -> Recommendations:
    """Feasible (asset, facility) options, best first: those meeting the deadline and 10-1-2 before those
    that do not, then by score (delivery ETA plus penalties); with the reasons each asset or facility
    was left out."""
    night = is_night(need.pickup, now)
    fit_assets, excluded_assets = [], []
    for asset in assets:
        reasons = asset_exclusions(need, asset, night=night)
        if reasons:
            excluded_assets.append({"asset_id": asset.id, "callsign": asset.callsign, "reasons": reasons})
        else:
            fit_assets.append(asset)
    fit_facilities, excluded_facilities = [], []
    for facility in facilities:
        reasons = facility_exclusions(need, facility)
        if reasons:
            excluded_facilities.append({"facility_id": facility.id, "name": facility.name, "reasons": reasons})
        else:
            fit_facilities.append(facility)
    clock = _clock(need, now)
    options: list[Option] = []
    if fit_assets and fit_facilities and limit > 0:
        pairs = _screen(need, fit_assets, fit_facilities, clock, road_factor, limit)
        pickup_km: dict[int, float] = {}
        delivery_km: dict[int, float] = {}
        for i, j in pairs:
            if i not in pickup_km:
                pickup_km[i] = distance_km(fit_assets[i].position, need.pickup)
            if j not in delivery_km:
                delivery_km[j] = distance_km(need.pickup, fit_facilities[j].location)
            options.append(evaluate(need, fit_assets[i], fit_facilities[j], now=now, road_factor=road_factor,
                                    clock=clock, pickup_km=pickup_km[i], delivery_km=delivery_km[j]))
        options.sort(key=Option.rank_key)
        options = options[:limit]
    return Recommendations(options=options, excluded_assets=excluded_assets,
                           excluded_facilities=excluded_facilities, night=night,
                           time_of_injury_estimated=clock.stand_in)


# ---------------------------------------------------------------- plan (mass casualty)

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


def plan(needs: Sequence[EvacuationNeed], assets: Sequence[AssetState], facilities: Sequence[FacilityState], *,
         now: datetime, road_factor: float) -> dict:
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
        tier_needs = sorted((n for n in needs if n.precedence in tier),
                            key=lambda n: (PRECEDENCES.index(n.precedence), n.filed_at, n.request_id or ""))
        if not tier_needs:
            continue
        remaining = [a for a in available if a.id not in used]
        cost = np.full((len(tier_needs), max(1, len(remaining))), INFEASIBLE)
        choices: dict[tuple[int, int], list[int]] = {}
        context: list[tuple] = []
        for r, need in enumerate(tier_needs):
            night = is_night(need.pickup, now)
            clock = _clock(need, now)
            fit_ids = {a.id for a in available if not asset_exclusions(need, a, night=night)}
            cols = [c for c, a in enumerate(remaining) if a.id in fit_ids]
            fit_facilities = [f for f in facilities if not facility_exclusions(need, f) and beds[f.id] >= need.total]
            context.append((night, clock, fit_facilities))
            if not fit_ids:
                excluded = [{"reasons": asset_exclusions(need, a, night=night)} for a in available]
                unserved.append({"request_id": need.request_id, "reason": _summary(excluded, "available asset can fly it")})
                continue
            if not fit_facilities:
                excluded = [{"reasons": facility_exclusions(need, f) or ["too few beds left once more urgent "
                                                                         "requests are placed"]} for f in facilities]
                unserved.append({"request_id": need.request_id, "reason": _summary(excluded, "facility can take it")})
                continue
            if not cols:
                unserved.append({"request_id": need.request_id,
                                 "reason": "every asset that can fly it is assigned to a more urgent request"})
                continue
            keyed = _Arrays(need, [remaining[c] for c in cols], fit_facilities, road_factor).keys(clock, 1.0)[1]
            for k, c in enumerate(cols):
                order = np.argsort(keyed[k], kind="stable")
                cost[r, c] = keyed[k, order[0]]
                choices[(r, c)] = order.tolist()
        rows, cols_chosen = linear_sum_assignment(cost)
        assigned_rows: set[int] = set()
        bedless: set[int] = set()
        placed = sorted(((r, c) for r, c in zip(rows.tolist(), cols_chosen.tolist()) if cost[r, c] < INFEASIBLE),
                        key=lambda rc: cost[rc])
        for r, c in placed:
            need, asset = tier_needs[r], remaining[c]
            night, clock, fit_facilities = context[r]
            facility = next((fit_facilities[j] for j in choices[(r, c)] if beds[fit_facilities[j].id] >= need.total),
                            None)
            if facility is None:
                bedless.add(r)
                continue
            option = evaluate(need, asset, facility, now=now, road_factor=road_factor, clock=clock)
            beds[facility.id] -= need.total
            used.add(asset.id)
            assigned_rows.add(r)
            reasons = [f"joint assignment of {len(tier_needs)} {_tier_name(tier)} request(s) to "
                       f"{len(remaining)} available asset(s), minimising the total time to delivery"] + option.reasons
            assignments.append({"request_id": need.request_id, "precedence": need.precedence,
                                "asset_id": asset.id, "facility_id": facility.id,
                                "pickup_eta_minutes": option.pickup_eta_minutes,
                                "delivery_eta_minutes": option.delivery_eta_minutes,
                                "meets_deadline": option.meets_deadline,
                                "meets_ten_one_two": option.meets_ten_one_two, "reasons": reasons})
        listed = {u["request_id"] for u in unserved}
        for r, need in enumerate(tier_needs):
            if r in bedless:
                unserved.append({"request_id": need.request_id,
                                 "reason": "the beds of every facility that can take it went to requests placed "
                                           "before it"})
            elif r not in assigned_rows and need.request_id not in listed:
                unserved.append({"request_id": need.request_id,
                                 "reason": f"the assets that can fly it are assigned to other {_tier_name(tier)} "
                                           f"requests, which together arrive sooner"})
    late = [{"request_id": a["request_id"], "reason": "assigned, but misses the deadline or 10-1-2"}
            for a in assignments if not (a["meets_deadline"] and a["meets_ten_one_two"])]
    return {"assignments": assignments, "unserved": unserved, "late": late}


# ---------------------------------------------------------------- service: load, recommend, assign, plan


def asset_states(session, *, mission_id: str, redis=None, prefix: str = "") -> list[AssetState]:
    """The mission's assets as value objects, each at its latest reported position (else its base)."""
    # Plain rows, not ORM objects: a thousand assets load several times faster.
    columns = (Asset.id, Asset.callsign, Asset.kind, Asset.capabilities, Asset.litter_capacity,
               Asset.ambulatory_capacity, Asset.cruise_speed_kmh, Asset.readiness_minutes, Asset.status,
               Asset.base_lat, Asset.base_lon, Asset.lat, Asset.lon, Asset.heading, Asset.speed_kmh,
               Asset.position_reported_at)
    assets = list(session.execute(select(*columns).where(Asset.mission_id == mission_id)))
    positions = fleet_service.latest_positions(session, mission_id=mission_id, assets=assets, redis=redis,
                                               prefix=prefix)
    return [_asset_state(a, positions.get(a.id)) for a in assets]


def _asset_state(asset, position: dict | None) -> AssetState:
    where = (position["lat"], position["lon"]) if position else (asset.base_lat, asset.base_lon)
    return AssetState(id=asset.id, callsign=asset.callsign, kind=asset.kind,
                      capabilities=frozenset(asset.capabilities or ()), litter_capacity=asset.litter_capacity,
                      ambulatory_capacity=asset.ambulatory_capacity, cruise_speed_kmh=asset.cruise_speed_kmh,
                      readiness_minutes=asset.readiness_minutes, status=asset.status, position=where)


def facility_states(session, *, mission_id: str) -> list[FacilityState]:
    columns = (Facility.id, Facility.name, Facility.level, Facility.capabilities, Facility.status,
               Facility.beds_available, Facility.helipad, Facility.lat, Facility.lon)
    return [_facility_state(f) for f in session.execute(select(*columns).where(Facility.mission_id == mission_id))]


def _facility_state(facility) -> FacilityState:
    return FacilityState(id=facility.id, name=facility.name, level=facility.level,
                         capabilities=frozenset(facility.capabilities or ()), status=facility.status,
                         beds_available=facility.beds_available, helipad=facility.helipad,
                         location=(facility.lat, facility.lon))


def need_from_request(request) -> EvacuationNeed:
    """The evacuation need of a CASEVAC request (lines 1, 3, 4, 5, 6 and the casualties' MIST-AT)."""
    patients = {p: int(n or 0) for p, n in (request.patients or {}).items()}
    casualties = tuple(Casualty(precedence=c.precedence, time_of_injury=c.time_of_injury)
                       for c in (request.casualties or ()))
    return EvacuationNeed(pickup=(request.lat, request.lon), patients=patients, litter=request.litter,
                          ambulatory=request.ambulatory, filed_at=request.created_at, deadline=request.deadline,
                          equipment=frozenset(request.equipment or ()), casualties=casualties,
                          security=request.security, request_id=request.id)


def recommend_for_request(session, *, user, request_id: str, limit: int, settings, redis=None,
                          prefix: str = "") -> dict:
    request = casevac_service.get_visible(session, user=user, request_id=request_id)
    if request.status in FINAL_STATUSES:
        raise conflict(f"the request is {request.status}: nothing left to evacuate", status=request.status)
    now = core_clock.now()
    result = recommend(need_from_request(request),
                       asset_states(session, mission_id=request.mission_id, redis=redis, prefix=prefix),
                       facility_states(session, mission_id=request.mission_id), now=now,
                       road_factor=settings.ROAD_FACTOR, limit=limit)
    return {"request_id": request.id, "computed_at": now, **result.as_dict()}


def assign(session, *, user, request_id: str, asset_id: str, facility_id: str, redis=None, prefix: str = ""):
    """Dispatch: the asset available -> tasked and the request -> dispatched, in one transaction, each by a
    conditional update, so of two coordinators racing for one asset or one request exactly one wins and
    the other gets 409 with the reason (ARCHITECTURE.md: the database decides races)."""
    request = casevac_service.get_visible(session, user=user, request_id=request_id)
    asset = fleet_service.get_asset(session, user=user, asset_id=asset_id)
    facility = fleet_service.get_facility(session, user=user, facility_id=facility_id)
    if asset.mission_id != request.mission_id:
        raise not_found("asset")
    if facility.mission_id != request.mission_id:
        raise not_found("facility")
    if request.status not in BEFORE_DISPATCH:
        raise conflict(f"the request is {request.status}, not awaiting dispatch", status=request.status,
                       allowed_from=list(BEFORE_DISPATCH))
    need = need_from_request(request)
    now = core_clock.now()
    position = fleet_service.latest_positions(session, mission_id=asset.mission_id, assets=[asset], redis=redis,
                                              prefix=prefix).get(asset.id)
    state = _asset_state(asset, position)
    # Fitness first (status is decided below, atomically): a wrong choice is refused with the reasons.
    reasons = [r for r in asset_exclusions(need, state, night=is_night(need.pickup, now))
               if not r.startswith("not available")]
    reasons += facility_exclusions(need, _facility_state(facility))
    if reasons:
        raise conflict("this asset and facility cannot serve the request", reasons=reasons)
    taken = session.execute(
        update(Asset).where(Asset.id == asset.id, Asset.status == "available")
        .values(status="tasked", tasked_request_id=request.id, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if not taken:
        session.rollback()
        current = session.get(Asset, asset_id)
        raise conflict(f"asset {current.callsign} is not available ({current.status})", asset_status=current.status,
                       tasked_request_id=current.tasked_request_id)
    if not casevac_service.mark_dispatched(session, user=user, request=request, asset_id=asset.id,
                                           facility_id=facility.id):
        session.rollback()
        current = casevac_service.get_visible(session, user=user, request_id=request_id)
        raise conflict(f"the request is {current.status}: another dispatch or change came first",
                       status=current.status)
    audit.record(session, actor=user, action="asset.task", subject_type="asset", subject_id=asset.id,
                 mission_id=asset.mission_id, detail={"request_id": request.id, "facility_id": facility.id})
    session.refresh(asset)
    fleet_service.publish_asset(session, asset, redis=redis, prefix=prefix)
    session.commit()
    return casevac_service.get_visible(session, user=user, request_id=request_id)


def release_asset(session, request) -> None:
    """RELEASE_HOOKS: a delivered or cancelled request frees its asset (only if it still serves it)."""
    asset_id = getattr(request, "asset_id", None)
    if not asset_id:
        return
    freed = session.execute(
        update(Asset).where(Asset.id == asset_id, Asset.status == "tasked", Asset.tasked_request_id == request.id)
        .values(status="available", tasked_request_id=None, updated_at=core_clock.now())
        .execution_options(synchronize_session=False)).rowcount
    if freed:
        asset = session.get(Asset, asset_id, populate_existing=True)
        fleet_service.publish_asset(session, asset, **fleet_service.live_store())


def plan_for_requests(session, *, user, request_ids: list[str] | None, settings, redis=None,
                      prefix: str = "") -> dict:
    """The mass-casualty plan over the given requests (default: all awaiting dispatch); reads only."""
    unserved: list[dict] = []
    if request_ids is None:
        requests = list(session.execute(
            select(CasevacRequest).where(CasevacRequest.mission_id == user.mission_id,
                                         CasevacRequest.status.in_(BEFORE_DISPATCH))
            .order_by(CasevacRequest.precedence_rank, CasevacRequest.created_at, CasevacRequest.id)).scalars())
    else:
        requests = []
        for request_id in request_ids:
            request = casevac_service.get_visible(session, user=user, request_id=request_id)
            if request.mission_id != user.mission_id:  # a superadmin's view of another mission: not its fleet
                unserved.append({"request_id": request.id, "reason": "another mission's request: plan it there"})
            elif request.status in BEFORE_DISPATCH:
                requests.append(request)
            else:
                unserved.append({"request_id": request.id, "reason": f"not awaiting dispatch ({request.status})"})
    now = core_clock.now()
    result = plan([need_from_request(r) for r in requests],
                  asset_states(session, mission_id=user.mission_id, redis=redis, prefix=prefix),
                  facility_states(session, mission_id=user.mission_id), now=now, road_factor=settings.ROAD_FACTOR)
    session.rollback()  # nothing was written: the plan has no side effects
    return {"computed_at": now, "assignments": result["assignments"], "unserved": unserved + result["unserved"],
            "late": result["late"]}


# Cancelling or delivering a request frees its asset (casevac.requests.service calls the hooks in its transaction).
if release_asset not in casevac_service.RELEASE_HOOKS:
    casevac_service.RELEASE_HOOKS.append(release_asset)
