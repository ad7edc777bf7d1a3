"""CASEVAC requests: filing (idempotent), visibility, the lifecycle, casualties, escalation, metrics.

Plain functions, keyword-only, explicit session. Every state change writes its history row, its audit
row and its event-log row in the same transaction (ARCHITECTURE.md: the transactional outbox); races
are decided by the database (a unique constraint for filing, conditional UPDATEs for moves).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from casevac import geo, policy
from casevac.precedence import DEADLINES, PRECEDENCE_RANK, PRECEDENCES, precedence_of
from casevac.requests.models import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    CasevacRequest,
    Casualty,
    SignsReading,
    StatusChange,
)
from core import audit, clock
from core.db import commit_keeping_loaded
from core.errors import conflict, forbidden, invalid, not_found
from core.pagination import Key, encode_cursor, paginate
from realtime import audience, events

# Queue rows read per round when filtering by distance (the exact test is geodesic, in Python).
_NEAR_BATCH = 200

DEFAULT_RADIUS_KM = 50.0
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,64}")


# ---- filing ---------------------------------------------------------------------------------------


def file_request(session, *, actor, body: dict, idempotency_key: str | None = None) -> tuple[CasevacRequest, bool]:
    """File a 9-line request; returns (request, created). Same client_ref + same body: the original
    (created False); same client_ref + another body: 409. The unique constraint on (filed_by, client_ref)
    decides between racing retries."""
    body = dict(body)
    client_ref = body.pop("client_ref", None)
    if idempotency_key is not None:
        idempotency_key = idempotency_key.strip()
        if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise invalid("Idempotency-Key", "1 to 64 printable ASCII characters", location="headers")
        if client_ref is not None and client_ref != idempotency_key:
            raise invalid("client_ref", "differs from the Idempotency-Key header: send one or make them equal")
        client_ref = idempotency_key
    body_hash = canonical_hash(body)
    if client_ref is not None:
        existing = _by_client_ref(session, user_id=actor.id, client_ref=client_ref)
        if existing is not None:
            return _replay(existing, body_hash), False

    location = _location(body["location"])
    now = clock.now()
    patients = body["patients"]
    precedence = precedence_of(patients)
    request = CasevacRequest(
        mission_id=actor.mission_id,
        filed_by=actor.id,
        client_ref=client_ref,
        body_hash=body_hash,
        lat=location.lat,
        lon=location.lon,
        mgrs=location.mgrs,
        location_source=location.source,
        location_text=(body["location"].get("mgrs") or body["location"].get("text"))
        if location.source != "latlon"
        else None,
        callsign=body["callsign"],
        frequency=body["frequency"],
        suffix=body.get("suffix"),
        **{f"patients_{name}": patients.get(name, 0) for name in PRECEDENCES},
        equipment=_equipment(body.get("equipment") or []),
        litter=body["litter"],
        ambulatory=body["ambulatory"],
        precedence=precedence,
        precedence_rank=PRECEDENCE_RANK[precedence],
        deadline=now + DEADLINES[precedence] if DEADLINES[precedence] else None,
        status="requested",
        created_at=now,
        updated_at=now,
    )
    for name in ("security", "wounds", "marking", "marking_detail", "nationality", "cbrn", "terrain", "remarks"):
        setattr(request, name, body.get(name))
    session.add(request)
    request.history.append(StatusChange(status="requested", from_status=None, at=now, by=actor.id))
    for position, casualty_body in enumerate(body.get("casualties") or []):
        request.casualties.append(_new_casualty(casualty_body, position=position, actor=actor, now=now))
    try:
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="casevac.file",
            subject_type="casevac_request",
            subject_id=request.id,
            mission_id=request.mission_id,
            detail={"precedence": precedence, "patients": request.patients_total, "location_source": location.source},
        )
        publish(session, "casevac.created", request)
        # The new request and everything its view shows are in memory, as written: answer from them
        # instead of reloading (four queries: the largest part of a filing's cost, and the first live
        # alert waits for the filing to commit).
        commit_keeping_loaded(session)
    except IntegrityError:
        # Another submission with the same client_ref won the race: answer as a retry of it.
        session.rollback()
        existing = _by_client_ref(session, user_id=actor.id, client_ref=client_ref) if client_ref else None
        if existing is None:
            raise
        return _replay(existing, body_hash), False
    return request, True


def canonical_hash(body: dict) -> str:
    """sha256 of the validated body (client_ref excluded) in a canonical JSON form."""
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), default=_json_default, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def _json_default(value):
    if isinstance(value, datetime):
        return clock.as_utc(value).isoformat()
    return str(value)


def _by_client_ref(session, *, user_id: str, client_ref: str) -> CasevacRequest | None:
    return session.execute(
        select(CasevacRequest).where(CasevacRequest.filed_by == user_id, CasevacRequest.client_ref == client_ref)
    ).scalar_one_or_none()


def _replay(existing: CasevacRequest, body_hash: str) -> CasevacRequest:
    if existing.body_hash != body_hash:
        raise conflict(
            "this client_ref was already used for a different request body; use a new client_ref for a new request",
            id=existing.id,
        )
    return existing


def _location(location: dict) -> geo.Location:
    try:
        return geo.parse_location(location)
    except geo.LocationError as exc:
        raise invalid(f"location.{exc.field}", exc.message) from None


def _equipment(equipment: list[str]) -> list[str]:
    # Line 4 code A ("none") is the empty list; keep the order of first mention, without repeats.
    return [item for i, item in enumerate(equipment) if item != "none" and item not in equipment[:i]]


def _new_casualty(body: dict, *, position: int, actor, now: datetime) -> Casualty:
    casualty = Casualty(
        position=position,
        zap=body.get("zap"),
        age=body.get("age"),
        sex=body.get("sex"),
        time_of_injury=_utc(body.get("time_of_injury")),
        mechanism=body.get("mechanism"),
        mechanism_detail=body.get("mechanism_detail"),
        injuries=list(body.get("injuries") or []),
        treatments=[_treatment(t, now) for t in body.get("treatments") or []],
        precedence=body.get("precedence"),
        created_at=now,
        updated_at=now,
    )
    if body.get("signs"):
        casualty.signs_history.append(_reading(body["signs"], actor=actor, now=now))
    return casualty


def _treatment(body: dict, now: datetime) -> dict:
    out = {"code": body["code"], "at": clock.as_utc(body.get("at") or now).isoformat()}
    if body.get("detail"):
        out["detail"] = body["detail"]
    return out


def _reading(body: dict, *, actor, now: datetime) -> SignsReading:
    values = {name: body[name] for name in SignsReading.VITALS if name in body}
    return SignsReading(taken_at=_utc(body.get("taken_at")) or now, recorded_at=now, recorded_by=actor.id, **values)


def _utc(value: datetime | None) -> datetime | None:
    """As the database gives it back (UTC), so a view built from memory equals a later read."""
    return clock.as_utc(value) if value is not None else None


# ---- reading --------------------------------------------------------------------------------------


def get_visible(session, *, actor, request_id: str) -> CasevacRequest:
    """The request if this actor may see it (a medic: what they filed; a coordinator or admin: their
    mission's), else 404, the same for an unknown id as for another mission's (API.md, Conventions)."""
    request = session.get(CasevacRequest, request_id, options=_FULL) if isinstance(request_id, str) else None
    if request is None or not policy.may_see_request(actor, request):
        raise not_found("casevac request")
    return request


def reload(session, request: CasevacRequest) -> CasevacRequest:
    """After a commit (which expires everything): the request and what its view shows, in four queries."""
    return session.execute(select(CasevacRequest).where(CasevacRequest.id == request.id).options(*_FULL)).scalar_one()


# A request with everything its view shows, in three extra queries whatever the number of casualties.
_FULL = [
    selectinload(CasevacRequest.casualties).selectinload(Casualty.signs_history),
    selectinload(CasevacRequest.history),
]


def list_requests(
    session,
    *,
    actor,
    limit: int,
    cursor: str | None = None,
    status: str | None = None,
    precedence: str | None = None,
    active: bool | None = None,
    near: str | None = None,
    radius_km: float | None = None,
) -> dict:
    """The queue: most urgent precedence first, then oldest first (API.md). A medic sees their own.
    near="lat,lon" keeps requests within radius_km (default 50) by geodesic distance."""
    if radius_km is not None and not near:
        raise invalid("radius_km", "needs near=lat,lon", location="query")
    query = select(CasevacRequest)
    if actor.role == "medic":
        query = query.where(CasevacRequest.filed_by == actor.id)
    else:
        query = query.where(CasevacRequest.mission_id == actor.mission_id)
    if status:
        query = query.where(CasevacRequest.status == status)
    if precedence:
        query = query.where(CasevacRequest.precedence == precedence)
    if active is True:
        query = query.where(CasevacRequest.status.in_(ACTIVE_STATUSES))
    elif active is False:
        query = query.where(CasevacRequest.status.in_(FINAL_STATUSES))
    keys = [Key(CasevacRequest.precedence_rank), Key(CasevacRequest.created_at), Key(CasevacRequest.id)]
    if near is None:
        return _with_casualty_counts(session, paginate(query, keys, limit=limit, cursor=cursor, session=session))

    # Distance filter: an index-friendly box in SQL, the exact geodesic test here, page by page.
    near = parse_near(near)
    radius_km = radius_km or DEFAULT_RADIUS_KM
    lat_min, lat_max, lon_ranges = geo.bounding_box(near[0], near[1], radius_km)
    query = query.where(
        CasevacRequest.lat.between(lat_min, lat_max),
        or_(*[CasevacRequest.lon.between(west, east) for west, east in lon_ranges]),
    )
    found: list[CasevacRequest] = []
    scan_cursor = cursor
    while len(found) <= limit:
        page = paginate(query, keys, limit=max(limit + 1, _NEAR_BATCH), cursor=scan_cursor, session=session)
        for request in page["items"]:
            distance = geo.distance_km(near, (request.lat, request.lon))
            if distance <= radius_km:
                request.distance_km = round(distance, 3)
                found.append(request)
                if len(found) > limit:
                    break
        scan_cursor = page["next_cursor"]
        if scan_cursor is None:
            break
    next_cursor = None
    if len(found) > limit:
        found = found[:limit]
        next_cursor = encode_cursor([key.value_of(found[-1]) for key in keys])
    return _with_casualty_counts(session, {"items": found, "next_cursor": next_cursor})


def awaiting_dispatch(session, *, mission_id: str) -> list[CasevacRequest]:
    """The mission's requests awaiting dispatch, most urgent first, then oldest (the plan's default input)."""
    return list(
        session.execute(
            select(CasevacRequest)
            .where(CasevacRequest.mission_id == mission_id, CasevacRequest.status.in_(policy.BEFORE_DISPATCH))
            .order_by(CasevacRequest.precedence_rank, CasevacRequest.created_at, CasevacRequest.id)
            .options(selectinload(CasevacRequest.casualties))
        ).scalars()
    )


def _with_casualty_counts(session, page: dict) -> dict:
    """One grouped count for the page instead of loading every casualty of every queue entry."""
    ids = [request.id for request in page["items"]]
    counts = (
        dict(
            session.execute(
                select(Casualty.request_id, func.count())
                .where(Casualty.request_id.in_(ids))
                .group_by(Casualty.request_id)
            ).all()
        )
        if ids
        else {}
    )
    for request in page["items"]:
        request.casualties_count = counts.get(request.id, 0)
    return page


# ---- changing lines and casualties ---------------------------------------------------------------


def update_request(session, *, actor, request_id: str, changes: dict) -> CasevacRequest:
    """Complete or correct line 2, lines 4-9 and remarks: the filing medic before dispatch, or a
    coordinator while the request is active."""
    request = _lock(session, actor=actor, request_id=request_id)
    _ensure_may_edit(actor, request)
    if not changes:
        return request
    litter = changes.get("litter", request.litter)
    ambulatory = changes.get("ambulatory", request.ambulatory)
    if litter + ambulatory != request.patients_total:
        # DOMAIN.md section 1: line 5 must keep equalling line 3 (which is not corrected here).
        field = "litter" if "litter" in changes else "ambulatory"
        raise invalid(field, f"litter + ambulatory must equal the patients of line 3 ({request.patients_total})")
    if "equipment" in changes:
        changes = {**changes, "equipment": _equipment(changes["equipment"] or [])}
    changed = sorted(name for name, value in changes.items() if getattr(request, name) != value)
    if not changed:
        return request
    for name in changed:
        setattr(request, name, changes[name])
    request.updated_at = clock.now()
    audit.record(
        session,
        actor=actor,
        action="casevac.update",
        subject_type="casevac_request",
        subject_id=request.id,
        mission_id=request.mission_id,
        detail={"fields": changed},
    )
    publish(session, "casevac.updated", request, change="lines", fields=changed)
    session.commit()
    return reload(session, request)


def add_casualty(session, *, actor, request_id: str, body: dict) -> Casualty:
    request = _lock(session, actor=actor, request_id=request_id)
    _ensure_may_edit(actor, request)
    if len(request.casualties) >= request.patients_total:
        raise conflict(
            f"the request has {request.patients_total} patients (line 3) and as many casualties; "
            "correct line 3 by filing again or update an existing casualty"
        )
    now = clock.now()
    casualty = _new_casualty(body, position=len(request.casualties), actor=actor, now=now)
    request.casualties.append(casualty)
    request.updated_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="casevac.casualty.add",
        subject_type="casevac_casualty",
        subject_id=casualty.id,
        mission_id=request.mission_id,
        detail={"request_id": request.id},
    )
    publish(session, "casevac.updated", request, change="casualties")
    session.commit()
    return casualty


def get_casualty(session, *, actor, casualty_id: str) -> Casualty:
    casualty = session.get(Casualty, casualty_id) if isinstance(casualty_id, str) else None
    if casualty is None or not policy.may_see_request(actor, casualty.request):
        raise not_found("casualty")
    return casualty


def read_casualty(session, *, actor, casualty_id: str) -> Casualty:
    """A casualty's full medical record (every vital-sign reading): the read is audited. The request view,
    polled by coordinators' screens, is not: it shows the latest reading only."""
    casualty = get_casualty(session, actor=actor, casualty_id=casualty_id)
    audit.record(
        session,
        actor=actor,
        action="casevac.casualty.read",
        subject_type="casevac_casualty",
        subject_id=casualty.id,
        mission_id=casualty.request.mission_id,
        detail={"request_id": casualty.request_id},
    )
    session.commit()
    return casualty


