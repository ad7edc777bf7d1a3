"""The assigned asset is told when line 1 or line 3 is corrected after dispatch (API.md, second wave: a
coordinator corrects the pickup site or the patient counts, and the crew must know).

`casevac.corrected` goes to the mission's coordinators (the console relays it to the crew by radio), the
filing medic, and the room `asset:<asset id>` for crew clients: `{"id", "asset_id", "fields", "lat", "lon",
"mgrs", "patients", "litter", "ambulatory", "precedence", "equipment"}` (no medical free text)."""

from __future__ import annotations

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
        "lat": request.lat,
        "lon": request.lon,
        "mgrs": request.mgrs,
        "patients": request.patients,
        "litter": request.litter,
        "ambulatory": request.ambulatory,
        "precedence": request.precedence,
        "equipment": list(request.equipment or []),
    }
    rooms = audience.coordinators(request.mission_id) + [audience.user(request.filed_by), asset_room(request.asset_id)]
    events.publish(session, "casevac.corrected", rooms, data, mission_id=request.mission_id)
