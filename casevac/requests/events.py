"""The events a CASEVAC request raises (API.md, Real-time): casevac.created, casevac.updated and
casevac.escalated, written into the caller's transaction through realtime.events.publish, with one payload
per audience (issue 16: events carry no field their audience does not need):

- the mission's coordinators (and admins, for an escalation): what the queue and the map need, coordinates
  to 5 decimals (about 1 m), no medical free text, absent fields are null (event_data);
- the filing medic: the id, the status, the asset once one is assigned, the pickup site when a
  coordinator moved it (filer_data): what the field app (/field) shows.
"""

from __future__ import annotations

from casevac.requests.models import CasevacRequest
from realtime import audience
from realtime import events as realtime_events

# Decimal places of coordinates in events: 1e-5 degree is 1.1 m at the equator.
COORDINATE_PLACES = 5


def event_data(request: CasevacRequest, **extra) -> dict:
    """The coordinators' payload: what a coordinator's queue and map need; nulls left out."""
    data = {
        "id": request.id,
        "mission_id": request.mission_id,
        "status": request.status,
        "precedence": request.precedence,
        "lat": round(request.lat, COORDINATE_PLACES),
        "lon": round(request.lon, COORDINATE_PLACES),
        "patients": request.patients_total,
        "equipment": list(request.equipment or []),
        "lines_complete": request.lines_complete,
        "deadline": request.deadline.isoformat() if request.deadline else None,
        "asset_id": request.asset_id,
        "facility_id": request.facility_id,
        "updated_at": request.updated_at.isoformat(),
    }
    data.update(extra)
    return {key: value for key, value in data.items() if value is not None}


def filer_data(request: CasevacRequest, *, fields: list[str] | None = None, **_extra) -> dict:
    """The filing medic's payload: the state of their request, the asset once assigned (the field app reads
    its position for the ETA), and the pickup site when it was corrected (`fields` names location)."""
    data = {"id": request.id, "status": request.status}
    if request.asset_id:
        data["asset_id"] = request.asset_id
    if fields and "location" in fields:
        data.update(lat=round(request.lat, COORDINATE_PLACES), lon=round(request.lon, COORDINATE_PLACES))
    return data


def publish(session, type_: str, request: CasevacRequest, *, coordinators: list[str] | None = None, **extra) -> None:
    """To the mission's coordinators (or the given rooms) with event_data, to the filing medic with filer_data."""
    rooms = coordinators if coordinators is not None else audience.coordinators(request.mission_id)
    realtime_events.publish(
        session,
        type_,
        rooms,
        event_data(request, **extra),
        mission_id=request.mission_id,
        views=[([audience.user(request.filed_by)], filer_data(request, **extra))],
    )
