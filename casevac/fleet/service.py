"""Assets, their live positions and track, device tokens, facilities (plain functions, explicit session).

Live positions: with Redis (`REDIS_URL`), a report is one Lua call that keeps the latest fix per asset (a GEO
set for the map and a hash with the details, newer fixes only) and appends the fix to a stream; the sweeper
task `fleet.track_flush` moves the stream into the `asset_positions` table (the track) and the assets' rows.
Without Redis the report goes to the database directly. Either way every process reads the same positions.

A report carries one fix or a batch (a tracker that buffered fixes over a poor link): one Lua call, or one
database transaction, for the whole batch. With Redis, a device report is authorised in that same Lua call
against the device-token hashes kept in Redis (written there before the database on issue and revocation),
so a report reads nothing from the database and a revocation holds at once in every process.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import socket
from datetime import datetime, timedelta, timezone

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import String, bindparam, cast, insert, select, update
from sqlalchemy.exc import IntegrityError

from casevac.fleet.models import MAX_FIXES_PER_REPORT, Asset, AssetPosition, Facility
from core import audit, clock
from core.auth import ensure_mission
from core.errors import ApiError, conflict, forbidden, invalid, not_found
from core.models import User
from core.pagination import Key, paginate
from realtime import audience, events

log = logging.getLogger(__name__)

DEVICE_SCHEME = "Device"
# A fix stamped further ahead than this is a clock fault on the device, not a position.
FUTURE_TOLERANCE = timedelta(minutes=5)
# Redis GEO sets only index latitudes within the Web-Mercator band; fixes beyond stay in the hash.
REDIS_GEO_MAX_LAT = 85.05112878
TRACK_STREAM_MAXLEN = 1_000_000
TRACK_GROUP = "track-flush"


# Ids are UUID strings; anything else (NUL bytes, control characters, huge strings) is unknown without
# asking the database, which would refuse some of them with an error (PostgreSQL and NUL).
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def is_id(value) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


# ---------------------------------------------------------------- views of rows (what the API returns)

def asset_view(asset: Asset, position: dict | None = None) -> dict:
    """AssetOut for one asset; `position` is the live fix (Redis) when known, else the row's."""
    if position is None and asset.position_reported_at is not None:
        position = _row_fix(asset)
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


def facility_view(facility: Facility) -> dict:
    return {
        "id": facility.id, "mission_id": facility.mission_id, "name": facility.name, "level": facility.level,
        "capabilities": list(facility.capabilities or []), "status": facility.status,
        "beds_available": facility.beds_available, "helipad": facility.helipad,
        "location": {"lat": facility.lat, "lon": facility.lon},
        "created_at": facility.created_at, "updated_at": facility.updated_at,
    }


def _event_data(view: dict) -> dict:
    return json.loads(json.dumps(view, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))


def publish_asset(session, asset: Asset, *, redis=None, prefix: str = "") -> dict:
    """asset.updated to the mission's coordinators, in the caller's transaction (API.md, Real-time); returns
    the asset's view (AssetOut), which the event summarises."""
    position = latest_positions(session, mission_id=asset.mission_id, assets=[asset], redis=redis,
                                prefix=prefix).get(asset.id)
    view = asset_view(asset, position)
    events.publish(session, "asset.updated", audience.coordinators(asset.mission_id), _event_data(view),
                   mission_id=asset.mission_id)
    return view


# ---------------------------------------------------------------- assets

def _has_capability(column, capability: str):
    # The JSON list as text on both databases ('["hoist", "night"]'): portable, and the values are a closed set.
    return cast(column, String).like(f'%"{capability}"%')


