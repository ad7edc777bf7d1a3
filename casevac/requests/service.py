"""CASEVAC requests: filing (idempotent), the queue, corrections of lines 1-9, the CoT export. Visibility
is casevac.requests.access, casualties casevac.requests.casualties, the events casevac.requests.events,
status moves and escalation casevac.requests.lifecycle.

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
from casevac.codes import LATER_LINES
from casevac.precedence import DEADLINES, PRECEDENCE_RANK, PRECEDENCES, precedence_of
from casevac.requests import access, casualties, events, lookups
from casevac.requests.models import ACTIVE_STATUSES, FINAL_STATUSES, CasevacRequest, Casualty, StatusChange
from casevac.requests.schemas import LINE_FORMS, RequestIn, RequestPatch, RequestSummaryOut
from core import audit, clock
from core.db import commit_keeping_loaded
from core.errors import conflict, invalid
from core.pagination import Key, encode_cursor, paginate, where_given
from core.records import update_where

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
        existing = lookups.by_client_ref(session, user_id=actor.id, client_ref=client_ref)
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
    for name in LATER_LINES:
        setattr(request, name, body.get(name))
    session.add(request)
    request.history.append(StatusChange(status="requested", from_status=None, at=now, by=actor.id))
    for position, casualty_body in enumerate(body.get("casualties") or []):
        request.casualties.append(casualties.new_casualty(casualty_body, position=position, actor=actor, now=now))
    try:
        session.flush()
        audit.record(
            session,
            actor,
            "casevac.file",
            request,
            detail={"precedence": precedence, "patients": request.patients_total, "location_source": location.source},
        )
        events.publish(session, "casevac.created", request)
        # The new request and everything its view shows are in memory, as written: answer from them
        # instead of reloading (four queries: the largest part of a filing's cost, and the first live
        # alert waits for the filing to commit).
        commit_keeping_loaded(session)
    except IntegrityError:
        # Another submission with the same client_ref won the race: answer as a retry of it.
        session.rollback()
        existing = lookups.by_client_ref(session, user_id=actor.id, client_ref=client_ref) if client_ref else None
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


# ---- the queue ------------------------------------------------------------------------------------


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
    query = where_given(query, (CasevacRequest.status, status), (CasevacRequest.precedence, precedence))
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


def load_filing(body: dict) -> dict:
    """A 9-line body as POST /casevac/requests validates it (marshmallow.ValidationError naming the fields), for
    intake paths that do not come through HTTP (field links)."""
    return RequestIn().load(body)


def load_changes(body: dict) -> dict:
    """Changes to a request as PATCH /casevac/requests/{id} validates them."""
    return RequestPatch().load(body)


def summary_fields() -> tuple[str, ...]:
    """The fields of a queue row (RequestSummaryOut), for projections such as ?fields=."""
    return tuple(RequestSummaryOut().fields)


def append_remark(session, *, request_id: str, note: str) -> CasevacRequest:
    """A line added to the request's remarks by the system (no editor: after dispatch too), told live as a
    change of the remarks; in the caller's transaction."""
    update_where(
        session,
        CasevacRequest,
        CasevacRequest.id == request_id,
        remarks=func.coalesce(CasevacRequest.remarks + "\n", "") + note,
        updated_at=clock.now(),
    )
    request = session.get(CasevacRequest, request_id)
    session.refresh(request)
    events.publish(session, "casevac.updated", request, change="lines", fields=["remarks"])
    return request


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


# ---- correcting lines ---------------------------------------------------------------------------