def export_request(session, *, actor, request_id: str) -> CasevacRequest:
    """A request leaving the system as an interoperability document (Cursor-on-Target): audited."""
    request = get_visible(session, actor=actor, request_id=request_id)
    audit.record(
        session,
        actor=actor,
        action="casevac.export.cot",
        subject_type="casevac_request",
        subject_id=request.id,
        mission_id=request.mission_id,
    )
    commit_keeping_loaded(session)  # the audit row changes nothing the export shows
    return request


def update_casualty(session, *, actor, casualty_id: str, changes: dict) -> Casualty:
    """Correct MIST-AT fields; `signs` and `treatments` append (DOMAIN.md section 2: keep the history)."""
    casualty = get_casualty(session, actor=actor, casualty_id=casualty_id)
    request = _lock(session, actor=actor, request_id=casualty.request_id)
    _ensure_may_edit(actor, request, allow_after_dispatch_for_filer=True)
    now = clock.now()
    changes = dict(changes)
    fields_changed = []
    signs = changes.pop("signs", None)
    treatments = changes.pop("treatments", None)
    for name, value in changes.items():
        if getattr(casualty, name) != value:
            setattr(casualty, name, value)
            fields_changed.append(name)
    if signs:
        casualty.signs_history.append(_reading(signs, actor=actor, now=now))
        fields_changed.append("signs")
    if treatments:
        casualty.treatments = list(casualty.treatments or []) + [_treatment(t, now) for t in treatments]
        fields_changed.append("treatments")
    if not fields_changed:
        return casualty
    casualty.updated_at = request.updated_at = now
    audit.record(
        session,
        actor=actor,
        action="casevac.casualty.update",
        subject_type="casevac_casualty",
        subject_id=casualty.id,
        mission_id=request.mission_id,
        detail={"request_id": request.id, "fields": sorted(fields_changed)},
    )
    publish(session, "casevac.updated", request, change="casualties")
    session.commit()
    return casualty


