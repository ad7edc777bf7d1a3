"""The slot engine: availability windows -> free slots, by interval arithmetic (the scheduler's hot path).

DOMAIN.md section 5: weekly windows are in the clinician's own IANA zone; a date override replaces that
day's windows entirely (an empty override closes the day); a buffer after each consultation; a minimum
notice; a booking horizon. Windows are expanded per *local date* in the clinician's zone and only then
converted to UTC, so a DST change day (cal.com issues 10517, 30021) and the date line come out right.

Local times that do not map to exactly one instant:
- in a spring-forward gap (e.g. 02:30 on the day clocks jump 02:00 -> 03:00): the instant of the jump;
- ambiguous on a fall-back day (02:30 happens twice): a window's start is its earlier occurrence and its
  end the later one, so the window covers every instant labelled inside it.

A slot is a start on the window's grid (window start + k * slot_minutes) such that [start, start +
duration) lies inside the window and [start, start + duration + buffer) overlaps no booked block
(a block is [start, end + buffer) of a booking). Time is handled as integer epoch seconds; nothing is
expanded minute by minute: each window is cut by the sorted busy intervals and the grid points of each
free piece are computed arithmetically. The search across a mission's clinicians: telemed.scheduling.slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from config.extensions import db
from core import clock

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_epoch(value: datetime) -> int:
    return int((clock.as_utc(value) - EPOCH).total_seconds())


def from_epoch(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def parse_hhmm(value: str) -> int:
    """'08:30' -> minutes after local midnight; '24:00' is the end of the day."""
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


# ---------------------------------------------------------------------------------------------------
# Local wall time -> UTC instant


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _offset_at(tz: ZoneInfo, epoch: int):
    return from_epoch(epoch).astimezone(tz).utcoffset()


def local_to_epoch(day: date, minute_of_day: int, tz: ZoneInfo, *, latest: bool) -> int:
    """The instant a local wall time on `day` names (see the module docstring for gaps and folds)."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minute_of_day)
    early = to_epoch(naive.replace(tzinfo=tz, fold=0))
    late = to_epoch(naive.replace(tzinfo=tz, fold=1))
    if early == late:
        return early
    exists = from_epoch(early).astimezone(tz).replace(tzinfo=None) == naive
    if exists:
        # Fall-back fold: fold=0 is the earlier instant.
        return max(early, late) if latest else min(early, late)
    # Spring-forward gap: fold=1 reads it with the new offset (before the jump), fold=0 with the old
    # one (after it); the jump lies between. Bisect for the first second with the new offset.
    low, high = min(early, late), max(early, late)
    new_offset = _offset_at(tz, high)
    while high - low > 1:
        mid = (low + high) // 2
        if _offset_at(tz, mid) == new_offset:
            high = mid
        else:
            low = mid
    return high