def list_assets(session, *, user: User, limit: int, cursor: str | None, status: str | None = None,
                kind: str | None = None, capability: str | None = None, redis=None, prefix: str = "") -> dict:
    query = select(Asset).where(Asset.mission_id == user.mission_id)
    if status:
        query = query.where(Asset.status == status)
    if kind:
        query = query.where(Asset.kind == kind)
    if capability:
        query = query.where(_has_capability(Asset.capabilities, capability))
    page = paginate(query, [Key(Asset.callsign), Key(Asset.id)], limit=limit, cursor=cursor, session=session)
    positions = latest_positions(session, mission_id=user.mission_id, assets=page["items"], redis=redis,
                                 prefix=prefix)
    return {"items": [asset_view(a, positions.get(a.id)) for a in page["items"]],
            "next_cursor": page["next_cursor"]}


def get_asset(session, *, user: User, asset_id: str) -> Asset:
    asset = session.get(Asset, asset_id) if is_id(asset_id) else None
    if asset is None:
        raise not_found("asset")
    ensure_mission(user, asset.mission_id, "asset")
    return asset


def get_asset_view(session, *, user: User, asset_id: str, redis=None, prefix: str = "") -> dict:
    asset = get_asset(session, user=user, asset_id=asset_id)
    position = latest_positions(session, mission_id=asset.mission_id, assets=[asset], redis=redis,
                                prefix=prefix).get(asset.id)
    return asset_view(asset, position)


def _apply_asset_fields(asset: Asset, fields: dict) -> None:
    base = fields.pop("base", None)
    if base is not None:
        asset.base_name, asset.base_lat, asset.base_lon = base.get("name"), base["lat"], base["lon"]
    for name, value in fields.items():
        setattr(asset, name, value)


def create_asset(session, *, user: User, redis=None, prefix: str = "", **fields) -> dict:
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
    view = publish_asset(session, asset, redis=redis, prefix=prefix)
    session.commit()
    return view


def update_asset(session, *, user: User, asset_id: str, redis=None, prefix: str = "", **fields) -> dict:
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
    view = publish_asset(session, asset, redis=redis, prefix=prefix)
    session.commit()
    return view  # built in the transaction, from what it wrote: no second read of the asset and its position


# ---------------------------------------------------------------- device tokens

def _token_hash(token: str) -> str:
    # The token is 256 random bits: a fast hash is enough (no dictionary to guess from), and 2,000
    # reports a second can afford it, unlike a password hash.
    return hashlib.sha256(token.encode()).hexdigest()


def issue_device_token(session, *, user: User, asset_id: str, redis=None, prefix: str = "") -> dict:
    """A new per-asset secret (the previous one stops working); only its hash is stored."""
    asset = get_asset(session, user=user, asset_id=asset_id)
    token = f"{asset.id}.{secrets.token_urlsafe(32)}"
    _set_credential(redis, prefix, asset.id, _token_hash(token))
    asset.device_token_hash = _token_hash(token)
    audit.record(session, actor=user, action="asset.device_token.issue", subject_type="asset",
                 subject_id=asset.id, mission_id=asset.mission_id)
    session.commit()
    return {"asset_id": asset.id, "device_token": token}


def revoke_device_token(session, *, user: User, asset_id: str, redis=None, prefix: str = "") -> None:
    asset = get_asset(session, user=user, asset_id=asset_id)
    _set_credential(redis, prefix, asset.id, None)
    asset.device_token_hash = None
    audit.record(session, actor=user, action="asset.device_token.revoke", subject_type="asset",
                 subject_id=asset.id, mission_id=asset.mission_id)
    session.commit()


def _bad_device_token() -> ApiError:
    return ApiError(401, "invalid device token")


def device_asset(session, *, token: str, asset_id: str) -> Asset:
    """The asset a device token belongs to (checked against the database): 401 for a bad token, 403 for
    another asset's URL."""
    owner_id, _, secret = token.partition(".")
    owner = session.get(Asset, owner_id) if secret and is_id(owner_id) else None
    if owner is None or owner.device_token_hash is None or not hmac.compare_digest(
            owner.device_token_hash, _token_hash(token)):
        raise _bad_device_token()
    if owner.id != asset_id:
        raise forbidden("a device token reports its own asset's position only")
    return owner