def update_request(session, *, actor, request_id: str, changes: dict) -> CasevacRequest:
    """Complete or correct lines 1-9 and remarks: the filing medic before dispatch, or a coordinator while
    the request is active. A corrected line 1 or line 3 of a dispatched request is told to its asset
    (CORRECTION_HOOKS: casevac.links.corrections)."""
    request = access.lock(session, actor=actor, request_id=request_id)
    access.ensure_may_edit(actor, request)
    if not changes:
        return request
    changes = dict(changes)
    location_body, patients = changes.pop("location", None), changes.pop("patients", None)
    total = sum(patients.values()) if patients is not None else request.patients_total
    litter = changes.get("litter", request.litter)
    ambulatory = changes.get("ambulatory", request.ambulatory)
    if patients is not None and total < 1:
        raise invalid("patients", "at least one patient")
    if litter + ambulatory != total:
        # DOMAIN.md section 1, consistency rule: line 5 must keep equalling line 3.
        if patients is not None and "litter" not in changes and "ambulatory" not in changes:
            raise invalid(
                "patients",
                f"the sum of patients ({total}) must equal litter + ambulatory ({litter + ambulatory}): "
                "send litter and ambulatory with it",
            )
        field = "litter" if "litter" in changes else "ambulatory"
        raise invalid(field, f"litter + ambulatory ({litter + ambulatory}) must equal the patients of line 3 ({total})")
    if patients is not None and len(request.casualties) > total:
        raise invalid("patients", f"fewer patients ({total}) than the request's casualties ({len(request.casualties)})")
    if "equipment" in changes:
        changes = {**changes, "equipment": _equipment(changes["equipment"] or [])}
    for wartime, peacetime, line in LINE_FORMS:
        # With what the request already holds: a peacetime line over a wartime one needs the other cleared.
        if changes.get(wartime, getattr(request, wartime)) and changes.get(peacetime, getattr(request, peacetime)):
            field = peacetime if peacetime in changes else wartime
            raise invalid(
                field,
                f"line {line} already holds {wartime if field == peacetime else peacetime}: "
                f"send it as null in the same change to switch",
            )
    changed = sorted(name for name, value in changes.items() if getattr(request, name) != value)
    for name in changed:
        setattr(request, name, changes[name])
    if location_body is not None:
        location = _location(location_body)
        text = (location_body.get("mgrs") or location_body.get("text")) if location.source != "latlon" else None
        before = (request.lat, request.lon, request.location_source, request.location_text)
        if before != (location.lat, location.lon, location.source, text):
            request.lat, request.lon, request.mgrs = location.lat, location.lon, location.mgrs
            request.location_source, request.location_text = location.source, text
            changed.append("location")
    if patients is not None and patients != request.patients:
        for name in PRECEDENCES:
            setattr(request, f"patients_{name}", patients.get(name, 0))
        precedence = precedence_of(patients)
        if precedence != request.precedence:
            request.precedence, request.precedence_rank = precedence, PRECEDENCE_RANK[precedence]
            request.deadline = request.created_at + DEADLINES[precedence] if DEADLINES[precedence] else None
            changed.append("precedence")
        changed.append("patients")
    if not changed:
        return request
    changed.sort()
    request.updated_at = clock.now()
    audit.record(session, actor, "casevac.update", request, detail={"fields": changed})
    events.publish(session, "casevac.updated", request, change="lines", fields=changed)
    for hook in list(CORRECTION_HOOKS):
        hook(session, request, changed)
    session.commit()
    return access.reload(session, request)


# Called as hook(session, request, fields changed) in the transaction of a PATCH (casevac.links tells the
# assigned asset of a corrected pickup site or patient count).
CORRECTION_HOOKS: list = []


def export_request(session, *, actor, request_id: str) -> CasevacRequest:
    """A request leaving the system as an interoperability document (Cursor-on-Target): audited."""
    request = access.get_visible(session, actor=actor, request_id=request_id)
    audit.record(session, actor, "casevac.export.cot", request)
    commit_keeping_loaded(session)  # the audit row changes nothing the export shows
    return request


def parse_near(text: str) -> tuple[float, float]:
    parts = str(text).split(",")
    if len(parts) != 2:
        raise invalid("near", "lat,lon in decimal degrees, e.g. 4.36,18.55", location="query")
    try:
        location = geo.from_latlon(parts[0].strip(), parts[1].strip())
    except geo.LocationError as exc:
        raise invalid("near", exc.message, location="query") from None
    return location.lat, location.lon
