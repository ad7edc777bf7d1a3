"""`sync`: the events a user may see after a seq, from the event log (API.md, Real-time).

Authorisation happens again here, at replay time: the user's rooms are computed now (not taken from the
connection), and the event must be of the user's mission (or of none). Seqs are assigned after commit in
one serialized step (realtime.relay), so `since` is a complete watermark: nothing below it can appear later.
"""

from __future__ import annotations

from sqlalchemy import ARRAY, Text, cast, func, literal, or_, select, type_coerce
from sqlalchemy.dialects import postgresql

from realtime.events import data_for
from realtime.models import Event
from realtime.relay import envelope

PAGE = 500
MAX_PAGE = 1000


def _for_rooms(dialect: str, rooms: list[str]):
    if dialect == "postgresql":
        return type_coerce(Event.rooms, postgresql.JSONB).has_any(cast(postgresql.array(rooms), ARRAY(Text)))
    members = func.json_each(Event.rooms).table_valued("value")
    return select(literal(1)).select_from(members).where(members.c.value.in_(rooms)).exists()


def events_since(session, *, user, rooms: list[str], since: int, limit: int = PAGE) -> dict:
    """{"events": [envelopes, oldest first], "last_seq", "more"}; `last_seq` is the watermark to sync from
    next (it may be above the last event returned when later events were for other audiences)."""
    limit = max(1, min(int(limit), MAX_PAGE))
    # The watermark is read before the page: every seq at or below it is already committed and visible.
    watermark = session.execute(select(func.coalesce(func.max(Event.seq), 0))).scalar_one()
    dialect = session.get_bind().dialect.name
    rows = (
        session.execute(
            select(Event.seq, Event.type, Event.at, Event.data, Event.rooms, Event.views)
            .where(
                Event.seq > since,
                _for_rooms(dialect, rooms),
                or_(Event.mission_id.is_(None), Event.mission_id == user.mission_id),
            )
            .order_by(Event.seq)
            .limit(limit + 1)
        )
        .mappings()
        .all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    if more:
        last = rows[-1]["seq"]
    else:
        last = max([since, watermark] + [row["seq"] for row in rows])
    events = [
        envelope({**row, "data": data_for(rooms, row["rooms"], row["data"], row["views"])})
        if row["views"]
        else envelope(row)
        for row in rows
    ]
    return {"events": events, "last_seq": last, "more": more}
