"""The recommendation and plan rules, case by case, on value objects (no database).

Expected distances are computed here with geographiclib's Karney solver directly (and checked against the
published length of a degree at the equator), then the ETA arithmetic is done by hand.
"""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta, timezone

import pytest
from geographiclib.geodesic import Geodesic

from casevac import geo
from casevac.dispatch import plan as mass_casualty
from casevac.dispatch import rules as dispatch
from casevac.dispatch.states import AssetState, EvacuationNeed, FacilityState, Option
from casevac.dispatch.states import CasualtyClock as Casualty

DAY = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)  # morning in the Central African Republic
NIGHT = datetime(2026, 11, 28, 22, 0, tzinfo=timezone.utc)
ROAD = 1.4


def geodesic_km(a, b) -> float:
    return Geodesic.WGS84.Inverse(a[0], a[1], b[0], b[1], Geodesic.DISTANCE)["s12"] / 1000


def need(**kw) -> EvacuationNeed:
    values = dict(
        pickup=(0.0, 0.0),
        patients={"urgent": 1},
        litter=1,
        ambulatory=0,
        filed_at=DAY,
        deadline=DAY + timedelta(hours=1),
        casualties=(Casualty("urgent", DAY),),
        request_id="R1",
    )
    values.update(kw)
    return EvacuationNeed(**values)


def asset(id_="A1", **kw) -> AssetState:
    values = dict(
        id=id_,
        callsign=id_,
        kind="rotary_wing",
        capabilities=frozenset({"medical_crew", "night"}),
        litter_capacity=4,
        ambulatory_capacity=4,
        cruise_speed_kmh=221.148,
        readiness_minutes=10,
        status="available",
        position=(1.0, 0.0),
    )
    values.update(kw)
    if isinstance(values["capabilities"], (set, list, tuple)):
        values["capabilities"] = frozenset(values["capabilities"])
    return AssetState(**values)


def facility(id_="F1", **kw) -> FacilityState:
    values = dict(
        id=id_,
        name=id_,
        level="2",
        capabilities=frozenset({"damage_control_surgery", "icu"}),
        status="normal",
        beds_available=10,
        helipad=True,
        location=(0.0, 1.0),
    )
    values.update(kw)
    if isinstance(values["capabilities"], (set, list, tuple)):
        values["capabilities"] = frozenset(values["capabilities"])
    return FacilityState(**values)


def recommend(n, assets, facilities, now=DAY, limit=10):
    return dispatch.recommend(n, assets, facilities, now=now, road_factor=ROAD, limit=limit)


# ---------------------------------------------------------------- ETA arithmetic


def test_reference_distances():
    # One degree of latitude / longitude at the equator on WGS-84 (published: 110.574 km, 111.320 km).
    assert geodesic_km((0, 0), (1, 0)) == pytest.approx(110.574, abs=0.001)
    assert geodesic_km((0, 0), (0, 1)) == pytest.approx(111.3195, abs=0.001)
    from casevac.geo import distance_km

    assert distance_km((0, 0), (1, 0)) == pytest.approx(geodesic_km((0, 0), (1, 0)), abs=1e-6)


def test_helicopter_eta_is_readiness_plus_flight_at_cruise_speed():
    option = recommend(need(), [asset()], [facility()]).options[0]
    # 110.574 km to the pickup at 221.148 km/h = 30.0 min, after 10 min readiness.
    assert option.pickup_eta_minutes == pytest.approx(40.0, abs=0.05)
    # then 111.3195 km to the facility: 30.2 min.
    leg = geodesic_km((0, 0), (0, 1)) / 221.148 * 60
    assert option.delivery_eta_minutes == pytest.approx(40.0 + leg, abs=0.05)
    assert option.distance_km == pytest.approx(110.574 + 111.3195, abs=0.01)
    assert option.route_km == option.distance_km and option.ground_leg is False
    assert option.meets_deadline is False  # 70.2 min > 1 h
    assert any("misses the urgent deadline by 10 min" in r for r in option.reasons)