@lru_cache(maxsize=200_000)
def day_windows(tz_name: str, day: date, windows: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """A local date's windows (minutes after local midnight) as UTC epoch intervals (empty ones dropped)."""
    tz = zone(tz_name)
    result = []
    for start, end in windows:
        s = local_to_epoch(day, start, tz, latest=False)
        e = local_to_epoch(day, end, tz, latest=True)
        if e > s:
            result.append((s, e))
    return tuple(result)


# ---------------------------------------------------------------------------------------------------
# A clinician's plan: the availability in a form the engine reads fast


@dataclass(frozen=True)
class Plan:
    clinician_id: str
    tz_name: str
    weekly: tuple[tuple[tuple[int, int], ...], ...]  # 7 tuples (mon..sun) of (start, end) minutes
    overrides: dict  # date -> tuple of (start, end) minutes (empty: closed)
    slot_seconds: int
    buffer_seconds: int
    notice_seconds: int
    horizon_seconds: int
    _cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def of(cls, clinician) -> "Plan":
        weekly: list[list[tuple[int, int]]] = [[] for _ in DAYS]
        for window in clinician.weekly or ():
            weekly[DAYS.index(window["day"])].append((parse_hhmm(window["start"]), parse_hhmm(window["end"])))
        overrides = {}
        for override in clinician.overrides or ():
            overrides[date.fromisoformat(override["date"])] = tuple(
                sorted((parse_hhmm(w["start"]), parse_hhmm(w["end"])) for w in override.get("windows", ()))
            )
        return cls(
            clinician_id=clinician.id,
            tz_name=clinician.timezone,
            weekly=tuple(tuple(sorted(day)) for day in weekly),
            overrides=overrides,
            slot_seconds=clinician.slot_minutes * 60,
            buffer_seconds=clinician.buffer_minutes * 60,
            notice_seconds=clinician.min_notice_minutes * 60,
            horizon_seconds=clinician.horizon_days * 86400,
        )

    def windows(self, start: int, end: int) -> list[tuple[int, int]]:
        """UTC windows overlapping [start, end), sorted, touching or overlapping ones merged."""
        tz = zone(self.tz_name)
        # Every local date whose windows can reach [start, end): the dates at both ends in the clinician's
        # zone, one more on each side (a window may cross local midnight after conversion).
        first = from_epoch(start).astimezone(tz).date() - timedelta(days=1)
        last = from_epoch(end).astimezone(tz).date() + timedelta(days=1)
        merged: list[list[int]] = []
        day = first
        while day <= last:
            local = self.overrides.get(day)
            if local is None:
                local = self.weekly[day.weekday()]
            if local:
                for s, e in day_windows(self.tz_name, day, local):
                    if e <= start or s >= end:
                        continue
                    if merged and s <= merged[-1][1]:
                        merged[-1][1] = max(merged[-1][1], e)
                    else:
                        merged.append([s, e])
            day += timedelta(days=1)
        return [(s, e) for s, e in merged]

    def windows_cached(self, start: int, end: int) -> list[tuple[int, int]]:
        """Plan.windows memoised per process (a plan is immutable: a new profile version is a new plan)."""
        key = (start, end)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) > 512:
                self._cache.clear()
            cached = self._cache[key] = self.windows(start, end)
        return cached

    def bounds(self, now: int) -> tuple[int, int]:
        """Earliest and latest bookable start: minimum notice and horizon."""
        return now + self.notice_seconds, now + self.horizon_seconds


