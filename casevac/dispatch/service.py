"""Dispatch: recommendations for a request, the dispatch itself (asset tasked and request dispatched in one
transaction, each by a conditional update) and the mass-casualty plan. The rules are casevac.dispatch.rules;
this module loads their inputs (through the fleet's and the requests' services) and holds the transactions."""

from __future__ import annotations

from casevac.dispatch.plan import plan
from casevac.dispatch.rules import asset_exclusions, facility_exclusions, recommend
from casevac.dispatch.states import AssetState, CasualtyClock, EvacuationNeed, FacilityState
from casevac.fleet import assets, facilities, positions, snapshot
from casevac.fleet.positions import DATABASE_ONLY, LiveStore
from casevac.geo import is_night
from casevac.policy import BEFORE_DISPATCH, FINAL_STATUSES
from casevac.requests import access, lifecycle, service
from core import audit
from core import clock as core_clock
from core.db import commit_keeping_loaded
from core.errors import conflict, not_found


def fleet_states(
    session, *, mission_id: str, store: LiveStore = DATABASE_ONLY
) -> tuple[list[AssetState], list[FacilityState]]:
    """The mission's assets, each at its latest reported position (else its base), and facilities, as value
    objects."""
    assets, facilities = snapshot.fleet(
        session, mission_id=mission_id, store=store, asset_row=AssetState, facility_row=FacilityState
    )
    return list(assets), list(facilities)


def asset_state(asset, position: dict | None) -> AssetState:
    where = (position["lat"], position["lon"]) if position else (asset.base_lat, asset.base_lon)
    # Positional, in AssetState's field order: a thousand are built per recommendation.
    return AssetState(
        asset.id,
        asset.callsign,
        asset.kind,
        frozenset(asset.capabilities or ()),
        asset.litter_capacity,
        asset.ambulatory_capacity,
        asset.cruise_speed_kmh,
        asset.readiness_minutes,
        asset.status,
        where,
    )


def facility_state(facility) -> FacilityState:
    return FacilityState(
        id=facility.id,
        name=facility.name,
        level=facility.level,
        capabilities=frozenset(facility.capabilities or ()),
        status=facility.status,
        beds_available=facility.beds_available,
        helipad=facility.helipad,
        location=(facility.lat, facility.lon),
    )


def need_from_request(request) -> EvacuationNeed:
    """The evacuation need of a CASEVAC request (lines 1, 3, 4, 5, 6 and the casualties' MIST-AT)."""
    patients = {p: int(n or 0) for p, n in (request.patients or {}).items()}
    casualties = tuple(
        CasualtyClock(precedence=c.precedence, time_of_injury=c.time_of_injury) for c in (request.casualties or ())
    )
    return EvacuationNeed(
        pickup=(request.lat, request.lon),
        patients=patients,
        litter=request.litter,
        ambulatory=request.ambulatory,
        filed_at=request.created_at,
        deadline=request.deadline,
        equipment=frozenset(request.equipment or ()),
        casualties=casualties,
        security=request.security,
        request_id=request.id,
    )


def recommend_for_request(
    session, *, actor, request_id: str, limit: int, settings, store: LiveStore = DATABASE_ONLY
) -> dict:
    request = access.get_visible(session, actor=actor, request_id=request_id, full=False)
    if request.status in FINAL_STATUSES:
        raise conflict(f"the request is {request.status}: nothing left to evacuate", current=request.status)
    now = core_clock.now()
    result = recommend(
        need_from_request(request),
        *fleet_states(session, mission_id=request.mission_id, store=store),
        now=now,
        road_factor=settings.ROAD_FACTOR,
        limit=limit,
    )
    return {"request_id": request.id, "computed_at": now, **result.as_dict()}


