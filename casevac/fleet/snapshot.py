"""What dispatch ranks of a mission's fleet: every asset at its latest position and every facility, as plain
tuples. Kept in memory per process while the fleet's version holds (casevac.fleet.versions: every committed
fleet write is in the next snapshot, in any process): one small query per read while nothing changes, where
the rows are a thousand; live fixes in Redis are read on every call."""

from __future__ import annotations

from typing import NamedTuple, Sequence

from sqlalchemy import case, select

from casevac.fleet import positions, versions
from casevac.fleet.models import Asset, Facility
from casevac.fleet.positions import DATABASE_ONLY, LiveStore
from core.db import as_frozen_set


class AssetRow(NamedTuple):
    """What dispatch ranks of an asset, at its latest known position: a plain tuple, not an ORM object (a
    thousand assets load several times faster) nor SQLAlchemy's Row (whose attributes read by name cost about
    0.3 us each). The fields of casevac.dispatch.states.AssetState, in its order."""

    id: str
    callsign: str
    kind: str
    capabilities: frozenset
    litter_capacity: int
    ambulatory_capacity: int
    cruise_speed_kmh: float
    readiness_minutes: int
    status: str
    position: tuple[float, float]


class FacilityRow(NamedTuple):
    """What dispatch ranks of a facility: the fields of casevac.dispatch.states.FacilityState, in its order."""

    id: str
    name: str
    level: str
    capabilities: frozenset
    status: str
    beds_available: int
    helipad: bool
    location: tuple[float, float]


_ASSETS = Asset.__table__.c
_HAS_FIX = _ASSETS.position_reported_at.is_not(None)
# Core columns (no ORM compilation); capabilities parsed once per distinct set (core.db.as_frozen_set); the
# position the last fix stored in the row (the database mode, or flushed from Redis), else the base.
_ASSET_ROWS = select(
    _ASSETS.id,
    _ASSETS.callsign,
    _ASSETS.kind,
    as_frozen_set(_ASSETS.capabilities),
    _ASSETS.litter_capacity,
    _ASSETS.ambulatory_capacity,
    _ASSETS.cruise_speed_kmh,
    _ASSETS.readiness_minutes,
    _ASSETS.status,
    case((_HAS_FIX, _ASSETS.lat), else_=_ASSETS.base_lat),
    case((_HAS_FIX, _ASSETS.lon), else_=_ASSETS.base_lon),
)
_FACILITIES = Facility.__table__.c
_FACILITY_ROWS = select(
    _FACILITIES.id,
    _FACILITIES.name,
    _FACILITIES.level,
    as_frozen_set(_FACILITIES.capabilities),
    _FACILITIES.status,
    _FACILITIES.beds_available,
    _FACILITIES.helipad,
    _FACILITIES.lat,
    _FACILITIES.lon,
)


def fleet(
    session,
    *,
    mission_id: str,
    store: LiveStore = DATABASE_ONLY,
    asset_row: type = AssetRow,
    facility_row: type = FacilityRow,
) -> tuple[Sequence, Sequence]:
    """(assets, facilities) of the mission, each asset at its latest position (the live fix in Redis, else the
    last one stored, else its base). Built as `asset_row` and `facility_row` (NamedTuples with AssetRow's and
    FacilityRow's fields: dispatch passes its AssetState and FacilityState, so nothing is converted per call).
    Shared by every caller: never change them."""
    assets, facilities = versions.cached(
        session,
        ("fleet", asset_row, facility_row),
        mission_id,
        lambda: _rows(session, mission_id, asset_row, facility_row),
    )
    if store.redis is None:
        return assets, facilities
    live = positions.live_points(store, mission_id=mission_id, asset_ids=[asset[0] for asset in assets])
    if live:
        assets = tuple(asset if asset[0] not in live else asset_row(*asset[:-1], live[asset[0]]) for asset in assets)
    return assets, facilities


def _rows(session, mission_id: str, asset_row: type, facility_row: type) -> tuple[tuple, tuple]:
    assets = tuple(
        asset_row(id_, callsign, kind, caps, litter, ambulatory, speed, ready, status, (lat, lon))
        for id_, callsign, kind, caps, litter, ambulatory, speed, ready, status, lat, lon in session.execute(
            _ASSET_ROWS.where(_ASSETS.mission_id == mission_id)
        )
    )
    facilities = tuple(
        facility_row(id_, name, level, caps, status, beds, helipad, (lat, lon))
        for id_, name, level, caps, status, beds, helipad, lat, lon in session.execute(
            _FACILITY_ROWS.where(_FACILITIES.mission_id == mission_id)
        )
    )
    return assets, facilities