def test_ground_ambulance_uses_the_road_factor():
    ambulance = asset(kind="ground_ambulance", cruise_speed_kmh=60, readiness_minutes=5, position=(0.1, 0.0))
    option = recommend(need(deadline=DAY + timedelta(hours=24)), [ambulance], [facility(location=(0.0, 0.2))]).options[
        0
    ]
    to_pickup, to_facility = geodesic_km((0.1, 0), (0, 0)), geodesic_km((0, 0), (0, 0.2))
    assert option.pickup_eta_minutes == pytest.approx(5 + to_pickup * 1.4, abs=0.05)  # 60 km/h: 1 min per km
    assert option.delivery_eta_minutes == pytest.approx(5 + (to_pickup + to_facility) * 1.4, abs=0.05)
    assert option.route_km == pytest.approx((to_pickup + to_facility) * 1.4, abs=0.01)
    assert option.ground_leg is False  # an ambulance needs no helipad
    assert any("1.4 x the geodesic distance" in r for r in option.reasons)


def test_a_helicopter_without_helipad_at_the_destination_gets_a_ground_leg():
    with_pad, without = facility("PAD"), facility("NOPAD", helipad=False)
    options = recommend(need(), [asset()], [with_pad, without]).options
    assert [o.facility_id for o in options] == ["PAD", "NOPAD"]
    assert options[1].delivery_eta_minutes == pytest.approx(options[0].delivery_eta_minutes + 20, abs=0.05)
    assert options[1].ground_leg and any(
        "no helipad at NOPAD: 20 min ground leg added" in r for r in options[1].reasons
    )


# ---------------------------------------------------------------- exclusions


def excluded_asset_reasons(result, asset_id):
    return next(e["reasons"] for e in result.excluded_assets if e["asset_id"] == asset_id)


def test_hoist_asked_for_excludes_assets_without_one():
    result = recommend(
        need(equipment=frozenset({"hoist"})),
        [asset("PLAIN"), asset("HOIST", capabilities={"hoist", "medical_crew"})],
        [facility()],
    )
    assert [o.asset_id for o in result.options] == ["HOIST"]
    assert excluded_asset_reasons(result, "PLAIN") == ["no hoist (asked for on line 4)"]
    assert any("carries the hoist asked for" in r for r in result.options[0].reasons)


def test_a_ventilated_patient_needs_a_ventilator_on_board_and_an_icu():
    n = need(equipment=frozenset({"ventilator"}))
    result = recommend(
        n,
        [asset("NOVENT"), asset("VENT", capabilities={"ventilator"})],
        [facility("ICU"), facility("NOICU", capabilities={"damage_control_surgery"}, location=(0, 0.5))],
    )
    assert {(o.asset_id, o.facility_id) for o in result.options} == {("VENT", "ICU")}
    assert excluded_asset_reasons(result, "NOVENT") == ["no ventilator (asked for on line 4)"]
    assert result.excluded_facilities == [
        {"facility_id": "NOICU", "name": "NOICU", "reasons": ["no ICU for the ventilated patient"]}
    ]


@pytest.mark.parametrize(
    "litter, ambulatory, capacity, fits",
    [
        (2, 0, (2, 0), True),
        (3, 0, (2, 4), False),  # a litter patient cannot sit
        (1, 3, (4, 0), True),  # ambulatory patients may take free litter places
        (2, 3, (2, 2), False),
        (0, 4, (0, 4), True),
    ],
)
def test_capacity(litter, ambulatory, capacity, fits):
    n = need(patients={"priority": litter + ambulatory}, litter=litter, ambulatory=ambulatory, casualties=())
    a = asset(litter_capacity=capacity[0], ambulatory_capacity=capacity[1])
    result = recommend(n, [a], [facility()])
    assert bool(result.options) is fits
    if not fits:
        assert excluded_asset_reasons(result, "A1")[0].startswith("too few")


def test_closed_facilities_are_excluded_and_diverting_ones_ranked_later():
    result = recommend(
        need(),
        [asset()],
        [
            facility("CLOSED", status="closed", location=(0, 0.1)),
            facility("DIVERTING", status="diverting", location=(0, 0.2)),
            facility("NORMAL", location=(0, 0.3)),
        ],
    )
    assert [o.facility_id for o in result.options] == ["NORMAL", "DIVERTING"]
    assert result.excluded_facilities[0]["facility_id"] == "CLOSED"
    assert result.excluded_facilities[0]["reasons"] == ["closed"]


def test_too_few_beds_excludes_a_facility():
    result = recommend(need(patients={"urgent": 3}, litter=3, casualties=()), [asset()], [facility(beds_available=2)])
    assert result.options == [] and result.excluded_facilities[0]["reasons"] == ["too few beds (2 for 3 patients)"]