# With Redis, the device-token hashes live in one Redis hash as well (asset id -> SHA-256 hex, or "-" for
# none): the report's Lua call checks the token there. Issue and revocation write Redis first and the
# database second, so a failure between the two can only refuse a token, never keep a revoked one working.
# A hash missing from Redis (a restart without persistence) is copied from the database with HSETNX, which
# never overwrites: a report that read the row just before a revocation cannot bring the old hash back.
NO_CREDENTIAL = "-"


def _credentials_key(prefix: str) -> str:
    return f"{prefix}:fleet:device-tokens"


def _live_store_unavailable(exc: Exception) -> ApiError:
    # A tracker keeps its buffer and retries on 503; an unreachable Redis is not the caller's fault.
    log.warning("the live position store (Redis) failed: %s", exc)
    return ApiError(503, "the live position store is unavailable; retry shortly")


def _set_credential(redis, prefix: str, asset_id: str, token_hash: str | None) -> None:
    """Before the database commit: if Redis cannot take it, nothing changes (503)."""
    if redis is None:
        return
    try:
        redis.hset(_credentials_key(prefix), asset_id, token_hash or NO_CREDENTIAL)
    except RedisError as exc:
        raise _live_store_unavailable(exc) from None


def _prime_credential(redis, prefix: str, asset: Asset) -> None:
    try:
        redis.hsetnx(_credentials_key(prefix), asset.id, asset.device_token_hash or NO_CREDENTIAL)
    except RedisError as exc:
        raise _live_store_unavailable(exc) from None


# Asset id -> mission id, per process. An asset never changes mission and is never deleted (no endpoint
# does either), so this cannot go stale; it only saves a database read per device report.
_asset_missions: dict[str, str] = {}
_ASSET_MISSIONS_MAX = 100_000


def _remember_mission(asset: Asset) -> str:
    if len(_asset_missions) >= _ASSET_MISSIONS_MAX:
        _asset_missions.clear()
    _asset_missions[asset.id] = asset.mission_id
    return asset.mission_id


def asset_mission(session, *, user: User, asset_id: str) -> str:
    """The mission of an asset `user` may see (404 otherwise, as get_asset), from the per-process memory when
    known: a coordinator's position report needs no asset read."""
    mission_id = _asset_missions.get(asset_id)
    if mission_id is None:
        return _remember_mission(get_asset(session, user=user, asset_id=asset_id))
    ensure_mission(user, mission_id, "asset")
    return mission_id


def report_as_device(session, *, token: str, asset_id: str, fixes: list[dict], batch: bool, redis=None,
                     prefix: str = "") -> dict:
    """Fixes reported by the asset's own device (`Authorization: Device <token>`): 401 for a bad or revoked
    token, 403 for another asset's URL. With Redis, one Lua call checks the token and stores the fixes."""
    owner_id, _, secret = token.partition(".")
    if not secret or not is_id(owner_id):
        raise _bad_device_token()
    if redis is None or owner_id != asset_id:
        asset = device_asset(session, token=token, asset_id=asset_id)
        return report_positions(session, asset_id=asset.id, mission_id=asset.mission_id, source="device",
                                fixes=fixes, batch=batch, redis=redis, prefix=prefix)
    mission_id = _asset_missions.get(asset_id)
    if mission_id is None:
        asset = session.get(Asset, asset_id)
        if asset is None:
            raise _bad_device_token()
        _prime_credential(redis, prefix, asset)
        mission_id = _remember_mission(asset)
    report = dict(session=session, asset_id=asset_id, mission_id=mission_id, source="device", fixes=fixes,
                  batch=batch, redis=redis, prefix=prefix, credential=_token_hash(token))
    try:
        return report_positions(**report)
    except _UnknownCredential:
        _prime_credential(redis, prefix, session.get(Asset, asset_id))
    try:
        return report_positions(**report)
    except _UnknownCredential as exc:  # primed a moment ago: only a flush of Redis in between gets here
        raise _live_store_unavailable(exc) from None


