"""core.clock.backoff: the one retry policy of the outboxes (mail, outbound texts)."""

from __future__ import annotations

from datetime import timedelta

from casevac.links import outbound
from core import clock, mail


def test_backoff_doubles_from_first_and_stops_at_the_cap():
    waits = [clock.backoff(n, first=timedelta(seconds=30), at_most=timedelta(minutes=5)) for n in range(0, 8)]
    assert [w.total_seconds() for w in waits] == [30, 30, 60, 120, 240, 300, 300, 300]


def test_each_outbox_keeps_its_own_schedule():
    # Mail: 1, 2, 4 ... minutes, at most an hour; texts to the field: 30 s doubling, at most 30 minutes.
    assert [mail.backoff(n).total_seconds() for n in (1, 2, 3, 7, 20)] == [60, 120, 240, 3600, 3600]
    texts = [clock.backoff(n, first=outbound.RETRY_FIRST, at_most=outbound.RETRY_AT_MOST) for n in (1, 2, 6, 7, 30)]
    assert [w.total_seconds() for w in texts] == [30, 60, 960, 1800, 1800]