def test_urgent_surgical_goes_to_surgery_not_to_the_closest_facility():
    n = need(patients={"urgent_surgical": 1}, casualties=(Casualty("urgent_surgical", DAY),))
    level1 = facility("L1", level="1", capabilities=set(), location=(0, 0.05))
    level2 = facility("L2", level="2", capabilities={"damage_control_surgery"}, location=(0, 0.5))
    result = recommend(n, [asset()], [level1, level2])
    assert [o.facility_id for o in result.options] == ["L2"]
    assert result.excluded_facilities[0]["reasons"] == ["no damage-control surgery for the urgent-surgical casualty"]
    # Without a surgical casualty the nearer Level 1 is best.
    assert recommend(need(), [asset()], [level1, level2]).options[0].facility_id == "L1"


def test_night_excludes_aircraft_without_night_capability():
    day_only = asset("DAYONLY", capabilities={"medical_crew"})
    night_capable = asset("NVG", capabilities={"medical_crew", "night"}, position=(2.0, 0.0))
    ambulance = asset("AMB", kind="ground_ambulance", capabilities=set(), cruise_speed_kmh=60, position=(0.5, 0))
    bangui = (4.3947, 18.5582)
    n = need(pickup=bangui, deadline=None)
    hospital = facility(location=(4.37, 18.56))
    at_night = recommend(n, [day_only, night_capable, ambulance], [hospital], now=NIGHT)
    assert at_night.night is True
    assert {o.asset_id for o in at_night.options} == {"NVG", "AMB"}
    assert excluded_asset_reasons(at_night, "DAYONLY") == ["no night capability, and it is night at the pickup site"]
    by_day = recommend(n, [day_only, night_capable, ambulance], [hospital], now=DAY)
    assert by_day.night is False and {o.asset_id for o in by_day.options} == {"DAYONLY", "NVG", "AMB"}


def test_sun_elevation_at_bangui():
    bangui = (4.3947, 18.5582)
    assert geo.sun_elevation_deg(*bangui, datetime(2026, 11, 28, 10, 45, tzinfo=timezone.utc)) > 60  # noon
    # Sunset about 16:35 UTC at the end of November; civil twilight ends some 22 minutes later.
    assert geo.is_night(bangui, datetime(2026, 11, 28, 16, 30, tzinfo=timezone.utc)) is False
    assert geo.is_night(bangui, datetime(2026, 11, 28, 17, 15, tzinfo=timezone.utc)) is True
    assert geo.is_night(bangui, datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)) is True  # before dawn


@pytest.mark.parametrize("status", ["tasked", "maintenance", "offline"])
def test_unavailable_and_fixed_wing_assets_are_excluded(status):
    result = recommend(need(), [asset("BUSY", status=status), asset("PLANE", kind="fixed_wing")], [facility()])
    assert result.options == []
    assert excluded_asset_reasons(result, "BUSY") == [f"not available ({status})"]
    assert excluded_asset_reasons(result, "PLANE")[0].startswith("fixed-wing")


def test_security_x_needs_an_armored_ambulance():
    n = need(security="X", deadline=None)
    plain = asset("PLAIN", kind="ground_ambulance", capabilities=set(), cruise_speed_kmh=60)
    armored = asset("ARMORED", kind="ground_ambulance", capabilities={"armored"}, cruise_speed_kmh=60)
    result = recommend(n, [plain, armored], [facility()])
    assert [o.asset_id for o in result.options] == ["ARMORED"]


# ---------------------------------------------------------------- deadline and 10-1-2


def test_meets_deadline_at_the_boundary():
    option = recommend(need(deadline=None), [asset()], [facility()]).options[0]
    exact = DAY + timedelta(minutes=option.delivery_eta_minutes + 0.01)
    assert recommend(need(deadline=exact), [asset()], [facility()]).options[0].meets_deadline is True
    early = DAY + timedelta(minutes=option.delivery_eta_minutes - 0.1)
    assert recommend(need(deadline=early), [asset()], [facility()]).options[0].meets_deadline is False


