"""The events a CASEVAC request raises (API.md, Real-time): casevac.created, casevac.updated and
casevac.escalated, written into the caller's transaction through realtime.events.publish."""

from __future__ import annotations

from casevac.requests.models import CasevacRequest
from realtime import audience
from realtime import events as realtime_events


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


def publish(session, type_: str, request: CasevacRequest, *, coordinators: list[str] | None = None, **extra) -> None:
    """To the mission's coordinators (or the given rooms) and the filing medic."""
    rooms = coordinators if coordinators is not None else audience.coordinators(request.mission_id)
    realtime_events.publish(
        session,
        type_,
        rooms + [audience.user(request.filed_by)],
        event_data(request, **extra),
        mission_id=request.mission_id,
    )
