"""Evacuation assets: their views, the asset.updated event, create, read, update, and the track."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select

from casevac.fleet import positions
from casevac.fleet.models import Asset, AssetPosition, has_capability
from casevac.fleet.positions import DATABASE_ONLY, LiveStore
from casevac.fleet.schemas import AssetOut
from core import audit, clock
from core.db import commit_keeping_loaded
from core.errors import conflict, invalid
from core.models import User
from core.pagination import Key, paginate, where_given
from core.records import flush_or_conflict, get_in_mission, update_where
from realtime import audience, events

log = logging.getLogger(__name__)


# The asset.updated payload is AssetOut, as the API answers (one schema for both).
_ASSET_OUT = AssetOut()


def asset_view(asset: Asset, position: dict | None = None) -> Asset:
    """The asset ready for AssetOut: `position` is the live fix (Redis) when known, else the row's."""
    if position is None and asset.position_reported_at is not None:
        position = positions.row_fix(asset)
    asset.position = position
    return asset


def publish_asset(session, asset: Asset, *, store: LiveStore = DATABASE_ONLY, position: dict | None = None) -> Asset:
    """asset.updated to the mission's coordinators, in the caller's transaction (API.md, Real-time); returns
    the asset's view (AssetOut), which the event summarises. `position`: the live fix, when the caller has it."""
    if position is None:
        position = latest_position(session, asset, store=store)
    view = asset_view(asset, position)
    events.publish(
        session,
        "asset.updated",
        audience.coordinators(asset.mission_id),
        _ASSET_OUT.dump(view),
        mission_id=asset.mission_id,
    )
    return view


# ---------------------------------------------------------------- assets


def list_assets(
    session,
    *,
    actor: User,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    kind: str | None = None,
    capability: str | None = None,
    store: LiveStore = DATABASE_ONLY,
) -> dict:
    query = where_given(
        select(Asset).where(Asset.mission_id == actor.mission_id), (Asset.status, status), (Asset.kind, kind)
    )
    if capability:
        query = query.where(has_capability(Asset.capabilities, capability))
    page = paginate(query, [Key(Asset.callsign), Key(Asset.id)], limit=limit, cursor=cursor, session=session)
    latest = positions.latest_positions(session, mission_id=actor.mission_id, assets=page["items"], store=store)
    return {"items": [asset_view(a, latest.get(a.id)) for a in page["items"]], "next_cursor": page["next_cursor"]}


def find_asset(session, asset_id) -> Asset | None:
    """The asset by id, no visibility check: for a caller that already holds a visible record naming it (the
    asset assigned to a request, an event's asset id); None for no id or no such asset."""
    return session.get(Asset, asset_id) if isinstance(asset_id, str) else None


def id_by_callsign(session, *, mission_id: str, callsign: str) -> str | None:
    """The mission's asset with this callsign (case-insensitive), for a tracker known by callsign (TAK)."""
    return session.execute(
        select(Asset.id).where(Asset.mission_id == mission_id, func.lower(Asset.callsign) == callsign.lower())
    ).scalar_one_or_none()


def in_mission(session, *, mission_id: str) -> list[Asset]:
    return list(session.execute(select(Asset).where(Asset.mission_id == mission_id)).scalars())


def get_asset(session, *, actor: User, asset_id: str) -> Asset:
    return get_in_mission(session, Asset, asset_id, actor=actor, what="asset")


def latest_position(session, asset: Asset, *, store: LiveStore = DATABASE_ONLY) -> dict | None:
    return positions.latest_positions(session, mission_id=asset.mission_id, assets=[asset], store=store).get(asset.id)


def task(session, *, asset_id: str, request_id: str, now) -> bool:
    """available -> tasked for this request, by a conditional update (of racing dispatches one wins); in the
    caller's transaction."""
    return (
        update_where(
            session,
            Asset,
            Asset.id == asset_id,
            Asset.status == "available",
            status="tasked",
            tasked_request_id=request_id,
            updated_at=now,
        )
        == 1
    )


