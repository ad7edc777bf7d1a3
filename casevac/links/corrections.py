"""The assigned asset is told when line 1 or line 3 is corrected after dispatch (API.md, second wave: a
coordinator corrects the pickup site or the patient counts, and the crew must know).

`casevac.corrected` goes to the mission's coordinators (the console relays it to the crew by radio) and the
room `asset:<asset id>` for crew clients: `{"id", "asset_id", "fields", "lat", "lon", "mgrs", "patients",
"litter", "ambulatory", "precedence", "equipment"}` (no medical free text); to the filing medic `{"id",
"fields"}` and, when line 1 moved, `"lat", "lon"`."""

from __future__ import annotations

from casevac.requests.events import COORDINATE_PLACES
from realtime import audience, events

TOLD = {"location", "patients", "litter", "ambulatory", "precedence", "equipment"}
FLYING = ("dispatched", "at_pickup", "in_transit")


def asset_room(asset_id: str) -> str:
    return f"asset:{asset_id}"


def tell_asset(session, request, changed: list[str]) -> None:
    fields = sorted(TOLD.intersection(changed))
    if not fields or not request.asset_id or request.status not in FLYING:
        return
    data = {
        "id": request.id,
        "asset_id": request.asset_id,
        "fields": fields,
        "lat": round(request.lat, COORDINATE_PLACES),
        "lon": round(request.lon, COORDINATE_PLACES),
        "mgrs": request.mgrs,
        "patients": request.patients,
        "litter": request.litter,
        "ambulatory": request.ambulatory,
        "precedence": request.precedence,
        "equipment": list(request.equipment or []),
    }
    # The filing medic knows the patients: the pickup site is what they may need back (the field app's ETA).
    told_filer = {"id": request.id, "fields": fields}
    if "location" in fields:
        told_filer.update(lat=data["lat"], lon=data["lon"])
    rooms = audience.coordinators(request.mission_id) + [asset_room(request.asset_id)]
    events.publish(
        session,
        "casevac.corrected",
        rooms,
        data,
        mission_id=request.mission_id,
        views=[([audience.user(request.filed_by)], told_filer)],
    )