def _lock(session, *, actor, request_id: str) -> CasevacRequest:
    """The visible request, row-locked (PostgreSQL) so an edit and a status move do not interleave."""
    request = get_visible(session, actor=actor, request_id=request_id)
    session.execute(select(CasevacRequest.id).where(CasevacRequest.id == request.id).with_for_update())
    session.refresh(request)
    return request


def _ensure_may_edit(actor, request: CasevacRequest, allow_after_dispatch_for_filer: bool = False) -> None:
    # The filing medic keeps updating vital signs while waiting and during the flight (allow_after_dispatch).
    if policy.may_edit_request(actor, request, vitals=allow_after_dispatch_for_filer):
        return
    if request.status in FINAL_STATUSES:
        raise conflict(f"the request is {request.status}: it can no longer be changed", status=request.status)
    if policy.is_filer(actor, request):
        raise conflict("the request is dispatched: ask the coordinator to change it", status=request.status)
    raise forbidden("only the filing medic or a coordinator changes a request")


# ---- the lifecycle --------------------------------------------------------------------------------

# ---- events ---------------------------------------------------------------------------------------


def event_data(request: CasevacRequest, **extra) -> dict:
    """Compact: what a coordinator's map and queue need, no medical free text."""
    data = {
        "id": request.id,
        "mission_id": request.mission_id,
        "status": request.status,
        "precedence": request.precedence,
        "lat": request.lat,
        "lon": request.lon,
        "mgrs": request.mgrs,
        "patients": request.patients_total,
        "equipment": list(request.equipment or []),
        "lines_complete": request.lines_complete,
        "filed_by": request.filed_by,
        "deadline": request.deadline.isoformat() if request.deadline else None,
        "asset_id": request.asset_id,
        "facility_id": request.facility_id,
        "updated_at": request.updated_at.isoformat(),
    }
    data.update(extra)
    return data


def publish(session, type_: str, request: CasevacRequest, **extra) -> None:
    events.publish(
        session,
        type_,
        audience.coordinators(request.mission_id) + [audience.user(request.filed_by)],
        event_data(request, **extra),
        mission_id=request.mission_id,
    )


def parse_near(text: str) -> tuple[float, float]:
    parts = str(text).split(",")
    if len(parts) != 2:
        raise invalid("near", "lat,lon in decimal degrees, e.g. 4.36,18.55", location="query")
    try:
        location = geo.from_latlon(parts[0].strip(), parts[1].strip())
    except geo.LocationError as exc:
        raise invalid("near", exc.message, location="query") from None
    return location.lat, location.lon