class _UnknownCredential(Exception):
    """Redis holds no device-token hash for the asset (yet): copy it from the database and try again."""


# ---------------------------------------------------------------- positions

def _keys(prefix: str, mission_id: str) -> tuple[str, str]:
    return f"{prefix}:fleet:{mission_id}:geo", f"{prefix}:fleet:{mission_id}:pos"


def _stream(prefix: str) -> str:
    return f"{prefix}:fleet:track"


# Keep the newest fix per asset (reports arrive out of order over field links) and append every fix of the
# report to the track stream, in one round trip. With a credential (a device report), first check it against
# the device-token hash stored for the asset: -1 none stored (prime it from the database and retry), -2 wrong
# or revoked. Otherwise 1 when the report's newest fix became the asset's latest, 0 when a newer one was in.
# Comparing SHA-256 digests (not the secrets) leaks nothing useful through timing.
# KEYS: geo, pos, stream, credentials. ARGV: asset, mission, credential ('' when already authorised), newest t
# (micros), newest json, newest lon, newest lat, in_geo (1 when the latitude can be indexed), stream maxlen,
# received (micros), source; then 5 per fix: lat, lon, heading, speed, t.
_REPORT_LUA = """
if ARGV[3] ~= '' then
  local stored = redis.call('HGET', KEYS[4], ARGV[1])
  if not stored then return -1 end
  if stored ~= ARGV[3] then return -2 end
end
local newest = 1
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and tonumber(cjson.decode(current)['t']) > tonumber(ARGV[4]) then newest = 0 end
if newest == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
  if ARGV[8] == '1' then redis.call('GEOADD', KEYS[1], ARGV[6], ARGV[7], ARGV[1])
  else redis.call('ZREM', KEYS[1], ARGV[1]) end
end
for i = 12, #ARGV, 5 do
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[9], '*', 'a', ARGV[1], 'm', ARGV[2], 'lat', ARGV[i],
             'lon', ARGV[i + 1], 'h', ARGV[i + 2], 's', ARGV[i + 3], 't', ARGV[i + 4], 'r', ARGV[10],
             'src', ARGV[11])
end
return newest
"""
_scripts: dict = {}


def _micros(at: datetime) -> int:
    return int(clock.as_utc(at).timestamp() * 1_000_000)


def single_fix_view(result: dict, fixes: list[dict]) -> dict:
    """PositionAccepted (the single-fix form of API.md) from report_positions' result for one fix."""
    return {"asset_id": result["asset_id"], **fixes[0], "latest": result["latest"]}