def free(session, *, asset_id: str, request_id: str, store: LiveStore = DATABASE_ONLY) -> bool:
    """tasked -> available, only if the asset still serves this request; publishes asset.updated."""
    freed = update_where(
        session,
        Asset,
        Asset.id == asset_id,
        Asset.status == "tasked",
        Asset.tasked_request_id == request_id,
        status="available",
        tasked_request_id=None,
        updated_at=clock.now(),
    )
    if freed:
        publish_asset(session, session.get(Asset, asset_id, populate_existing=True), store=store)
    return bool(freed)


def get_asset_view(session, *, actor: User, asset_id: str, store: LiveStore = DATABASE_ONLY) -> dict:
    asset = get_asset(session, actor=actor, asset_id=asset_id)
    position = positions.latest_positions(session, mission_id=asset.mission_id, assets=[asset], store=store).get(
        asset.id
    )
    return asset_view(asset, position)


def _apply_asset_fields(asset: Asset, fields: dict) -> None:
    base = fields.pop("base", None)
    if base is not None:
        asset.base_name, asset.base_lat, asset.base_lon = base.get("name"), base["lat"], base["lon"]
    for name, value in fields.items():
        setattr(asset, name, value)


def create_asset(session, *, actor: User, store: LiveStore = DATABASE_ONLY, **fields) -> dict:
    asset = Asset(mission_id=actor.mission_id, created_at=clock.now(), updated_at=clock.now())
    _apply_asset_fields(asset, dict(fields))
    session.add(asset)
    flush_or_conflict(session, f"an asset with callsign {fields['callsign']} already exists in this mission")
    audit.record(session, actor, "asset.create", asset)
    view = publish_asset(session, asset, store=store)
    commit_keeping_loaded(session)
    return view


def update_asset(session, *, actor: User, asset_id: str, store: LiveStore = DATABASE_ONLY, **fields) -> dict:
    asset = get_asset(session, actor=actor, asset_id=asset_id)
    status = fields.pop("status", None)
    if status is not None and status != asset.status:
        # Conditional: a dispatch committing meanwhile must not be overwritten (the database decides).
        done = update_where(
            session, Asset, Asset.id == asset.id, Asset.status != "tasked", status=status, updated_at=clock.now()
        )
        if not done:
            session.rollback()
            raise conflict(
                "the asset is tasked: its status changes when its request is delivered or cancelled",
                allowed=[],
                tasked_request_id=session.get(Asset, asset_id).tasked_request_id,
            )
        session.refresh(asset)
    if "litter_capacity" in fields or "ambulatory_capacity" in fields:
        litter = fields.get("litter_capacity", asset.litter_capacity)
        ambulatory = fields.get("ambulatory_capacity", asset.ambulatory_capacity)
        if litter + ambulatory < 1:
            session.rollback()
            raise invalid("litter_capacity", "an evacuation asset carries at least one patient")
    _apply_asset_fields(asset, fields)
    asset.updated_at = clock.now()
    flush_or_conflict(session, f"an asset with callsign {fields.get('callsign')} already exists in this mission")
    changed = sorted(set(fields) | ({"status"} if status is not None else set()))
    audit.record(session, actor, "asset.update", asset, detail={"fields": changed})
    view = publish_asset(session, asset, store=store)
    commit_keeping_loaded(session)
    return view  # built in the transaction, from what it wrote: no second read of the asset and its position


def track(
    session,
    *,
    actor: User,
    asset_id: str,
    limit: int,
    cursor: str | None,
    since: datetime | None,
    store: LiveStore = DATABASE_ONLY,
) -> dict:
    """The asset's track, oldest first (fixes still in Redis are flushed first, so none is missing)."""
    asset = get_asset(session, actor=actor, asset_id=asset_id)
    if store.redis is not None:
        try:
            positions.flush_track(session, store=store)
        except Exception:  # noqa: BLE001 - the track so far is still worth showing
            session.rollback()
            log.warning("flushing the track stream failed", exc_info=True)
    query = select(AssetPosition).where(AssetPosition.asset_id == asset.id)
    if since is not None:
        query = query.where(AssetPosition.reported_at >= since)
    page = paginate(
        query, [Key(AssetPosition.reported_at), Key(AssetPosition.id)], limit=limit, cursor=cursor, session=session
    )
    return {"asset_id": asset.id, **page}
