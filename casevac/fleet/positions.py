"""Live positions and the track.

With Redis (`REDIS_URL`), a report is one Lua call that keeps the latest fix per asset (a GEO set for the map
and a hash with the details, newer fixes only) and appends the fix to a stream; the sweeper task
`fleet.track_flush` moves the stream into the `asset_positions` table (the track) and the assets' rows.
Without Redis the report goes to the database directly. Either way every process reads the same positions.

A report carries one fix or a batch (a tracker that buffered fixes over a poor link): one Lua call, or one
database transaction, for the whole batch. With Redis, a device report is authorised in that same Lua call
against the device-token hashes kept in Redis (casevac.fleet.device_tokens), so a report reads nothing from
the database and a revocation holds at once in every process.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import bindparam, insert, select, update

from casevac.fleet.models import MAX_FIXES_PER_REPORT, Asset, AssetPosition
from core import clock
from core.errors import ApiError, invalid
from core.records import update_where
from realtime import audience, events

log = logging.getLogger(__name__)


# A fix stamped further ahead than this is a clock fault on the device, not a position.
FUTURE_TOLERANCE = timedelta(minutes=5)
# Redis GEO sets only index latitudes within the Web-Mercator band; fixes beyond stay in the hash.
REDIS_GEO_MAX_LAT = 85.05112878
TRACK_STREAM_MAXLEN = 1_000_000
TRACK_GROUP = "track-flush"


def json_ready(view: dict) -> dict:
    return json.loads(json.dumps(view, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))


def bad_device_token() -> ApiError:
    return ApiError(401, "invalid device token")


@dataclass(frozen=True)
class LiveStore:
    """Where live positions are kept: Redis (`redis`, keys under `prefix`) or, with redis None, the database.
    One per app, bound by casevac.init_app; services take it as `store`."""

    redis: Any
    prefix: str


DATABASE_ONLY = LiveStore(None, "")
STORE = "live_store"


def credentials_key(prefix: str) -> str:
    return f"{prefix}:fleet:device-tokens"


def live_store_unavailable(exc: Exception) -> ApiError:
    # A tracker keeps its buffer and retries on 503; an unreachable Redis is not the caller's fault.
    log.warning("the live position store (Redis) failed: %s", exc)
    return ApiError(503, "the live position store is unavailable; retry shortly")


class UnknownCredential(Exception):  # noqa: N818 - a signal to retry, not an error the caller sees
    """Redis holds no device-token hash for the asset (yet): copy it from the database and try again."""


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


def report_positions(
    session,
    *,
    asset_id: str,
    mission_id: str,
    source: str,
    fixes: list[dict],
    batch: bool,
    store: LiveStore = DATABASE_ONLY,
    credential: str | None = None,
) -> dict:
    """Accept a report of one or more fixes for an asset (authorised by the caller, or, with Redis, by the
    device-token hash `credential` checked in the same Lua call). `batch`: the body was {"fixes": [...]}
    (errors name `fixes.<index>.<field>`). Fixes without `reported_at` are stamped on receipt (completed in
    place). Returns {asset_id, accepted, latest, latest_index}: `latest_index` is the
    fix that became the asset's latest position (the newest of the report, the later one on a tie), or None
    when a newer fix was already in."""
    redis, prefix = store.redis, store.prefix
    if not 1 <= len(fixes) <= MAX_FIXES_PER_REPORT:
        raise invalid("fixes", f"Length must be between 1 and {MAX_FIXES_PER_REPORT}.")
    received = clock.now()
    for index, fix in enumerate(fixes):
        at = fix.get("reported_at")
        fix["reported_at"] = at = clock.as_utc(at) if at is not None else received
        if at > received + FUTURE_TOLERANCE:
            raise invalid(
                f"fixes.{index}.reported_at" if batch else "reported_at", "in the future: check the device clock"
            )
    newest = max(range(len(fixes)), key=lambda i: (fixes[i]["reported_at"], i))
    if redis is not None:
        # No database write: a read transaction (the asset or the actor) ends with the request.
        latest = _report_to_redis(redis, prefix, mission_id, asset_id, source, fixes, newest, received, credential)
    else:
        session.execute(
            insert(AssetPosition),
            [
                {"asset_id": asset_id, "mission_id": mission_id, "source": source, "received_at": received, **fix}
                for fix in fixes
            ],
        )
        top = fixes[newest]
        latest = bool(
            update_where(
                session,
                Asset,
                Asset.id == asset_id,
                (Asset.position_reported_at.is_(None)) | (Asset.position_reported_at <= top["reported_at"]),
                lat=top["lat"],
                lon=top["lon"],
                heading=top["heading"],
                speed_kmh=top["speed_kmh"],
                position_reported_at=top["reported_at"],
            )
        )
        session.commit()
    if latest:
        # One live event per report: the newest fix (a batch's older fixes are history, not news).
        events.emit_volatile(
            "asset.position",
            audience.coordinators(mission_id),
            {"asset_id": asset_id, **json_ready(fixes[newest])},
            coalesce_key=asset_id,
        )
    return {"asset_id": asset_id, "accepted": len(fixes), "latest": latest, "latest_index": newest if latest else None}


def _optional(value) -> str:
    return "" if value is None else repr(value)


def _report_to_redis(redis, prefix, mission_id, asset_id, source, fixes, newest, received, credential) -> bool:
    script = _scripts.get(id(redis))
    if script is None:
        script = _scripts[id(redis)] = redis.register_script(_REPORT_LUA)
    top = fixes[newest]
    t = _micros(top["reported_at"])
    latest_json = json.dumps(
        {"lat": top["lat"], "lon": top["lon"], "heading": top["heading"], "speed_kmh": top["speed_kmh"], "t": t},
        separators=(",", ":"),
    )
    args = [
        asset_id,
        mission_id,
        credential or "",
        str(t),
        latest_json,
        repr(top["lon"]),
        repr(top["lat"]),
        "1" if abs(top["lat"]) <= REDIS_GEO_MAX_LAT else "0",
        str(TRACK_STREAM_MAXLEN),
        str(_micros(received)),
        source,
    ]
    for fix in fixes:
        args += [
            repr(fix["lat"]),
            repr(fix["lon"]),
            _optional(fix["heading"]),
            _optional(fix["speed_kmh"]),
            str(_micros(fix["reported_at"])),
        ]
    geo, pos = _keys(prefix, mission_id)
    try:
        outcome = script(keys=[geo, pos, _stream(prefix), credentials_key(prefix)], args=args)
    except RedisError as exc:
        raise live_store_unavailable(exc) from None
    if outcome == -1:
        raise UnknownCredential()
    if outcome == -2:
        raise bad_device_token()
    return outcome == 1


def _from_micros(value) -> datetime:
    return datetime.fromtimestamp(int(value) / 1_000_000, tz=timezone.utc)


def latest_positions(session, *, mission_id: str, assets: list[Asset], store: LiveStore = DATABASE_ONLY) -> dict:
    """asset id -> latest fix; Redis when configured (falling back to the rows if it is unreachable)."""
    redis, prefix = store.redis, store.prefix
    if redis is not None and assets:
        try:
            values = redis.hmget(_keys(prefix, mission_id)[1], [a.id for a in assets])
        except Exception:  # noqa: BLE001 - a Redis outage degrades to the last fixes flushed to the database
            log.warning("reading live positions from Redis failed; using the database", exc_info=True)
        else:
            found = {}
            for asset, raw in zip(assets, values, strict=False):
                if raw is not None:
                    fix = json.loads(raw)
                    fix["reported_at"] = _from_micros(fix.pop("t"))
                    found[asset.id] = fix
                elif asset.position_reported_at is not None:
                    found[asset.id] = row_fix(asset)
            return found
    return {a.id: row_fix(a) for a in assets if a.position_reported_at is not None}


def live_points(store: LiveStore, *, mission_id: str, asset_ids: list[str]) -> dict[str, tuple[float, float]]:
    """asset id -> (lat, lon) of its live fix in Redis, for the assets that have one (none without Redis, or
    when it is unreachable: the caller has the positions stored in the rows)."""
    if store.redis is None or not asset_ids:
        return {}
    try:
        values = store.redis.hmget(_keys(store.prefix, mission_id)[1], asset_ids)
    except Exception:  # noqa: BLE001 - a Redis outage degrades to the last fixes flushed to the database
        log.warning("reading live positions from Redis failed; using the database", exc_info=True)
        return {}
    return {asset_id: _point(raw) for asset_id, raw in zip(asset_ids, values, strict=True) if raw is not None}


def _point(raw) -> tuple[float, float]:
    # The hash holds what _report_to_redis wrote, {"lat":<repr>,"lon":<repr>,...}: the two numbers are read as
    # json.loads reads them (float of the same text), without parsing the rest (json.loads of a thousand fixes
    # costs about 3 ms); anything else goes through json.
    parts = raw.split(b",", 2) if isinstance(raw, bytes) else ()
    if len(parts) == 3 and parts[0].startswith(b'{"lat":') and parts[1].startswith(b'"lon":'):
        try:
            return float(parts[0][7:]), float(parts[1][6:])
        except ValueError:
            pass
    fix = json.loads(raw)
    return fix["lat"], fix["lon"]


def row_fix(asset: Asset) -> dict:
    return {
        "lat": asset.lat,
        "lon": asset.lon,
        "heading": asset.heading,
        "speed_kmh": asset.speed_kmh,
        "reported_at": asset.position_reported_at,
    }


def flush_track(session, *, store: LiveStore, batch: int = 2000) -> int:
    """Move reported fixes from the Redis stream into the track table and the assets' rows.

    A consumer group hands each entry to one process; an entry is acknowledged after its commit, and
    `stream_id` is unique, so a redelivery after a crash is stored once. Entries a dead consumer left
    pending for over a minute are claimed.
    """
    redis, stream = store.redis, _stream(store.prefix)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    try:
        redis.xgroup_create(stream, TRACK_GROUP, id="0", mkstream=True)
    except Exception as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    moved = 0
    while True:
        claimed = redis.xautoclaim(stream, TRACK_GROUP, consumer, min_idle_time=60_000, start_id="0-0", count=batch)[1]
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
        row = {
            "stream_id": _decode(entry_id),
            "asset_id": f["a"],
            "mission_id": f["m"],
            "lat": float(f["lat"]),
            "lon": float(f["lon"]),
            "heading": float(f["h"]) if f["h"] else None,
            "speed_kmh": float(f["s"]) if f["s"] else None,
            "reported_at": _from_micros(f["t"]),
            "received_at": _from_micros(f["r"]),
            "source": f["src"],
        }
        rows.append(row)
        if row["asset_id"] not in newest or newest[row["asset_id"]]["reported_at"] <= row["reported_at"]:
            newest[row["asset_id"]] = row
    known = set(session.execute(select(Asset.id).where(Asset.id.in_(list(newest)))).scalars())
    rows = [r for r in rows if r["asset_id"] in known]  # an asset deleted meanwhile: drop its fixes
    # executemany with one statement each: compiled once and cached, however many fixes the batch holds.
    if rows:
        session.execute(_insert_ignoring_duplicates(session), rows)
    updates = [
        {
            "asset": asset_id,
            "at": row["reported_at"],
            "lat": row["lat"],
            "lon": row["lon"],
            "heading": row["heading"],
            "speed_kmh": row["speed_kmh"],
        }
        for asset_id, row in newest.items()
        if asset_id in known
    ]
    if updates:
        assets = Asset.__table__
        session.execute(
            update(assets)
            .where(
                assets.c.id == bindparam("asset"),
                (assets.c.position_reported_at.is_(None)) | (assets.c.position_reported_at <= bindparam("at")),
            )
            .values(
                lat=bindparam("lat"),
                lon=bindparam("lon"),
                heading=bindparam("heading"),
                speed_kmh=bindparam("speed_kmh"),
                position_reported_at=bindparam("at"),
            ),
            updates,
        )
    session.commit()


def _insert_ignoring_duplicates(session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(AssetPosition).on_conflict_do_nothing(index_elements=["stream_id"])


def bind(app) -> LiveStore:
    """The app's live store (casevac.init_app): Redis when the app has a client, else the database."""
    store = app.extensions[STORE] = LiveStore(app.extensions.get("redis"), app.extensions["settings"].REDIS_PREFIX)
    return store


def live_store() -> LiveStore:
    """The current app's live store, for the entry points (views, sweeper task, hooks) to hand to services."""
    return current_app.extensions[STORE]


def track_flush_task(session, *, now, settings) -> int:
    """Sweeper task: drain the Redis track stream (nothing to do without Redis)."""
    store = live_store()
    if store.redis is None:
        return 0
    return flush_track(session, store=store)