def test_ten_one_two_resuscitation_by_the_medical_crew_or_the_facility():
    # Injured 25 min ago: pickup at 40 min (65 after injury) misses 1 h; with injury 15 min ago it is met
    # by a crew at pickup (55 min) but not by a facility reached at 70 min (85 min after injury).
    crewed, bare = asset("CREW"), asset("BARE", capabilities={"night"})
    for minutes_ago, expected in ((25, {"CREW": False, "BARE": False}), (15, {"CREW": True, "BARE": False})):
        n = need(deadline=None, casualties=(Casualty("urgent", DAY - timedelta(minutes=minutes_ago)),))
        options = recommend(n, [crewed, bare], [facility()]).options
        assert {o.asset_id: o.meets_ten_one_two for o in options} == expected


def test_ten_one_two_surgery_within_two_hours_of_injury():
    def surgical(ago):
        return need(
            patients={"urgent_surgical": 1},
            deadline=None,
            casualties=(Casualty("urgent_surgical", DAY - timedelta(minutes=ago)),),
        )

    # Injured 15 min ago: the crew resuscitates at pickup (40 min, 55 after injury). Delivery 1 degree away at
    # ~70.2 min (85 after injury) meets the 2 h surgery leg; 3 degrees away, ~130.6 min (146 after), it does not.
    near, far = facility("NEAR"), facility("FAR", location=(0.0, 3.0))
    options = recommend(surgical(15), [asset()], [near, far]).options
    assert {o.facility_id: o.meets_ten_one_two for o in options} == {"NEAR": True, "FAR": False}
    assert options[1].delivery_eta_minutes + 15 > 120


def test_unknown_time_of_injury_uses_the_filing_time_and_says_so():
    n = need(casualties=(), filed_at=DAY - timedelta(minutes=50), deadline=None)
    result = recommend(n, [asset()], [facility()])
    assert result.time_of_injury_estimated is True
    assert result.options[0].meets_ten_one_two is False  # 50 + 40 min > 1 h
    assert any("filing time stands in" in r for r in result.options[0].reasons)


def test_options_meeting_the_checks_rank_before_faster_ones_that_do_not():
    n = need(deadline=None, casualties=(Casualty("urgent", DAY - timedelta(minutes=15)),))
    fast_bare = asset("FAST", capabilities={"night"}, cruise_speed_kmh=300)
    slow_crew = asset("SLOW", capabilities={"medical_crew"}, cruise_speed_kmh=221.148)
    options = recommend(n, [fast_bare, slow_crew], [facility()]).options
    assert options[0].delivery_eta_minutes > options[1].delivery_eta_minutes
    assert [o.asset_id for o in options] == ["SLOW", "FAST"]


def test_scarce_equipment_is_kept_free_when_not_needed():
    plain, hoist = asset("PLAIN"), asset("HOIST", capabilities={"medical_crew", "night", "hoist"})
    options = recommend(need(deadline=None), [hoist, plain], [facility()]).options
    assert [o.asset_id for o in options] == ["PLAIN", "HOIST"]
    assert options[1].score_minutes == pytest.approx(options[1].delivery_eta_minutes + 3, abs=0.06)


def test_the_fast_screen_returns_exactly_the_brute_force_ranking():
    rng = random.Random(7)
    for trial in range(8):
        pickup = (rng.uniform(2, 7), rng.uniform(15, 23))
        assets = [
            asset(
                f"A{i}",
                kind=rng.choice(["rotary_wing", "ground_ambulance"]),
                capabilities=set(rng.sample(["medical_crew", "night", "hoist"], rng.randint(0, 3))),
                cruise_speed_kmh=rng.choice([60, 80, 220, 260]),
                readiness_minutes=rng.choice([0, 5, 15, 30]),
                position=(rng.uniform(2, 7), rng.uniform(15, 23)),
            )
            for i in range(30)
        ]
        facilities = [
            facility(
                f"F{j}",
                helipad=rng.random() < 0.6,
                status=rng.choice(["normal", "diverting"]),
                location=(rng.uniform(2, 7), rng.uniform(15, 23)),
            )
            for j in range(6)
        ]
        n = need(
            pickup=pickup,
            deadline=DAY + timedelta(minutes=rng.choice([60, 120, 240])),
            casualties=(Casualty("urgent", DAY - timedelta(minutes=rng.randint(0, 40))),),
        )
        fast = recommend(n, assets, facilities, limit=5).options
        brute = sorted(
            (dispatch.evaluate(n, a, f, now=DAY, road_factor=ROAD) for a in assets for f in facilities),
            key=Option.rank_key,
        )[:5]
        assert [(o.asset_id, o.facility_id) for o in fast] == [(o.asset_id, o.facility_id) for o in brute], trial


