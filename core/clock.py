"""The one clock of the application: timezone-aware UTC, controllable in tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

_frozen: datetime | None = None


def now() -> datetime:
    return _frozen if _frozen is not None else datetime.now(timezone.utc)


def freeze(at: datetime | None) -> None:
    """Tests: pin now() to `at` (aware) or release it with None."""
    global _frozen
    if at is not None and at.tzinfo is None:
        raise ValueError("freeze() needs an aware datetime")
    _frozen = at


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def backoff(attempts: int, *, first: timedelta, at_most: timedelta) -> timedelta:
    """The wait before retrying after the n-th failed attempt: `first`, doubling each time, capped at `at_most`
    (every outbox's retry policy: core.mail, casevac.links.outbound)."""
    return min(first * 2 ** max(attempts - 1, 0), at_most)
