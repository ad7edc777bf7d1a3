"""Who is in a consultation's call: its members, its waiting room, the users admitted once (readmitted at once
when they reconnect). telemed.scheduling.video keeps the call's rules; this module keeps the state.

With Redis (`REDIS_URL`), the state is shared by every server process: one hash per call
(`<prefix>:call:<consultation id>`, fields `m:<sid>` member, `w:<sid>` waiting, `u:<user id>` admitted) and one
key per connection (`<prefix>:call-sid:<sid>` = its consultation id). Each change is one Lua script, so two
processes never interleave a join, an admission or a leave. Entries expire: a join sets the keys to expire
at the end of the join token's window (plus GRACE_SECONDS), so a process that crashed without its
connections' disconnects leaves no ghost beyond the consultation's time; a disconnect removes the
connection's entries at once. Without Redis (one process), the same state is a dict in the process.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

GRACE_SECONDS = 15 * 60


@dataclass
class Snapshot:
    """A call's state at one instant: sid -> person for members and the waiting room, admitted user ids."""

    members: dict[str, dict] = field(default_factory=dict)
    waiting: dict[str, dict] = field(default_factory=dict)
    admitted: set[str] = field(default_factory=set)

    def clinician_sids(self) -> list[str]:
        return [sid for sid, p in self.members.items() if p["clinician"]]


def _ordered(people: dict[str, dict]) -> dict[str, dict]:
    return dict(sorted(people.items(), key=lambda item: item[1].get("t", 0)))


class MemoryCalls:
    """The fallback without Redis: one process holds every call."""

    def __init__(self):
        self._calls: dict[str, Snapshot] = {}
        self._where: dict[str, str] = {}  # sid -> consultation id
        self._lock = threading.Lock()

    def _copy(self, consultation_id: str) -> Snapshot:
        call = self._calls.get(consultation_id) or Snapshot()
        return Snapshot(dict(call.members), dict(call.waiting), set(call.admitted))

    def _leave_locked(self, sid: str):
        consultation_id = self._where.pop(sid, None)
        call = self._calls.get(consultation_id) if consultation_id else None
        if call is None:
            return None, False
        was_member = call.members.pop(sid, None) is not None
        call.waiting.pop(sid, None)
        if not call.members and not call.waiting:
            self._calls.pop(consultation_id, None)
        return consultation_id, was_member

    def join(self, consultation_id: str, sid: str, person: dict, expires_at: float) -> tuple[bool, Snapshot]:
        with self._lock:
            self._leave_locked(sid)
            call = self._calls.setdefault(consultation_id, Snapshot())
            self._where[sid] = consultation_id
            admitted = person["clinician"] or person["user_id"] in call.admitted
            (call.members if admitted else call.waiting)[sid] = person
            return admitted, self._copy(consultation_id)

    def member(self, consultation_id: str, sid: str) -> dict | None:
        with self._lock:
            person = (self._calls.get(consultation_id) or Snapshot()).members.get(sid)
            return dict(person) if person else None

    def snapshot(self, consultation_id: str) -> Snapshot:
        with self._lock:
            return self._copy(consultation_id)

    def admit(self, consultation_id: str, sid: str) -> tuple[dict, Snapshot] | None:
        with self._lock:
            call = self._calls.get(consultation_id)
            person = call.waiting.pop(sid, None) if call else None
            if person is None:
                return None
            call.members[sid] = person
            call.admitted.add(person["user_id"])
            return person, self._copy(consultation_id)

    def forget_admission(self, consultation_id: str, user_id: str) -> Snapshot:
        with self._lock:
            call = self._calls.get(consultation_id)
            if call is not None:
                call.admitted.discard(user_id)
            return self._copy(consultation_id)

    def leave(self, sid: str) -> tuple[str, bool, Snapshot] | None:
        with self._lock:
            consultation_id, was_member = self._leave_locked(sid)
            if consultation_id is None:
                return None
            return consultation_id, was_member, self._copy(consultation_id)


