"""Medical facilities: level, capabilities, status and beds (what dispatch chooses a destination from)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from casevac.fleet.models import Facility, has_capability
from casevac.fleet.schemas import FacilityOut
from core import audit, clock
from core.db import commit_keeping_loaded
from core.models import User
from core.pagination import Key, paginate, where_given
from core.records import flush_or_conflict, get_in_mission
from realtime import audience, events

log = logging.getLogger(__name__)


# The facility.updated payload is FacilityOut, as the API answers (one schema for both).
_FACILITY_OUT = FacilityOut()


def list_facilities(
    session,
    *,
    actor: User,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    level: str | None = None,
    capability: str | None = None,
) -> dict:
    query = where_given(
        select(Facility).where(Facility.mission_id == actor.mission_id),
        (Facility.status, status),
        (Facility.level, level),
    )
    if capability:
        query = query.where(has_capability(Facility.capabilities, capability))
    page = paginate(query, [Key(Facility.name), Key(Facility.id)], limit=limit, cursor=cursor, session=session)
    return {"items": page["items"], "next_cursor": page["next_cursor"]}


def find_facility(session, facility_id) -> Facility | None:
    """The facility by id, no visibility check: for a caller that holds a visible record naming it."""
    return session.get(Facility, facility_id) if isinstance(facility_id, str) else None


def in_mission(session, *, mission_id: str) -> list[Facility]:
    return list(session.execute(select(Facility).where(Facility.mission_id == mission_id)).scalars())


def get_facility(session, *, actor: User, facility_id: str) -> Facility:
    return get_in_mission(session, Facility, facility_id, actor=actor, what="facility")


def _apply_facility_fields(facility: Facility, fields: dict) -> None:
    location = fields.pop("location", None)
    if location is not None:
        facility.lat, facility.lon = location["lat"], location["lon"]
    for name, value in fields.items():
        setattr(facility, name, value)


def _save_facility(session, *, actor: User, facility: Facility, action: str, changed: list[str]) -> dict:
    flush_or_conflict(session, f"a facility named {facility.name} already exists in this mission")
    audit.record(session, actor, action, facility, detail={"fields": changed} if changed else None)
    # Every availability change is an event (issue 4): coordinators' boards update live.
    events.publish(
        session,
        "facility.updated",
        audience.coordinators(facility.mission_id),
        _FACILITY_OUT.dump(facility),
        mission_id=facility.mission_id,
    )
    commit_keeping_loaded(session)
    return facility


def create_facility(session, *, actor: User, **fields) -> dict:
    facility = Facility(mission_id=actor.mission_id, created_at=clock.now(), updated_at=clock.now())
    _apply_facility_fields(facility, dict(fields))
    session.add(facility)
    return _save_facility(session, actor=actor, facility=facility, action="facility.create", changed=[])


def update_facility(session, *, actor: User, facility_id: str, **fields) -> dict:
    facility = get_facility(session, actor=actor, facility_id=facility_id)
    changed = sorted(fields)
    _apply_facility_fields(facility, dict(fields))
    facility.updated_at = clock.now()
    return _save_facility(session, actor=actor, facility=facility, action="facility.update", changed=changed)
