"""Medical facilities: level, capabilities, status and beds (what dispatch chooses a destination from)."""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from casevac.fleet.models import Facility, has_capability
from casevac.fleet import positions
from core import audit, clock
from core.auth import ensure_mission
from core.db import is_id
from core.errors import conflict, not_found
from core.models import User
from core.pagination import Key, paginate
from realtime import audience, events

log = logging.getLogger(__name__)


def facility_view(facility: Facility) -> dict:
    return {
        "id": facility.id, "mission_id": facility.mission_id, "name": facility.name, "level": facility.level,
        "capabilities": list(facility.capabilities or []), "status": facility.status,
        "beds_available": facility.beds_available, "helipad": facility.helipad,
        "location": {"lat": facility.lat, "lon": facility.lon},
        "created_at": facility.created_at, "updated_at": facility.updated_at,
    }


def list_facilities(session, *, user: User, limit: int, cursor: str | None, status: str | None = None,
                    level: str | None = None, capability: str | None = None) -> dict:
    query = select(Facility).where(Facility.mission_id == user.mission_id)
    if status:
        query = query.where(Facility.status == status)
    if level:
        query = query.where(Facility.level == level)
    if capability:
        query = query.where(has_capability(Facility.capabilities, capability))
    page = paginate(query, [Key(Facility.name), Key(Facility.id)], limit=limit, cursor=cursor, session=session)
    return {"items": [facility_view(f) for f in page["items"]], "next_cursor": page["next_cursor"]}


def get_facility(session, *, user: User, facility_id: str) -> Facility:
    facility = session.get(Facility, facility_id) if is_id(facility_id) else None
    if facility is None:
        raise not_found("facility")
    ensure_mission(user, facility.mission_id, "facility")
    return facility


def _apply_facility_fields(facility: Facility, fields: dict) -> None:
    location = fields.pop("location", None)
    if location is not None:
        facility.lat, facility.lon = location["lat"], location["lon"]
    for name, value in fields.items():
        setattr(facility, name, value)


def _save_facility(session, *, user: User, facility: Facility, action: str, changed: list[str]) -> dict:
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise conflict(f"a facility named {facility.name} already exists in this mission") from None
    audit.record(session, actor=user, action=action, subject_type="facility", subject_id=facility.id,
                 mission_id=facility.mission_id, detail={"fields": changed} if changed else None)
    view = facility_view(facility)
    # Every availability change is an event (issue 4): coordinators' boards update live.
    events.publish(session, "facility.updated", audience.coordinators(facility.mission_id), positions.json_ready(view),
                   mission_id=facility.mission_id)
    session.commit()
    return view


def create_facility(session, *, user: User, **fields) -> dict:
    facility = Facility(mission_id=user.mission_id, created_at=clock.now(), updated_at=clock.now())
    _apply_facility_fields(facility, dict(fields))
    session.add(facility)
    return _save_facility(session, user=user, facility=facility, action="facility.create", changed=[])


def update_facility(session, *, user: User, facility_id: str, **fields) -> dict:
    facility = get_facility(session, user=user, facility_id=facility_id)
    changed = sorted(fields)
    _apply_facility_fields(facility, dict(fields))
    facility.updated_at = clock.now()
    return _save_facility(session, user=user, facility=facility, action="facility.update", changed=changed)
