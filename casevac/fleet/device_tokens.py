"""Device tokens: an asset's tracker reports its own positions with `Authorization: Device <token>`.

With Redis, the token hashes live in Redis as well and are checked inside the report's Lua call
(casevac.fleet.positions)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from redis.exceptions import RedisError

from casevac.fleet import assets, positions
from casevac.fleet.models import Asset
from casevac.fleet.positions import DATABASE_ONLY, LiveStore
from core import audit
from core.auth import ensure_mission
from core.db import is_id
from core.errors import forbidden
from core.models import User

log = logging.getLogger(__name__)


DEVICE_SCHEME = "Device"


def _token_hash(token: str) -> str:
    # The token is 256 random bits: a fast hash is enough (no dictionary to guess from), and 2,000
    # reports a second can afford it, unlike a password hash.
    return hashlib.sha256(token.encode()).hexdigest()


def issue_device_token(session, *, actor: User, asset_id: str, store: LiveStore = DATABASE_ONLY) -> dict:
    """A new per-asset secret (the previous one stops working); only its hash is stored."""
    redis, prefix = store.redis, store.prefix
    asset = assets.get_asset(session, actor=actor, asset_id=asset_id)
    token = f"{asset.id}.{secrets.token_urlsafe(32)}"
    _set_credential(redis, prefix, asset.id, _token_hash(token))
    asset.device_token_hash = _token_hash(token)
    audit.record(session, actor, "asset.device_token.issue", asset)
    session.commit()
    return {"asset_id": asset.id, "device_token": token}


def revoke_device_token(session, *, actor: User, asset_id: str, store: LiveStore = DATABASE_ONLY) -> None:
    redis, prefix = store.redis, store.prefix
    asset = assets.get_asset(session, actor=actor, asset_id=asset_id)
    _set_credential(redis, prefix, asset.id, None)
    asset.device_token_hash = None
    audit.record(session, actor, "asset.device_token.revoke", asset)
    session.commit()


def device_asset(session, *, token: str, asset_id: str) -> Asset:
    """The asset a device token belongs to (checked against the database): 401 for a bad token, 403 for
    another asset's URL."""
    owner_id, _, secret = token.partition(".")
    owner = session.get(Asset, owner_id) if secret and is_id(owner_id) else None
    if (
        owner is None
        or owner.device_token_hash is None
        or not hmac.compare_digest(owner.device_token_hash, _token_hash(token))
    ):
        raise positions.bad_device_token()
    if owner.id != asset_id:
        raise forbidden("a device token reports its own asset's position only")
    return owner


# With Redis, the device-token hashes live in one Redis hash as well (asset id -> SHA-256 hex, or "-" for
# none): the report's Lua call checks the token there. Issue and revocation write Redis first and the
# database second, so a failure between the two can only refuse a token, never keep a revoked one working.
# A hash missing from Redis (a restart without persistence) is copied from the database with HSETNX, which
# never overwrites: a report that read the row just before a revocation cannot bring the old hash back.


# With Redis, the device-token hashes live in one Redis hash as well (asset id -> SHA-256 hex, or "-" for
# none): the report's Lua call checks the token there. Issue and revocation write Redis first and the
# database second, so a failure between the two can only refuse a token, never keep a revoked one working.
# A hash missing from Redis (a restart without persistence) is copied from the database with HSETNX, which
# never overwrites: a report that read the row just before a revocation cannot bring the old hash back.
NO_CREDENTIAL = "-"


def _set_credential(redis, prefix: str, asset_id: str, token_hash: str | None) -> None:
    """Before the database commit: if Redis cannot take it, nothing changes (503)."""
    if redis is None:
        return
    try:
        redis.hset(positions.credentials_key(prefix), asset_id, token_hash or NO_CREDENTIAL)
    except RedisError as exc:
        raise positions.live_store_unavailable(exc) from None


def _prime_credential(redis, prefix: str, asset: Asset) -> None:
    try:
        redis.hsetnx(positions.credentials_key(prefix), asset.id, asset.device_token_hash or NO_CREDENTIAL)
    except RedisError as exc:
        raise positions.live_store_unavailable(exc) from None


# Asset id -> mission id, per process. An asset never changes mission and is never deleted (no endpoint
# does either), so this cannot go stale; it only saves a database read per device report.
_asset_missions: dict[str, str] = {}
_ASSET_MISSIONS_MAX = 100_000


def _remember_mission(asset: Asset) -> str:
    if len(_asset_missions) >= _ASSET_MISSIONS_MAX:
        _asset_missions.clear()
    _asset_missions[asset.id] = asset.mission_id
    return asset.mission_id


def asset_mission(session, *, actor: User, asset_id: str) -> str:
    """The mission of an asset `actor` may see (404 otherwise, as get_asset), from the per-process memory when
    known: a coordinator's position report needs no asset read."""
    mission_id = _asset_missions.get(asset_id)
    if mission_id is None:
        return _remember_mission(assets.get_asset(session, actor=actor, asset_id=asset_id))
    ensure_mission(actor, mission_id, "asset")
    return mission_id


def report_as_device(
    session, *, token: str, asset_id: str, fixes: list[dict], batch: bool, store: LiveStore = DATABASE_ONLY
) -> dict:
    """Fixes reported by the asset's own device (`Authorization: Device <token>`): 401 for a bad or revoked
    token, 403 for another asset's URL. With Redis, one Lua call checks the token and stores the fixes."""
    redis, prefix = store.redis, store.prefix
    owner_id, _, secret = token.partition(".")
    if not secret or not is_id(owner_id):
        raise positions.bad_device_token()
    if redis is None or owner_id != asset_id:
        asset = device_asset(session, token=token, asset_id=asset_id)
        return positions.report_positions(
            session,
            asset_id=asset.id,
            mission_id=asset.mission_id,
            source="device",
            fixes=fixes,
            batch=batch,
            store=store,
        )
    mission_id = _asset_missions.get(asset_id)
    if mission_id is None:
        asset = session.get(Asset, asset_id)
        if asset is None:
            raise positions.bad_device_token()
        _prime_credential(redis, prefix, asset)
        mission_id = _remember_mission(asset)
    report = dict(
        session=session,
        asset_id=asset_id,
        mission_id=mission_id,
        source="device",
        fixes=fixes,
        batch=batch,
        store=store,
        credential=_token_hash(token),
    )
    try:
        return positions.report_positions(**report)
    except positions.UnknownCredential:
        _prime_credential(redis, prefix, session.get(Asset, asset_id))
    try:
        return positions.report_positions(**report)
    except positions.UnknownCredential as exc:  # primed a moment ago: only a flush of Redis in between gets here
        raise positions.live_store_unavailable(exc) from None
