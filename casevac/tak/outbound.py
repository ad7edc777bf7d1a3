"""What the backend says to TAK: the CoT events a logged event turns into (the request's marker, GeoChat
to the filing medic on a status move, asset and facility markers), the whole picture after a
(re)connection, and the live positions the gateway polls (asset.position is not logged)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from casevac.dispatch import rules as dispatch_rules
from casevac.dispatch import service as dispatch
from casevac.fleet import assets as fleet_assets
from casevac.fleet import facilities as fleet_facilities
from casevac.fleet import positions as fleet_positions
from casevac.fleet.positions import LiveStore
from casevac.policy import FINAL_STATUSES
from casevac.requests import cot, lookups
from casevac.tak.codec import writing
from casevac.tak.context import Context
from casevac.tak.models import TakRequestLink
from core import clock
from realtime.models import Event

OUTBOUND_TYPES = ("casevac.created", "casevac.updated", "casevac.escalated", "asset.updated", "facility.updated")
# Status moves the filing medic hears about on GeoChat.
CHAT_STATUSES = ("acknowledged", "dispatched", "at_pickup", "delivered", "cancelled")
MARKER_STALE = timedelta(days=1)


def pending(session, ctx: Context, since: int, limit: int = 200) -> tuple[list[dict], int]:
    """Events of the mission after `since` that TAK hears about, and the seq to continue from (the log's
    watermark when nothing relevant is left: other missions' events are skipped)."""
    watermark = session.execute(select(func.coalesce(func.max(Event.seq), 0))).scalar_one()
    rows = (
        session.execute(
            select(Event.seq, Event.type, Event.at, Event.data)
            .where(Event.seq > since, Event.mission_id == ctx.mission_id, Event.type.in_(OUTBOUND_TYPES))
            .order_by(Event.seq)
            .limit(limit)
        )
        .mappings()
        .all()
    )
    session.rollback()
    if len(rows) == limit:
        return [dict(r) for r in rows], rows[-1]["seq"]
    return [dict(r) for r in rows], max([since, watermark] + [r["seq"] for r in rows])


def events_for(session, ctx: Context, row: dict, *, settings, live: LiveStore, marker: bool = True) -> list[bytes]:
    """The CoT events one logged event turns into. `marker` False: a later event of the same batch re-sends
    the request's marker anyway (it shows the current state), so only its GeoChat is due here."""
    data, type_ = row["data"] or {}, row["type"]
    if type_.startswith("casevac."):
        if not marker and not (type_ == "casevac.updated" and data.get("change") == "status"):
            return []
        request = lookups.with_casualties(session, data.get("id"))
        if request is None:
            return []
        out = [request_marker(session, ctx, request, settings=settings, live=live)] if marker else []
        if type_ == "casevac.updated" and data.get("change") == "status" and data.get("status") in CHAT_STATUSES:
            message = status_chat(
                session, ctx, request, status=data["status"], at=clock.as_utc(row["at"]), settings=settings, live=live
            )
            if message:
                out.append(message)
        return out
    if type_ == "asset.updated":
        asset = fleet_assets.find_asset(session, data.get("id"))
        return [asset_marker(session, ctx, asset, live=live)] if asset else []
    if type_ == "facility.updated":
        facility = fleet_facilities.find_facility(session, data.get("id"))
        return [facility_marker(facility)] if facility else []
    return []


def marker_uid(session, request) -> tuple[str, TakRequestLink | None]:
    """A request filed from TAK keeps its ATAK uid (the medic's own marker is updated); others medevac-<id>."""
    link = session.get(TakRequestLink, request.id)
    return (link.event_uid if link else f"medevac-{request.id}"), link


def request_marker(session, ctx: Context, request, *, settings, live: LiveStore) -> bytes:
    uid, link = marker_uid(session, request)
    time = clock.as_utc(request.updated_at)
    if request.status in FINAL_STATUSES:
        return writing.delete(uid, time=time)
    return writing.medevac(
        cot.lines(request),
        uid=uid,
        time=time,
        stale=max(time, clock.now()) + MARKER_STALE,
        status_text=status_text(session, request, settings=settings, live=live),
        sender_uid=link.sender_uid if link else None,
    )


def _eta(session, request, *, settings, live: LiveStore) -> tuple:
    if not request.asset_id:
        return None, None
    asset = fleet_assets.find_asset(session, request.asset_id)
    facility = fleet_facilities.find_facility(session, request.facility_id)
    if asset is None or facility is None or request.status != "dispatched":
        return asset, None
    position = fleet_positions.latest_positions(session, mission_id=request.mission_id, assets=[asset], store=live).get(
        asset.id
    )
    option = dispatch_rules.evaluate(
        dispatch.need_from_request(request),
        dispatch.asset_state(asset, position),
        dispatch.facility_state(facility),
        now=clock.now(),
        road_factor=settings.ROAD_FACTOR,
    )
    return asset, clock.as_utc(request.dispatched_at or clock.now()) + timedelta(minutes=option.pickup_eta_minutes)


def status_text(session, request, *, settings, live: LiveStore) -> str:
    parts = [
        f"{request.status.upper().replace('_', ' ')}: {request.precedence.replace('_', ' ')}, "
        f"{request.patients_total} patient(s)"
    ]
    asset, eta = _eta(session, request, settings=settings, live=live)
    if asset is not None:
        parts.append(f"asset {asset.callsign}")
    if eta is not None:
        parts.append(f"pickup ETA {eta:%H:%M}Z")
    if request.facility_id:
        facility = fleet_facilities.find_facility(session, request.facility_id)
        if facility is not None:
            parts.append(f"to {facility.name}")
    if request.deadline is not None and request.status not in FINAL_STATUSES:
        parts.append(f"deadline {clock.as_utc(request.deadline):%H:%M}Z")
    parts.append(f"request {request.id[:8]}")
    return "; ".join(parts)


def status_chat(
    session, ctx: Context, request, *, status: str, at: datetime, settings, live: LiveStore
) -> bytes | None:
    """GeoChat to the filing callsign: to the device that filed it from TAK, else to a TAK contact seen
    with the request's callsign; None when neither is known."""
    link = session.get(TakRequestLink, request.id)
    to_uid = link.sender_uid if link and link.sender_uid else ctx.contacts.get(request.callsign.lower())
    if not to_uid:
        return None
    to_callsign = link.sender_callsign if link and link.sender_callsign else request.callsign
    ref = request.id[:8]
    if status == "acknowledged":
        text = f"MEDEVAC {ref} ({request.callsign}) acknowledged by the coordination cell: an asset is being assigned."
    elif status == "dispatched":
        asset, eta = _eta(session, request, settings=settings, live=live)
        text = f"MEDEVAC {ref} dispatched: {asset.callsign if asset else 'asset'}"
        text += f", pickup ETA {eta:%H:%M}Z" if eta else ""
        facility = fleet_facilities.find_facility(session, request.facility_id)
        text += f", to {facility.name}." if facility else "."
    elif status == "at_pickup":
        asset = fleet_assets.find_asset(session, request.asset_id)
        text = f"MEDEVAC {ref}: {asset.callsign if asset else 'the asset'} is at the pickup site."
    elif status == "delivered":
        facility = fleet_facilities.find_facility(session, request.facility_id)
        text = f"MEDEVAC {ref}: patients delivered{' to ' + facility.name if facility else ''}."
    else:
        text = f"MEDEVAC {ref} cancelled."
    return writing.chat(
        sender_uid=ctx.uid,
        sender_callsign=ctx.callsign,
        to_uid=to_uid,
        to_callsign=to_callsign,
        message_id=f"medevac-{request.id}-{status}",
        text=text,
        time=at,
    )


def asset_marker(session, ctx: Context, asset, *, live: LiveStore) -> bytes:
    position = fleet_positions.latest_positions(session, mission_id=asset.mission_id, assets=[asset], store=live).get(
        asset.id
    )
    lat, lon = (position["lat"], position["lon"]) if position else (asset.base_lat, asset.base_lon)
    at = clock.as_utc(position["reported_at"]) if position else clock.as_utc(asset.updated_at)
    time = max(at, clock.as_utc(asset.updated_at))
    remarks = f"{asset.kind.replace('_', ' ')}, {asset.status}"
    if asset.tasked_request_id:
        remarks += f" (request {asset.tasked_request_id[:8]})"
    return writing.asset(
        uid=f"medevac-asset-{asset.id}",
        callsign=asset.callsign,
        kind=asset.kind,
        status=asset.status,
        lat=lat,
        lon=lon,
        time=time,
        stale=max(time, clock.now()) + MARKER_STALE,
        heading=position.get("heading") if position else None,
        speed_kmh=position.get("speed_kmh") if position else None,
        remarks=remarks,
    )


def facility_marker(facility) -> bytes:
    time = clock.as_utc(facility.updated_at)
    return writing.facility(
        uid=f"medevac-facility-{facility.id}",
        name=facility.name,
        level=facility.level,
        status=facility.status,
        beds=facility.beds_available,
        lat=facility.lat,
        lon=facility.lon,
        time=time,
        stale=max(time, clock.now()) + MARKER_STALE,
        capabilities=list(facility.capabilities or []),
    )


def picture(session, ctx: Context, *, settings, live: LiveStore) -> list[bytes]:
    """Everything current: active requests, assets, facilities (after every (re)connection)."""
    out = []
    requests = lookups.open_in_mission(session, mission_id=ctx.mission_id)
    out += [request_marker(session, ctx, r, settings=settings, live=live) for r in requests]
    assets = fleet_assets.in_mission(session, mission_id=ctx.mission_id)
    out += [asset_marker(session, ctx, a, live=live) for a in assets]
    facilities = fleet_facilities.in_mission(session, mission_id=ctx.mission_id)
    out += [facility_marker(f) for f in facilities]
    session.rollback()
    return out


def asset_positions(session, ctx: Context, *, live: LiveStore) -> dict:
    """asset id -> (reported_at, marker) for the live-position poll (asset.position is not logged)."""
    assets = fleet_assets.in_mission(session, mission_id=ctx.mission_id)
    positions = fleet_positions.latest_positions(session, mission_id=ctx.mission_id, assets=assets, store=live)
    out = {a.id: (positions[a.id]["reported_at"], a) for a in assets if a.id in positions}
    return out