# Leave the connection's previous call (if any), then enter this one: as a member when a clinician or a user
# admitted before, else in the waiting room. Expiry: the later of the current one and ARGV[5].
# KEYS: the connection's key, this call's hash. ARGV: sid, person json, user id, clinician (1/0), expire-at
# (unix seconds), the call-hash prefix. Returns {admitted (1/0), HGETALL of the call}.
_JOIN_LUA = """
local function leave(hash, sid)
  redis.call('HDEL', hash, 'm:' .. sid, 'w:' .. sid)
  for _, name in ipairs(redis.call('HKEYS', hash)) do
    local kind = string.sub(name, 1, 2)
    if kind == 'm:' or kind == 'w:' then return end
  end
  redis.call('DEL', hash)
end
local previous = redis.call('GET', KEYS[1])
if previous then leave(ARGV[6] .. previous, ARGV[1]) end
local admitted = 0
if ARGV[4] == '1' or redis.call('HEXISTS', KEYS[2], 'u:' .. ARGV[3]) == 1 then admitted = 1 end
if admitted == 1 then redis.call('HSET', KEYS[2], 'm:' .. ARGV[1], ARGV[2])
else redis.call('HSET', KEYS[2], 'w:' .. ARGV[1], ARGV[2]) end
redis.call('SET', KEYS[1], string.sub(KEYS[2], string.len(ARGV[6]) + 1))
redis.call('EXPIREAT', KEYS[1], ARGV[5])
local ttl = redis.call('TTL', KEYS[2])
if ttl < 0 or ttl < tonumber(ARGV[5]) - tonumber(redis.call('TIME')[1]) then
  redis.call('EXPIREAT', KEYS[2], ARGV[5])
end
return {admitted, redis.call('HGETALL', KEYS[2])}
"""
# KEYS: the call's hash. ARGV: sid. Waiting -> member, the user admitted. Returns {person json, HGETALL} or nil.
_ADMIT_LUA = """
local person = redis.call('HGET', KEYS[1], 'w:' .. ARGV[1])
if not person then return nil end
redis.call('HDEL', KEYS[1], 'w:' .. ARGV[1])
redis.call('HSET', KEYS[1], 'm:' .. ARGV[1], person, 'u:' .. cjson.decode(person)['user_id'], '1')
return {person, redis.call('HGETALL', KEYS[1])}
"""
# KEYS: the connection's key. ARGV: sid, the call-hash prefix. Returns {consultation id, was member (1/0),
# HGETALL of what is left} or nil when the connection was in no call.
_LEAVE_LUA = """
local consultation = redis.call('GET', KEYS[1])
if not consultation then return nil end
redis.call('DEL', KEYS[1])
local hash = ARGV[2] .. consultation
local was_member = redis.call('HDEL', hash, 'm:' .. ARGV[1])
redis.call('HDEL', hash, 'w:' .. ARGV[1])
local rest = redis.call('HGETALL', hash)
local empty = true
for i = 1, #rest, 2 do
  local kind = string.sub(rest[i], 1, 2)
  if kind == 'm:' or kind == 'w:' then empty = false end
end
if empty then redis.call('DEL', hash); rest = {} end
return {consultation, was_member, rest}
"""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse(flat: list) -> Snapshot:
    snapshot = Snapshot()
    for name, value in zip(flat[::2], flat[1::2], strict=True):
        name = _text(name)
        kind, key = name[:2], name[2:]
        if kind == "m:":
            snapshot.members[key] = json.loads(value)
        elif kind == "w:":
            snapshot.waiting[key] = json.loads(value)
        elif kind == "u:":
            snapshot.admitted.add(key)
    snapshot.members, snapshot.waiting = _ordered(snapshot.members), _ordered(snapshot.waiting)
    return snapshot


class RedisCalls:
    """The calls shared by every process through Redis (keys under `prefix`)."""

    def __init__(self, redis, prefix: str):
        self.redis = redis
        self.calls = f"{prefix}:call:"
        self.sids = f"{prefix}:call-sid:"
        self._join = redis.register_script(_JOIN_LUA)
        self._admit = redis.register_script(_ADMIT_LUA)
        self._leave = redis.register_script(_LEAVE_LUA)

    def join(self, consultation_id: str, sid: str, person: dict, expires_at: float) -> tuple[bool, Snapshot]:
        expire_at = int(max(expires_at, time.time()) + GRACE_SECONDS)
        admitted, flat = self._join(
            keys=[self.sids + sid, self.calls + consultation_id],
            args=[sid, json.dumps(person), person["user_id"], int(person["clinician"]), expire_at, self.calls],
        )
        return bool(admitted), _parse(flat)

    def member(self, consultation_id: str, sid: str) -> dict | None:
        person = self.redis.hget(self.calls + consultation_id, "m:" + sid)
        return json.loads(person) if person else None

    def snapshot(self, consultation_id: str) -> Snapshot:
        return _parse([x for pair in self.redis.hgetall(self.calls + consultation_id).items() for x in pair])

    def admit(self, consultation_id: str, sid: str) -> tuple[dict, Snapshot] | None:
        result = self._admit(keys=[self.calls + consultation_id], args=[sid])
        if not result:
            return None
        return json.loads(result[0]), _parse(result[1])

    def forget_admission(self, consultation_id: str, user_id: str) -> Snapshot:
        pipe = self.redis.pipeline()  # MULTI/EXEC: the removal and the state after it, as one
        pipe.hdel(self.calls + consultation_id, "u:" + user_id)
        pipe.hgetall(self.calls + consultation_id)
        _, state = pipe.execute()
        return _parse([x for pair in state.items() for x in pair])

    def leave(self, sid: str) -> tuple[str, bool, Snapshot] | None:
        result = self._leave(keys=[self.sids + sid], args=[sid, self.calls])
        if not result:
            return None
        return _text(result[0]), bool(result[1]), _parse(result[2])


def store_for(app):
    """The app's call store: Redis when the app has a Redis client, else one per process."""
    store = app.extensions.get("telemed_calls")
    redis = app.extensions.get("redis")
    if store is None or getattr(store, "redis", None) is not redis:
        store = RedisCalls(redis, app.extensions["settings"].REDIS_PREFIX) if redis is not None else MemoryCalls()
        app.extensions["telemed_calls"] = store
    return store