def free_starts(
    windows: list[tuple[int, int]],
    busy: list[tuple[int, int]],
    *,
    duration: int,
    step: int,
    buffer: int,
    earliest: int,
    latest: int,
) -> list[int]:
    """Slot starts s on each window's grid with earliest <= s <= latest, [s, s + duration) inside the window
    and [s, s + duration + buffer) clear of every busy block. `windows` and `busy` are sorted by start."""
    out: list[int] = []
    # A block [b0, b1) forbids starts s with s + duration + buffer > b0 and s < b1: cutting the windows by
    # [b0 - buffer, b1) leaves exactly the room where a slot of `duration` fits.
    cuts = [(b0 - buffer, b1) for b0, b1 in busy]
    i = 0
    n = len(cuts)
    for ws, we in windows:
        while i < n and cuts[i][1] <= ws:
            i += 1
        cursor = ws
        j = i
        while cursor < we:
            if j < n and cuts[j][0] < we:
                cut_start, cut_end = cuts[j]
                piece_end = cut_start if cut_start < we else we
                next_cursor = cut_end if cut_end > cursor else cursor
                j += 1
            else:
                piece_end = next_cursor = we
            if piece_end > cursor:
                lo = cursor if cursor > earliest else earliest
                first = ws - ((ws - lo) // step) * step  # the first grid point >= lo
                last = piece_end - duration
                if last > latest:
                    last = latest
                if first <= last:
                    out.extend(range(first, last + 1, step))
            cursor = next_cursor
    return out


def clinician_slots(
    plan: Plan,
    busy: list[tuple[int, int]],
    *,
    start: int,
    end: int,
    now: int,
    duration: int | None = None,
    windows: list[tuple[int, int]] | None = None,
) -> list[int]:
    """Free slot starts of one clinician in [start, end) (a slot must also end by `end`). `windows`, when
    given, must cover [start, end) (e.g. Plan.windows_cached over a wider range)."""
    duration = duration or plan.slot_seconds
    earliest, latest = plan.bounds(now)
    earliest = max(earliest, start)
    latest = min(latest, end - duration)
    if latest < earliest:
        return []
    if windows is None:
        windows = plan.windows(start, end)
    windows = [(s, min(e, end)) for s, e in windows if s < end and e > start]
    return free_starts(
        windows,
        busy,
        duration=duration,
        step=plan.slot_seconds,
        buffer=plan.buffer_seconds,
        earliest=earliest,
        latest=latest,
    )


def fits(plan: Plan, busy: list[tuple[int, int]], *, start: int, duration: int, now: int) -> str | None:
    """Why a booking at `start` cannot be made, or None when it can (the booking transaction's check;
    any start inside a window is bookable, not only grid points)."""
    earliest, latest = plan.bounds(now)
    if start < earliest:
        return "too_soon"
    if start > latest:
        return "beyond_horizon"
    end = start + duration
    if not any(ws <= start and end <= we for ws, we in plan.windows(start, end)):
        return "outside_availability"
    if any(b0 < end + plan.buffer_seconds and start < b1 for b0, b1 in busy):
        return "overlaps_booking"
    return None


# ---------------------------------------------------------------------------------------------------
# Held blocks: what a booking occupies (the search across clinicians is telemed.scheduling.slots)


# The longest block a booking can hold: 480-minute consultation + 240-minute buffer (schemas' limits).
MAX_BLOCK_SECONDS = (480 + 240) * 60


def load_busy(
    session,
    clinician_ids: list[str],
    start: int,
    end: int,
    *,
    mission_id: str | None = None,
    exclude_consultation_id: str | None = None,
) -> dict[str, list[tuple[int, int]]]:
    """Held blocks of these clinicians overlapping [start, end), sorted, as epoch seconds. With many
    clinicians of one mission the query filters by mission (an index range scan on (mission_id,
    block_start)) rather than by a long IN list."""
    from sqlalchemy import BigInteger, cast, func

    from telemed.scheduling.models import Consultation

    busy: dict[str, list[tuple[int, int]]] = {cid: [] for cid in clinician_ids}
    if not clinician_ids:
        return busy
    table = Consultation.__table__
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # Epoch seconds straight from the database: no datetime objects for thousands of rows.
        columns = (
            cast(func.floor(func.extract("epoch", table.c.block_start)), BigInteger),
            cast(func.ceil(func.extract("epoch", table.c.block_end)), BigInteger),
        )
    else:
        columns = (table.c.block_start, table.c.block_end)
    query = (
        db.select(table.c.clinician_id, *columns)
        .where(
            table.c.block_start.is_not(None),
            table.c.block_start < from_epoch(end),
            table.c.block_start >= from_epoch(start - MAX_BLOCK_SECONDS),
            table.c.block_end > from_epoch(start),
        )
        .order_by(table.c.clinician_id, table.c.block_start)
    )
    if len(clinician_ids) <= 50 or mission_id is None:
        query = query.where(table.c.clinician_id.in_(clinician_ids))
    else:
        query = query.where(table.c.mission_id == mission_id)
    if exclude_consultation_id:
        query = query.where(table.c.id != exclude_consultation_id)
    rows = session.execute(query).all()
    if postgres:
        for cid, b0, b1 in rows:
            if cid in busy:
                busy[cid].append((b0, b1))
    else:
        for cid, b0, b1 in rows:
            if cid in busy:
                busy[cid].append((to_epoch(b0), to_epoch(b1)))
    return busy