def assign(session, *, actor, request_id: str, asset_id: str, facility_id: str, store: LiveStore = DATABASE_ONLY):
    """Dispatch: the asset available -> tasked and the request -> dispatched, in one transaction, each by a
    conditional update, so of two coordinators racing for one asset or one request exactly one wins and
    the other gets 409 with the reason (ARCHITECTURE.md: the database decides races)."""
    request = access.get_visible(session, actor=actor, request_id=request_id)
    asset = assets.get_asset(session, actor=actor, asset_id=asset_id)
    facility = facilities.get_facility(session, actor=actor, facility_id=facility_id)
    if asset.mission_id != request.mission_id:
        raise not_found("asset")
    if facility.mission_id != request.mission_id:
        raise not_found("facility")
    if request.status not in BEFORE_DISPATCH:
        raise conflict(
            f"the request is {request.status}, not awaiting dispatch",
            current=request.status,
            allowed_from=list(BEFORE_DISPATCH),
        )
    need = need_from_request(request)
    now = core_clock.now()
    position = assets.latest_position(session, asset, store=store)
    state = asset_state(asset, position)
    # Fitness first (status is decided below, atomically): a wrong choice is refused with the reasons.
    reasons = [r for r in asset_exclusions(need, state, night=is_night(need.pickup, now)) if r.code != "not_available"]
    reasons += facility_exclusions(need, facility_state(facility))
    if reasons:
        raise conflict("this asset and facility cannot serve the request", reasons=reasons)
    if not assets.task(session, asset_id=asset.id, request_id=request.id, now=now):
        session.rollback()
        current = assets.get_asset(session, actor=actor, asset_id=asset_id)
        raise conflict(
            f"asset {current.callsign} is not available ({current.status})",
            asset_status=current.status,
            tasked_request_id=current.tasked_request_id,
        )
    if not lifecycle.mark_dispatched(
        session,
        actor=actor,
        request=request,
        asset_id=asset.id,
        facility_id=facility.id,
        medical_crew="medical_crew" in state.capabilities,
        surgery_at_destination="damage_control_surgery" in (facility.capabilities or ()),
    ):
        session.rollback()
        current = access.get_visible(session, actor=actor, request_id=request_id)
        raise conflict(
            f"the request is {current.status}: another dispatch or change came first", current=current.status
        )
    audit.record(session, actor, "asset.task", asset, detail={"request_id": request.id, "facility_id": facility.id})
    session.refresh(asset)
    assets.publish_asset(session, asset, store=store, position=position)
    # Answer from what was written (as filing does): the request and its casualties stay loaded.
    commit_keeping_loaded(session)
    return lifecycle.answer(request)


def release_asset(session, request) -> None:
    """A release hook (casevac.requests.lifecycle): a delivered or cancelled request frees its asset (only if
    it still serves it)."""
    if request.asset_id:
        assets.free(session, asset_id=request.asset_id, request_id=request.id, store=positions.live_store())


def plan_for_requests(
    session, *, actor, request_ids: list[str] | None, settings, store: LiveStore = DATABASE_ONLY
) -> dict:
    """The mass-casualty plan over the given requests (default: all awaiting dispatch); reads only."""
    unserved: list[dict] = []
    if request_ids is None:
        requests = service.awaiting_dispatch(session, mission_id=actor.mission_id)
    else:
        requests = []
        for request_id in request_ids:
            request = access.get_visible(session, actor=actor, request_id=request_id)
            if request.mission_id != actor.mission_id:  # a superadmin's view of another mission: not its fleet
                unserved.append({"request_id": request.id, "reason": "another mission's request: plan it there"})
            elif request.status in BEFORE_DISPATCH:
                requests.append(request)
            else:
                unserved.append({"request_id": request.id, "reason": f"not awaiting dispatch ({request.status})"})
    now = core_clock.now()
    result = plan(
        [need_from_request(r) for r in requests],
        *fleet_states(session, mission_id=actor.mission_id, store=store),
        now=now,
        road_factor=settings.ROAD_FACTOR,
    )
    session.rollback()  # nothing was written: the plan has no side effects
    return {
        "computed_at": now,
        "assignments": result["assignments"],
        "unserved": unserved + result["unserved"],
        "late": result["late"],
    }