def report_positions(session, *, asset_id: str, mission_id: str, source: str, fixes: list[dict], batch: bool,
                     redis=None, prefix: str = "", credential: str | None = None) -> dict:
    """Accept a report of one or more fixes for an asset (authorised by the caller, or, with Redis, by the
    device-token hash `credential` checked in the same Lua call). `batch`: the body was {"fixes": [...]}
    (errors name `fixes.<index>.<field>`). Fixes without `reported_at` are stamped on receipt (completed in
    place). Returns {asset_id, accepted, latest, latest_index}: `latest_index` is the
    fix that became the asset's latest position (the newest of the report, the later one on a tie), or None
    when a newer fix was already in."""
    if not 1 <= len(fixes) <= MAX_FIXES_PER_REPORT:
        raise invalid("fixes", f"Length must be between 1 and {MAX_FIXES_PER_REPORT}.")
    received = clock.now()
    for index, fix in enumerate(fixes):
        at = fix.get("reported_at")
        fix["reported_at"] = at = clock.as_utc(at) if at is not None else received
        if at > received + FUTURE_TOLERANCE:
            raise invalid(f"fixes.{index}.reported_at" if batch else "reported_at",
                          "in the future: check the device clock")
    newest = max(range(len(fixes)), key=lambda i: (fixes[i]["reported_at"], i))
    if redis is not None:
        # No database write: a read transaction (the asset or the user) ends with the request.
        latest = _report_to_redis(redis, prefix, mission_id, asset_id, source, fixes, newest, received, credential)
    else:
        session.execute(insert(AssetPosition), [
            {"asset_id": asset_id, "mission_id": mission_id, "source": source, "received_at": received, **fix}
            for fix in fixes])
        top = fixes[newest]
        latest = bool(session.execute(
            update(Asset).where(Asset.id == asset_id, (Asset.position_reported_at.is_(None))
                                | (Asset.position_reported_at <= top["reported_at"]))
            .values(lat=top["lat"], lon=top["lon"], heading=top["heading"], speed_kmh=top["speed_kmh"],
                    position_reported_at=top["reported_at"])
            .execution_options(synchronize_session=False)
        ).rowcount)
        session.commit()
    if latest:
        # One live event per report: the newest fix (a batch's older fixes are history, not news).
        events.emit_volatile("asset.position", audience.coordinators(mission_id),
                             {"asset_id": asset_id, **_event_data(fixes[newest])}, coalesce_key=asset_id)
    return {"asset_id": asset_id, "accepted": len(fixes), "latest": latest,
            "latest_index": newest if latest else None}


def _optional(value) -> str:
    return "" if value is None else repr(value)


def _report_to_redis(redis, prefix, mission_id, asset_id, source, fixes, newest, received, credential) -> bool:
    script = _scripts.get(id(redis))
    if script is None:
        script = _scripts[id(redis)] = redis.register_script(_REPORT_LUA)
    top = fixes[newest]
    t = _micros(top["reported_at"])
    latest_json = json.dumps({"lat": top["lat"], "lon": top["lon"], "heading": top["heading"],
                              "speed_kmh": top["speed_kmh"], "t": t}, separators=(",", ":"))
    args = [asset_id, mission_id, credential or "", str(t), latest_json, repr(top["lon"]), repr(top["lat"]),
            "1" if abs(top["lat"]) <= REDIS_GEO_MAX_LAT else "0", str(TRACK_STREAM_MAXLEN),
            str(_micros(received)), source]
    for fix in fixes:
        args += [repr(fix["lat"]), repr(fix["lon"]), _optional(fix["heading"]), _optional(fix["speed_kmh"]),
                 str(_micros(fix["reported_at"]))]
    geo, pos = _keys(prefix, mission_id)
    try:
        outcome = script(keys=[geo, pos, _stream(prefix), _credentials_key(prefix)], args=args)
    except RedisError as exc:
        raise _live_store_unavailable(exc) from None
    if outcome == -1:
        raise _UnknownCredential()
    if outcome == -2:
        raise _bad_device_token()
    return outcome == 1


def _from_micros(value) -> datetime:
    return datetime.fromtimestamp(int(value) / 1_000_000, tz=timezone.utc)


def latest_positions(session, *, mission_id: str, assets: list[Asset], redis=None, prefix: str = "") -> dict:
    """asset id -> latest fix; Redis when configured (falling back to the rows if it is unreachable)."""
    if redis is not None and assets:
        try:
            values = redis.hmget(_keys(prefix, mission_id)[1], [a.id for a in assets])
        except Exception:  # noqa: BLE001 - a Redis outage degrades to the last fixes flushed to the database
            log.warning("reading live positions from Redis failed; using the database", exc_info=True)
        else:
            found = {}
            for asset, raw in zip(assets, values):
                if raw is not None:
                    fix = json.loads(raw)
                    fix["reported_at"] = _from_micros(fix.pop("t"))
                    found[asset.id] = fix
                elif asset.position_reported_at is not None:
                    found[asset.id] = _row_fix(asset)
            return found
    return {a.id: _row_fix(a) for a in assets if a.position_reported_at is not None}


