"""Slot search across a mission's clinicians (the seam other modules use): each clinician's `Card` (profile
parsed once per version and cached per process), then the engine of telemed.scheduling.availability over
their windows and held blocks, a UTC day at a time, sorted by (start, clinician)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from config.extensions import db
from core import clock
from core.errors import invalid
from core.models import User
from core.pagination import decode_cursor, encode_cursor
from telemed.scheduling.availability import Plan, clinician_slots, from_epoch, load_busy, to_epoch


@dataclass(frozen=True)
class Card:
    """What slot search needs of a clinician, parsed once per profile version and cached per process."""

    clinician_id: str
    version: int
    specialties: frozenset
    languages: frozenset
    kinds: frozenset
    plan: Plan

    def matches(self, *, specialty=None, specialties=None, language=None, kind=None) -> bool:
        return (
            (not specialty or specialty in self.specialties)
            and (not specialties or not self.specialties.isdisjoint(specialties))
            and (not language or language in self.languages)
            and (not kind or kind in self.kinds)
        )


_cards: dict[str, Card] = {}


def load_cards(session, *, mission_id: str, clinician_id: str | None = None) -> list[Card]:
    """The mission's active clinicians, sorted by id: one narrow query for (id, version), then the full
    profile only for clinicians this process has not seen at that version."""
    from telemed.scheduling.models import Clinician

    table = Clinician.__table__
    query = db.select(table.c.id, table.c.profile_version).where(
        table.c.mission_id == mission_id, table.c.active.is_(True)
    )
    if clinician_id:
        query = query.where(table.c.id == clinician_id)
    rows = session.execute(query.order_by(table.c.id)).all()
    stale = [cid for cid, version in rows if cid not in _cards or _cards[cid].version != version]
    if stale:
        if len(_cards) > 100_000:
            _cards.clear()
        for i in range(0, len(stale), 1000):
            for clinician in (
                session.execute(db.select(Clinician).where(Clinician.id.in_(stale[i : i + 1000]))).unique().scalars()
            ):
                _cards[clinician.id] = Card(
                    clinician.id,
                    clinician.profile_version,
                    frozenset(clinician.specialties),
                    frozenset(clinician.languages),
                    frozenset(clinician.kinds),
                    Plan.of(clinician),
                )
    return [_cards[cid] for cid, _ in rows if cid in _cards]


def find_slots(
    session,
    *,
    mission_id: str,
    start: datetime,
    end: datetime,
    specialty: str | None = None,
    specialties: list[str] | tuple[str, ...] | None = None,
    language: str | None = None,
    kind: str | None = None,
    duration_minutes: int | None = None,
    clinician_id: str | None = None,
    limit: int | None = None,
    after: tuple[datetime, str] | None = None,
) -> list[dict]:
    """Free slots of the mission's active clinicians matching the filters, in [start, end), sorted by
    (start, clinician_id): [{"clinician_id", "start", "end"}] with aware UTC datetimes.

    `specialties` matches any of them; `after` = (start, clinician_id) of the last slot already seen.
    The range is searched a UTC day at a time; with a limit the search stops once the limit is met.
    """
    plans = [
        card.plan
        for card in load_cards(session, mission_id=mission_id, clinician_id=clinician_id)
        if card.matches(specialty=specialty, specialties=specialties, language=language, kind=kind)
    ]
    if not plans:
        return []
    now = to_epoch(clock.now())
    range_start, range_end = to_epoch(start), to_epoch(end)
    after_key = (to_epoch(after[0]), after[1]) if after else None
    if after_key:
        range_start = max(range_start, after_key[0])
    duration = duration_minutes * 60 if duration_minutes else None
    longest = max(duration or p.slot_seconds for p in plans) + max(p.buffer_seconds for p in plans)
    out: list[dict] = []
    stamps: dict[int, datetime] = {}
    ids = [p.clinician_id for p in plans]
    chunk_start = range_start
    while chunk_start < range_end:
        # Chunks end at UTC midnight, so each clinician's windows for a day are computed once per process.
        day = chunk_start - chunk_start % 86400
        chunk_end = min(day + 86400, range_end)
        # Blocks that can touch a slot starting in this chunk.
        busy = load_busy(session, ids, chunk_start - longest, chunk_end + longest, mission_id=mission_id)
        found: list[tuple[int, str, int]] = []
        for plan in plans:
            d = duration or plan.slot_seconds
            slot_end = min(chunk_end + d, range_end)
            windows = plan.windows_cached(day, day + 2 * 86400)
            starts = clinician_slots(
                plan, busy[plan.clinician_id], start=chunk_start, end=slot_end, now=now, duration=d, windows=windows
            )
            cid = plan.clinician_id
            found.extend((s, cid, d) for s in starts if s < chunk_end)
        found.sort()  # one C-level sort beats merging 500 short lists in Python
        for s, cid, d in found:
            if after_key and (s, cid) <= after_key:
                continue
            # Many slots share a start: build each datetime once.
            begin = stamps.get(s) or stamps.setdefault(s, from_epoch(s))
            finish = stamps.get(s + d) or stamps.setdefault(s + d, from_epoch(s + d))
            out.append({"clinician_id": cid, "start": begin, "end": finish})
            if limit and len(out) >= limit:
                return out
        chunk_start = chunk_end
    return out


MAX_SEARCH_DAYS = 31


def search_slots(
    session,
    *,
    actor: User,
    from_: datetime | None = None,
    to: datetime | None = None,
    specialty=None,
    language=None,
    kind=None,
    duration: int | None = None,
    clinician_id=None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict:
    """Free slots in the caller's mission, sorted by start: {"items", "next_cursor"}."""
    start = clock.as_utc(from_) if from_ else clock.now()
    end = clock.as_utc(to) if to else start + timedelta(days=7)
    if end <= start:
        raise invalid("to", "must be after from", location="query")
    if end - start > timedelta(days=MAX_SEARCH_DAYS):
        raise invalid("to", f"at most {MAX_SEARCH_DAYS} days after from", location="query")
    after = None
    if cursor:
        at, cid = decode_cursor(cursor, 2)
        if not isinstance(at, datetime) or not isinstance(cid, str):
            raise invalid("cursor", "not a cursor returned by this list", location="query")
        after = (at, cid)
    items = find_slots(
        session,
        mission_id=actor.mission_id,
        start=start,
        end=end,
        specialty=specialty,
        language=language,
        kind=kind,
        duration_minutes=duration,
        clinician_id=clinician_id,
        limit=limit + 1,
        after=after,
    )
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor([items[-1]["start"], items[-1]["clinician_id"]])
    return {"items": items, "next_cursor": next_cursor}
