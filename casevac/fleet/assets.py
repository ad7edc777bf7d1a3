"""Evacuation assets: their views, the asset.updated event, create, read, update, and the track."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from casevac.fleet.models import Asset, AssetPosition, has_capability
from casevac.fleet import positions
from casevac.fleet.positions import DATABASE_ONLY, LiveStore
from core import audit, clock
from core.auth import ensure_mission
from core.db import is_id
from core.errors import conflict, invalid, not_found
from core.models import User
from core.pagination import Key, paginate
from realtime import audience, events

log = logging.getLogger(__name__)


def asset_view(asset: Asset, position: dict | None = None) -> dict:
    """AssetOut for one asset; `position` is the live fix (Redis) when known, else the row's."""
    if position is None and asset.position_reported_at is not None:
        position = positions.row_fix(asset)
    return {
        "id": asset.id, "mission_id": asset.mission_id, "callsign": asset.callsign, "kind": asset.kind,
        "capabilities": list(asset.capabilities or []), "litter_capacity": asset.litter_capacity,
        "ambulatory_capacity": asset.ambulatory_capacity, "cruise_speed_kmh": asset.cruise_speed_kmh,
        "readiness_minutes": asset.readiness_minutes, "status": asset.status,
        "tasked_request_id": asset.tasked_request_id,
        "base": {"name": asset.base_name, "lat": asset.base_lat, "lon": asset.base_lon},
        "position": position, "has_device_token": asset.device_token_hash is not None,
        "created_at": asset.created_at, "updated_at": asset.updated_at,
    }


def publish_asset(session, asset: Asset, *, store: LiveStore = DATABASE_ONLY) -> dict:
    """asset.updated to the mission's coordinators, in the caller's transaction (API.md, Real-time); returns
    the asset's view (AssetOut), which the event summarises."""
    position = positions.latest_positions(session, mission_id=asset.mission_id, assets=[asset], store=store).get(asset.id)
    view = asset_view(asset, position)
    events.publish(session, "asset.updated", audience.coordinators(asset.mission_id), positions.json_ready(view),
                   mission_id=asset.mission_id)
    return view


# ---------------------------------------------------------------- assets

def list_assets(session, *, user: User, limit: int, cursor: str | None, status: str | None = None,
                kind: str | None = None, capability: str | None = None, store: LiveStore = DATABASE_ONLY) -> dict:
    query = select(Asset).where(Asset.mission_id == user.mission_id)
    if status:
        query = query.where(Asset.status == status)
    if kind:
        query = query.where(Asset.kind == kind)
    if capability:
        query = query.where(has_capability(Asset.capabilities, capability))
    page = paginate(query, [Key(Asset.callsign), Key(Asset.id)], limit=limit, cursor=cursor, session=session)
    latest = positions.latest_positions(session, mission_id=user.mission_id, assets=page["items"], store=store)
    return {"items": [asset_view(a, latest.get(a.id)) for a in page["items"]],
            "next_cursor": page["next_cursor"]}


def get_asset(session, *, user: User, asset_id: str) -> Asset:
    asset = session.get(Asset, asset_id) if is_id(asset_id) else None
    if asset is None:
        raise not_found("asset")
    ensure_mission(user, asset.mission_id, "asset")
    return asset


def get_asset_view(session, *, user: User, asset_id: str, store: LiveStore = DATABASE_ONLY) -> dict:
    asset = get_asset(session, user=user, asset_id=asset_id)
    position = positions.latest_positions(session, mission_id=asset.mission_id, assets=[asset], store=store).get(asset.id)
    return asset_view(asset, position)


def _apply_asset_fields(asset: Asset, fields: dict) -> None:
    base = fields.pop("base", None)
    if base is not None:
        asset.base_name, asset.base_lat, asset.base_lon = base.get("name"), base["lat"], base["lon"]
    for name, value in fields.items():
        setattr(asset, name, value)


def create_asset(session, *, user: User, store: LiveStore = DATABASE_ONLY, **fields) -> dict:
    asset = Asset(mission_id=user.mission_id, created_at=clock.now(), updated_at=clock.now())
    _apply_asset_fields(asset, dict(fields))
    session.add(asset)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise conflict(f"an asset with callsign {fields['callsign']} already exists in this mission") from None
    audit.record(session, actor=user, action="asset.create", subject_type="asset", subject_id=asset.id,
                 mission_id=asset.mission_id)
    view = publish_asset(session, asset, store=store)
    session.commit()
    return view


def update_asset(session, *, user: User, asset_id: str, store: LiveStore = DATABASE_ONLY, **fields) -> dict:
    asset = get_asset(session, user=user, asset_id=asset_id)
    status = fields.pop("status", None)
    if status is not None and status != asset.status:
        # Conditional: a dispatch committing meanwhile must not be overwritten (the database decides).
        done = session.execute(
            update(Asset).where(Asset.id == asset.id, Asset.status != "tasked")
            .values(status=status, updated_at=clock.now())
            .execution_options(synchronize_session=False)
        ).rowcount
        if not done:
            session.rollback()
            raise conflict("the asset is tasked: its status changes when its request is delivered or cancelled",
                           allowed=[], tasked_request_id=session.get(Asset, asset_id).tasked_request_id)
        session.refresh(asset)
    if "litter_capacity" in fields or "ambulatory_capacity" in fields:
        litter = fields.get("litter_capacity", asset.litter_capacity)
        ambulatory = fields.get("ambulatory_capacity", asset.ambulatory_capacity)
        if litter + ambulatory < 1:
            session.rollback()
            raise invalid("litter_capacity", "an evacuation asset carries at least one patient")
    _apply_asset_fields(asset, fields)
    asset.updated_at = clock.now()
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise conflict(f"an asset with callsign {fields.get('callsign')} already exists in this mission") from None
    changed = sorted(set(fields) | ({"status"} if status is not None else set()))
    audit.record(session, actor=user, action="asset.update", subject_type="asset", subject_id=asset.id,
                 mission_id=asset.mission_id, detail={"fields": changed})
    view = publish_asset(session, asset, store=store)
    session.commit()
    return view  # built in the transaction, from what it wrote: no second read of the asset and its position


def track(session, *, user: User, asset_id: str, limit: int, cursor: str | None, since: datetime | None,
          store: LiveStore = DATABASE_ONLY) -> dict:
    """The asset's track, oldest first (fixes still in Redis are flushed first, so none is missing)."""
    asset = get_asset(session, user=user, asset_id=asset_id)
    if store.redis is not None:
        try:
            positions.flush_track(session, store=store)
        except Exception:  # noqa: BLE001 - the track so far is still worth showing
            session.rollback()
            log.warning("flushing the track stream failed", exc_info=True)
    query = select(AssetPosition).where(AssetPosition.asset_id == asset.id)
    if since is not None:
        query = query.where(AssetPosition.reported_at >= since)
    page = paginate(query, [Key(AssetPosition.reported_at), Key(AssetPosition.id)], limit=limit, cursor=cursor,
                    session=session)
    return {"asset_id": asset.id, **page}