def _row_fix(asset: Asset) -> dict:
    return {"lat": asset.lat, "lon": asset.lon, "heading": asset.heading, "speed_kmh": asset.speed_kmh,
            "reported_at": asset.position_reported_at}


def flush_track(session, *, redis, prefix: str, batch: int = 2000) -> int:
    """Move reported fixes from the Redis stream into the track table and the assets' rows.

    A consumer group hands each entry to one process; an entry is acknowledged after its commit, and
    `stream_id` is unique, so a redelivery after a crash is stored once. Entries a dead consumer left
    pending for over a minute are claimed.
    """
    stream = _stream(prefix)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    try:
        redis.xgroup_create(stream, TRACK_GROUP, id="0", mkstream=True)
    except Exception as exc:  # noqa: BLE001 - BUSYGROUP: it exists
        if "BUSYGROUP" not in str(exc):
            raise
    moved = 0
    while True:
        claimed = redis.xautoclaim(stream, TRACK_GROUP, consumer, min_idle_time=60_000, start_id="0-0",
                                   count=batch)[1]
        fresh = redis.xreadgroup(TRACK_GROUP, consumer, {stream: ">"}, count=batch)
        entries = list(claimed) + [e for _, items in fresh for e in items]
        if not entries:
            return moved
        _store_entries(session, entries)
        ids = [entry_id for entry_id, _ in entries]
        redis.xack(stream, TRACK_GROUP, *ids)
        redis.xdel(stream, *ids)
        moved += len(entries)
        if len(entries) < batch:
            return moved


def _decode(value):
    return value.decode() if isinstance(value, bytes) else value


def _store_entries(session, entries) -> None:
    rows, newest = [], {}
    for entry_id, raw in entries:
        f = {_decode(k): _decode(v) for k, v in raw.items()}
        row = {"stream_id": _decode(entry_id), "asset_id": f["a"], "mission_id": f["m"], "lat": float(f["lat"]),
               "lon": float(f["lon"]), "heading": float(f["h"]) if f["h"] else None,
               "speed_kmh": float(f["s"]) if f["s"] else None, "reported_at": _from_micros(f["t"]),
               "received_at": _from_micros(f["r"]), "source": f["src"]}
        rows.append(row)
        if row["asset_id"] not in newest or newest[row["asset_id"]]["reported_at"] <= row["reported_at"]:
            newest[row["asset_id"]] = row
    known = set(session.execute(select(Asset.id).where(Asset.id.in_(list(newest)))).scalars())
    rows = [r for r in rows if r["asset_id"] in known]  # an asset deleted meanwhile: drop its fixes
    # executemany with one statement each: compiled once and cached, however many fixes the batch holds.
    if rows:
        session.execute(_insert_ignoring_duplicates(session), rows)
    updates = [{"asset": asset_id, "at": row["reported_at"], "lat": row["lat"], "lon": row["lon"],
                "heading": row["heading"], "speed_kmh": row["speed_kmh"]}
               for asset_id, row in newest.items() if asset_id in known]
    if updates:
        assets = Asset.__table__
        session.execute(
            update(assets).where(assets.c.id == bindparam("asset"), (assets.c.position_reported_at.is_(None))
                                 | (assets.c.position_reported_at <= bindparam("at")))
            .values(lat=bindparam("lat"), lon=bindparam("lon"), heading=bindparam("heading"),
                    speed_kmh=bindparam("speed_kmh"), position_reported_at=bindparam("at")), updates)
    session.commit()


