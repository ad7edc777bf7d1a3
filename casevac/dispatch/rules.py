"""Which asset should fly, to which facility: the rules of recommendation and of the mass-casualty plan.

Pure functions over small value objects (EvacuationNeed, AssetState, FacilityState: casevac.dispatch.states),
so every rule can be tested case by case; casevac.dispatch.service loads those objects and holds the
transactions.
docs/dispatch.md explains the scoring.

Distances: every reported distance is casevac.geo.distance_km (geodesic). To stay fast with a thousand
assets, candidates are first screened with a vectorised spherical distance whose error bound (SPHERE_ERROR)
is applied in both directions, so the screen never drops an option that the geodesic ranking would keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Sequence

import numpy as np

from casevac import ten_one_two
from casevac.dispatch.states import AssetState, EvacuationNeed, FacilityState, Option, Recommendations
from casevac.geo import distance_km, is_night, sphere_km
from casevac.ten_one_two import LEGS

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
# Spherical (mean radius) vs WGS-84 geodesic distance: under 0.6 % apart; 1 % leaves a margin.
SPHERE_ERROR = 0.01
LATE = 1e7  # ranks an option that misses the deadline or 10-1-2 after every one that meets them


# ---------------------------------------------------------------- rules

# Why an asset or a facility cannot serve a request: a code (what the code decides on) and its message
# (what the coordinator reads), as telemed's CONFLICT_MESSAGES.
EXCLUSION_MESSAGES = {
    "not_available": "not available ({status})",
    "fixed_wing": "fixed-wing: needs an airstrip, not a point-of-injury pickup site",
    "litter_places": "too few litter places ({capacity} for {litter} litter patients)",
    "places": "too few places ({capacity} for {total} patients)",
    "equipment": "no {equipment} (asked for on line 4)",
    "night": "no night capability, and it is night at the pickup site",
    "not_armored": "not armored, and line 6 says X (armed escort required)",
    "closed": "closed",
    "beds": "too few beds ({beds} for {total} patients)",
    "no_surgery": "no damage-control surgery for the urgent-surgical casualty",
    "no_icu": "no ICU for the ventilated patient",
}


class Exclusion(str):
    """An exclusion reason: reads as its message (what the API returns), decided on by its code."""

    code: str

    def __new__(cls, code: str, **params):
        reason = super().__new__(cls, EXCLUSION_MESSAGES[code].format(**params))
        reason.code = code
        return reason


def asset_exclusions(need: EvacuationNeed, asset: AssetState, *, night: bool) -> list[Exclusion]:
    """Why this asset cannot fly this evacuation (empty: it can)."""
    return asset_exclusion_rules(need, night=night)(asset)


def asset_exclusion_rules(need: EvacuationNeed, *, night: bool) -> Callable[[AssetState], list[Exclusion]]:
    """asset_exclusions for one need, what it asks worked out once, and each reason made once (a reason is
    an immutable string): a thousand assets are judged per recommendation."""
    litter, total = need.litter, need.total
    equipment = [
        (EQUIPMENT_CAPABILITY[e], Exclusion("equipment", equipment=e))
        for e in sorted(need.equipment)
        if e in EQUIPMENT_CAPABILITY
    ]
    fixed_wing = Exclusion("fixed_wing")
    no_night = Exclusion("night") if night else None
    not_armored = Exclusion("not_armored") if need.security == "X" else None
    not_available: dict[str, Exclusion] = {}

    def reasons_for(asset: AssetState) -> list[Exclusion]:
        reasons = []
        kind, capabilities, litter_places, status = asset.kind, asset.capabilities, asset.litter_capacity, asset.status
        if status != "available":
            reasons.append(
                not_available.get(status) or not_available.setdefault(status, Exclusion("not_available", status=status))
            )
        if kind == "fixed_wing":
            reasons.append(fixed_wing)
        if litter > litter_places:
            reasons.append(Exclusion("litter_places", capacity=litter_places, litter=litter))
        elif total > litter_places + asset.ambulatory_capacity:
            # An ambulatory patient may sit in a free litter place, not the other way round.
            reasons.append(Exclusion("places", capacity=litter_places + asset.ambulatory_capacity, total=total))
        for capability, missing in equipment:
            if capability not in capabilities:
                reasons.append(missing)
        if no_night and kind in AIRCRAFT and "night" not in capabilities:
            reasons.append(no_night)
        if not_armored and kind == "ground_ambulance" and "armored" not in capabilities:
            reasons.append(not_armored)
        return reasons

    return reasons_for


def facility_exclusions(need: EvacuationNeed, facility: FacilityState) -> list[Exclusion]:
    """Why this facility cannot receive these casualties (empty: it can)."""
    reasons = []
    if facility.status == "closed":
        reasons.append(Exclusion("closed"))
    if facility.beds_available < need.total:
        reasons.append(Exclusion("beds", beds=facility.beds_available, total=need.total))
    if need.surgical and "damage_control_surgery" not in facility.capabilities:
        # DOMAIN.md sections 1 and 4: urgent-surgical needs forward surgery (UN Level 2 or higher).
        reasons.append(Exclusion("no_surgery"))
    if "ventilator" in need.equipment and "icu" not in facility.capabilities:
        reasons.append(Exclusion("no_icu"))
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


def clock_of(need: EvacuationNeed, now: datetime) -> _Clock:
    resuscitation, surgery, stand_in = need.clocks()

    def minutes(due: datetime | None) -> float | None:
        return None if due is None else (due - now).total_seconds() / 60

    return _Clock(
        deadline=minutes(need.deadline),
        resuscitation=minutes(min(resuscitation) + RESUSCITATION_DUE) if resuscitation else None,
        surgery=minutes(min(surgery) + SURGERY_DUE) if surgery else None,
        stand_in=stand_in,
    )


def evaluate(
    need: EvacuationNeed,
    asset: AssetState,
    facility: FacilityState,
    *,
    now: datetime,
    road_factor: float,
    clock: _Clock | None = None,
    pickup_km: float | None = None,
    delivery_km: float | None = None,
) -> Option:
    """One (asset, facility) option with its ETAs (readiness + travel at cruise speed), checks and reasons."""
    clock = clock or clock_of(need, now)
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
    # The timeline's rules (casevac.ten_one_two): resuscitation begins when medical staff reach the casualty
    # (the crew at pickup, else the facility); surgery at a destination with damage-control surgery.
    resuscitation_eta = ten_one_two.resuscitation_at(pickup=pickup_eta, delivery=delivery_eta, medical_crew=crew)
    surgery_eta = ten_one_two.surgery_at(
        delivery=delivery_eta, surgery_at_destination="damage_control_surgery" in facility.capabilities
    )
    meets_resuscitation = clock.resuscitation is None or resuscitation_eta <= clock.resuscitation
    meets_surgery = clock.surgery is None or (surgery_eta is not None and surgery_eta <= clock.surgery)
    score = delivery_eta + _spare_penalty(need, asset)
    if facility.status == "diverting":
        score += DIVERTING_PENALTY_MINUTES

    reasons = [
        f"{asset.callsign} ({asset.kind}): ready in {asset.readiness_minutes:g} min, "
        f"{pickup_km:.1f} km to the pickup site at {asset.cruise_speed_kmh:g} km/h"
    ]
    if asset.kind == "ground_ambulance":
        reasons.append(f"by road: distances taken as {road_factor:g} x the geodesic distance")
    for equipment in sorted(need.equipment):
        reasons.append(f"carries the {equipment} asked for")
    reasons.append(
        f"{facility.name} (Level {facility.level}), {delivery_km:.1f} km from the pickup site, "
        f"{facility.beds_available} beds available"
    )
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
    return Option(
        asset_id=asset.id,
        facility_id=facility.id,
        callsign=asset.callsign,
        facility_name=facility.name,
        pickup_eta_minutes=round(pickup_eta, 1),
        delivery_eta_minutes=round(delivery_eta, 1),
        distance_km=round(pickup_km + delivery_km, 2),
        route_km=round((pickup_km + delivery_km) * route_factor, 2),
        meets_deadline=meets_deadline,
        meets_ten_one_two=meets_resuscitation and meets_surgery,
        ground_leg=ground_leg,
        score_minutes=round(score, 1),
        reasons=reasons,
    )


# ---------------------------------------------------------------- the vectorised screen


class Arrays:
    """The per-asset and per-facility numbers the screen needs, as numpy arrays (built once per call)."""

    def __init__(
        self,
        need: EvacuationNeed,
        assets: Sequence[AssetState],
        facilities: Sequence[FacilityState],
        road_factor: float,
    ):
        # What depends on an asset's kind, speed and equipment, worked out once per distinct triple (a fleet
        # has a few dozen): minutes per km, aircraft, medical crew, spare-equipment penalty.
        traits: dict = {}
        table = []
        for asset in assets:
            key = (asset.kind, asset.cruise_speed_kmh, asset.capabilities)
            trait = traits.get(key)
            if trait is None:
                trait = traits[key] = (
                    _minutes_per_km(asset, road_factor),
                    asset.kind in AIRCRAFT,
                    "medical_crew" in asset.capabilities,
                    _spare_penalty(need, asset),
                )
            table.append((*asset.position, asset.readiness_minutes, *trait))
        a_lat, a_lon, self.readiness, self.per_km, aircraft, crew, self.spare = (
            np.array(table, dtype=float).reshape(len(assets), 7).T
        )
        self.aircraft, self.crew = aircraft.astype(bool), crew.astype(bool)
        f_lat = np.array([f.location[0] for f in facilities])
        f_lon = np.array([f.location[1] for f in facilities])
        self.helipad = np.array([f.helipad for f in facilities], dtype=bool)
        self.diverting = np.array([DIVERTING_PENALTY_MINUTES if f.status == "diverting" else 0.0 for f in facilities])
        self.to_pickup = sphere_km(a_lat, a_lon, need.pickup[0], need.pickup[1])
        self.to_facility = sphere_km(need.pickup[0], need.pickup[1], f_lat, f_lon)
        # Independent of the distances' scale: the ground leg of a helicopter to a facility without helipad.
        self.ground_leg = np.where(self.aircraft[:, None] & ~self.helipad[None, :], GROUND_LEG_MINUTES, 0.0)

    def keys(self, clock: _Clock, scale: float) -> np.ndarray:
        """(n, m) rank keys with distances times `scale`: the score (delivery ETA plus the ranking penalties),
        plus LATE when a check fails. Computed in place: a thousand assets make arrays of 100,000 pairs."""
        pickup = self.readiness + self.to_pickup * scale * self.per_km
        key = np.multiply.outer(self.per_km, self.to_facility * scale)
        key += pickup[:, None]
        key += self.ground_leg  # the delivery ETA, which the checks read
        late = np.zeros(key.shape, dtype=bool)
        if clock.deadline is not None:
            late |= key > clock.deadline
        if clock.resuscitation is not None:
            # Begun by the medical crew at pickup, else at the facility (evaluate).
            late |= np.where(self.crew[:, None], (pickup > clock.resuscitation)[:, None], key > clock.resuscitation)
        if clock.surgery is not None:
            late |= key > clock.surgery
        key += self.spare[:, None]
        key += self.diverting[None, :]
        key[late] += LATE
        return key


def _screen(need, assets, facilities, clock, road_factor, limit) -> list[tuple[int, int]]:
    """Pairs that may rank in the top `limit` once distances are geodesic: an optimistic key no worse than
    the limit-th pessimistic key (keys: LATE when the checks fail, plus the score)."""
    arrays = Arrays(need, assets, facilities, road_factor)
    low = arrays.keys(clock, 1 - SPHERE_ERROR)
    high = arrays.keys(clock, 1 + SPHERE_ERROR).ravel()
    k = min(limit, high.size) - 1
    threshold = np.partition(high, k)[k]
    rows, cols = np.nonzero(low <= threshold)
    return list(zip(rows.tolist(), cols.tolist(), strict=False))


# ---------------------------------------------------------------- recommend


def recommend(
    need: EvacuationNeed,
    assets: Iterable[AssetState],
    facilities: Iterable[FacilityState],
    *,
    now: datetime,
    road_factor: float,
    limit: int = 10,
) -> Recommendations:
    """Feasible (asset, facility) options, best first: those meeting the deadline and 10-1-2 before those
    that do not, then by score (delivery ETA plus penalties); with the reasons each asset or facility
    was left out."""
    night = is_night(need.pickup, now)
    reasons_for = asset_exclusion_rules(need, night=night)
    fit_assets, excluded_assets = [], []
    for asset in assets:
        reasons = reasons_for(asset)
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
    clock = clock_of(need, now)
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
            options.append(
                evaluate(
                    need,
                    fit_assets[i],
                    fit_facilities[j],
                    now=now,
                    road_factor=road_factor,
                    clock=clock,
                    pickup_km=pickup_km[i],
                    delivery_km=delivery_km[j],
                )
            )
        options.sort(key=Option.rank_key)
        options = options[:limit]
    return Recommendations(
        options=options,
        excluded_assets=excluded_assets,
        excluded_facilities=excluded_facilities,
        night=night,
        time_of_injury_estimated=clock.stand_in,
    )


# ---------------------------------------------------------------- plan (mass casualty)