# ---------------------------------------------------------------- plan


def plan(needs, assets, facilities):
    return mass_casualty.plan(needs, assets, facilities, now=DAY, road_factor=ROAD)


def test_plan_serves_urgent_before_routine_even_when_routine_is_nearer_and_older():
    routine = need(
        request_id="ROUTINE",
        patients={"routine": 1},
        deadline=DAY + timedelta(hours=24),
        casualties=(),
        pickup=(0.9, 0.0),
        filed_at=DAY - timedelta(hours=2),
    )
    urgent = need(request_id="URGENT", pickup=(-1.0, 0.0))
    result = plan([routine, urgent], [asset()], [facility()])
    assert [a["request_id"] for a in result["assignments"]] == ["URGENT"]
    assert result["unserved"] == [
        {"request_id": "ROUTINE", "reason": "every asset that can fly it is assigned to a more urgent request"}
    ]


def test_plan_minimises_the_total_time_and_never_assigns_an_asset_twice():
    rng = random.Random(3)
    needs = [need(request_id=f"R{i}", pickup=(rng.uniform(-1, 1), rng.uniform(-1, 1)), deadline=None) for i in range(4)]
    assets = [
        asset(
            f"A{j}",
            position=(rng.uniform(-2, 2), rng.uniform(-2, 2)),
            cruise_speed_kmh=200,
            readiness_minutes=rng.choice([0, 10, 20]),
        )
        for j in range(5)
    ]
    result = plan(needs, assets, [facility(beds_available=50)])
    used = [a["asset_id"] for a in result["assignments"]]
    assert len(used) == len(set(used)) == 4 and result["unserved"] == []
    total = sum(a["delivery_eta_minutes"] for a in result["assignments"])
    best = min(
        sum(
            dispatch.evaluate(n, a, facility(beds_available=50), now=DAY, road_factor=ROAD).delivery_eta_minutes
            for n, a in zip(needs, perm, strict=False)
        )
        for perm in itertools.permutations(assets, 4)
    )
    assert total == pytest.approx(best, abs=0.5)  # the solver works on spherical times: within rounding
    assert all(
        a["reasons"][0].startswith("joint assignment of 4 urgent / urgent_surgical request(s)")
        for a in result["assignments"]
    )


def test_plan_beats_nearest_first_greedy():
    # R1 is nearest to both assets; greedy gives R1 the near asset A and R2 the far B. The joint optimum
    # gives R1 the asset B (almost as near to it) and R2 the asset A.
    r1 = need(request_id="R1", pickup=(0.0, 0.0), deadline=None)
    r2 = need(request_id="R2", pickup=(0.0, 1.0), deadline=None)
    a = asset("A", position=(0.0, 0.3))
    b = asset("B", position=(0.0, -0.4))
    result = plan([r1, r2], [a, b], [facility(location=(0.0, 0.5))])
    assert {x["request_id"]: x["asset_id"] for x in result["assignments"]} == {"R1": "B", "R2": "A"}


def test_plan_consumes_beds_and_explains_the_unserved():
    n1, n2 = need(request_id="R1"), need(request_id="R2", filed_at=DAY + timedelta(minutes=1))
    hoist_need = need(request_id="R3", equipment=frozenset({"hoist"}))
    result = plan([n1, n2, hoist_need], [asset("A"), asset("B")], [facility(beds_available=1)])
    assert len(result["assignments"]) == 1
    reasons = {u["request_id"]: u["reason"] for u in result["unserved"]}
    assert reasons["R3"].startswith("no available asset can fly it: no hoist")
    unplaced = ({"R1", "R2"} - {a["request_id"] for a in result["assignments"]}).pop()
    assert reasons[unplaced] == "the beds of every facility that can take it went to requests placed before it"


def test_plan_lists_late_assignments():
    result = plan([need(request_id="FAR", pickup=(-3.0, 0.0))], [asset()], [facility()])
    assert result["assignments"][0]["meets_deadline"] is False
    assert result["late"] == [{"request_id": "FAR", "reason": "assigned, but misses the deadline or 10-1-2"}]


def test_plan_has_no_side_effects_on_its_inputs():
    assets, facilities = [asset("A"), asset("B")], [facility(beds_available=1)]
    before = (list(assets), list(facilities))
    plan([need(request_id="R1"), need(request_id="R2")], assets, facilities)
    assert (assets, facilities) == before and facilities[0].beds_available == 1