def _insert_ignoring_duplicates(session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(AssetPosition).on_conflict_do_nothing(index_elements=["stream_id"])


def live_store() -> dict:
    """The Redis client and key prefix for live positions (redis None: the database holds them), as the
    keyword arguments of the functions here."""
    return {"redis": current_app.extensions.get("redis"), "prefix": current_app.extensions["settings"].REDIS_PREFIX}


def track_flush_task(session, *, now, settings) -> int:
    """Sweeper task: drain the Redis track stream (nothing to do without Redis)."""
    live = live_store()
    if live["redis"] is None:
        return 0
    return flush_track(session, **live)


def track(session, *, user: User, asset_id: str, limit: int, cursor: str | None, since: datetime | None,
          redis=None, prefix: str = "") -> dict:
    """The asset's track, oldest first (fixes still in Redis are flushed first, so none is missing)."""
    asset = get_asset(session, user=user, asset_id=asset_id)
    if redis is not None:
        try:
            flush_track(session, redis=redis, prefix=prefix)
        except Exception:  # noqa: BLE001 - the track so far is still worth showing
            session.rollback()
            log.warning("flushing the track stream failed", exc_info=True)
    query = select(AssetPosition).where(AssetPosition.asset_id == asset.id)
    if since is not None:
        query = query.where(AssetPosition.reported_at >= since)
    page = paginate(query, [Key(AssetPosition.reported_at), Key(AssetPosition.id)], limit=limit, cursor=cursor,
                    session=session)
    return {"asset_id": asset.id, **page}


# ---------------------------------------------------------------- facilities

def list_facilities(session, *, user: User, limit: int, cursor: str | None, status: str | None = None,
                    level: str | None = None, capability: str | None = None) -> dict:
    query = select(Facility).where(Facility.mission_id == user.mission_id)
    if status:
        query = query.where(Facility.status == status)
    if level:
        query = query.where(Facility.level == level)
    if capability:
        query = query.where(_has_capability(Facility.capabilities, capability))
    page = paginate(query, [Key(Facility.name), Key(Facility.id)], limit=limit, cursor=cursor, session=session)
    return {"items": [facility_view(f) for f in page["items"]], "next_cursor": page["next_cursor"]}


def get_facility(session, *, user: User, facility_id: str) -> Facility:
    facility = session.get(Facility, facility_id) if is_id(facility_id) else None
    if facility is None:
        raise not_found("facility")
    ensure_mission(user, facility.mission_id, "facility")
    return facility


def _apply_facility_fields(facility: Facility, fields: dict) -> None:
    location = fields.pop("location", None)
    if location is not None:
        facility.lat, facility.lon = location["lat"], location["lon"]
    for name, value in fields.items():
        setattr(facility, name, value)


def _save_facility(session, *, user: User, facility: Facility, action: str, changed: list[str]) -> dict:
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise conflict(f"a facility named {facility.name} already exists in this mission") from None
    audit.record(session, actor=user, action=action, subject_type="facility", subject_id=facility.id,
                 mission_id=facility.mission_id, detail={"fields": changed} if changed else None)
    view = facility_view(facility)
    # Every availability change is an event (issue 4): coordinators' boards update live.
    events.publish(session, "facility.updated", audience.coordinators(facility.mission_id), _event_data(view),
                   mission_id=facility.mission_id)
    session.commit()
    return view


def create_facility(session, *, user: User, **fields) -> dict:
    facility = Facility(mission_id=user.mission_id, created_at=clock.now(), updated_at=clock.now())
    _apply_facility_fields(facility, dict(fields))
    session.add(facility)
    return _save_facility(session, user=user, facility=facility, action="facility.create", changed=[])


def update_facility(session, *, user: User, facility_id: str, **fields) -> dict:
    facility = get_facility(session, user=user, facility_id=facility_id)
    changed = sorted(fields)
    _apply_facility_fields(facility, dict(fields))
    facility.updated_at = clock.now()
    return _save_facility(session, user=user, facility=facility, action="facility.update", changed=changed)


def _register_sweeper_task() -> None:
    from realtime import sweeper

    sweeper.register("fleet.track_flush", track_flush_task)


_register_sweeper_task()
