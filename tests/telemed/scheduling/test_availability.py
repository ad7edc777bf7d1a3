"""The slot engine on its own: DST days, the date line, overrides, buffers, notice, horizon, and the
interval arithmetic checked against a minute-by-minute reference (DOMAIN.md section 5)."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.reference import naive_free_starts
from telemed.scheduling.availability import (
    Plan,
    clinician_slots,
    fits,
    free_starts,
    from_epoch,
    to_epoch,
)

UTC = timezone.utc


def plan(tz="UTC", weekly=(), overrides=(), slot=30, buffer=0, notice=0, horizon=400):
    return Plan.of(
        SimpleNamespace(
            id="c1",
            timezone=tz,
            weekly=list(weekly),
            overrides=list(overrides),
            slot_minutes=slot,
            buffer_minutes=buffer,
            min_notice_minutes=notice,
            horizon_days=horizon,
        )
    )


def u(text: str) -> int:
    return to_epoch(datetime.fromisoformat(text).replace(tzinfo=UTC))


def slots(p, start, end, *, busy=(), now=None, duration=None):
    starts = clinician_slots(
        p, list(busy), start=u(start), end=u(end), now=u(now or start), duration=duration * 60 if duration else None
    )
    return [from_epoch(s).strftime("%Y-%m-%dT%H:%M") for s in starts]


def local(stamps, tz):
    zone = ZoneInfo(tz)
    return [datetime.fromisoformat(s).replace(tzinfo=UTC).astimezone(zone).strftime("%H:%M") for s in stamps]


# --- DST: Europe/Oslo springs forward 2026-03-29 02:00 -> 03:00 and falls back 2026-10-25 03:00 -> 02:00


def test_spring_forward_window_spanning_the_change_is_an_hour_shorter():
    p = plan("Europe/Oslo", [{"day": "sun", "start": "00:00", "end": "04:00"}], slot=60)
    got = slots(p, "2026-03-28T12:00", "2026-03-29T12:00")
    assert got == ["2026-03-28T23:00", "2026-03-29T00:00", "2026-03-29T01:00"]
    assert local(got, "Europe/Oslo") == ["00:00", "01:00", "03:00"]


def test_spring_forward_afternoon_window_uses_the_new_offset():
    p = plan("Europe/Oslo", [{"day": "sun", "start": "14:00", "end": "16:00"}], slot=60)
    assert slots(p, "2026-03-22T00:00", "2026-03-23T00:00") == ["2026-03-22T13:00", "2026-03-22T14:00"]
    assert slots(p, "2026-03-29T00:00", "2026-03-30T00:00") == ["2026-03-29T12:00", "2026-03-29T13:00"]


def test_fall_back_window_spanning_the_change_is_an_hour_longer():
    p = plan("Europe/Oslo", [{"day": "sun", "start": "00:00", "end": "04:00"}], slot=60)
    got = slots(p, "2026-10-24T12:00", "2026-10-25T12:00")
    assert got == ["2026-10-24T22:00", "2026-10-24T23:00", "2026-10-25T00:00", "2026-10-25T01:00", "2026-10-25T02:00"]
    # 02:00 happens twice: once in summer time, once in winter time.
    assert local(got, "Europe/Oslo") == ["00:00", "01:00", "02:00", "02:00", "03:00"]


def test_fall_back_afternoon_window_uses_the_new_offset():
    p = plan("Europe/Oslo", [{"day": "sun", "start": "14:00", "end": "16:00"}], slot=60)
    assert slots(p, "2026-10-18T00:00", "2026-10-19T00:00") == ["2026-10-18T12:00", "2026-10-18T13:00"]
    assert slots(p, "2026-10-25T00:00", "2026-10-26T00:00") == ["2026-10-25T13:00", "2026-10-25T14:00"]


def test_new_york_spring_forward_window_starting_in_the_gap_starts_at_the_jump():
    # 2026-03-08: 02:00 EST -> 03:00 EDT. 02:30 does not exist: the window opens at 03:00 EDT (07:00Z).
    p = plan("America/New_York", [{"day": "sun", "start": "02:30", "end": "04:00"}], slot=30)
    assert slots(p, "2026-03-08T00:00", "2026-03-09T00:00") == ["2026-03-08T07:00", "2026-03-08T07:30"]
    # A window wholly inside the gap is empty.
    p = plan("America/New_York", [{"day": "sun", "start": "02:10", "end": "02:50"}], slot=10)
    assert slots(p, "2026-03-08T00:00", "2026-03-09T00:00") == []


def test_new_york_fall_back_thirty_minute_slots_cover_the_repeated_hour():
    # 2026-11-01: 02:00 EDT -> 01:00 EST. 00:00-03:00 local lasts 4 hours.
    p = plan("America/New_York", [{"day": "sun", "start": "00:00", "end": "03:00"}], slot=30)
    got = slots(p, "2026-11-01T00:00", "2026-11-02T00:00")
    assert len(got) == 8 and got[0] == "2026-11-01T04:00" and got[-1] == "2026-11-01T07:30"


# --- The date line


def test_auckland_monday_morning_is_sunday_evening_in_bangui():
    # Pacific/Auckland is UTC+13 in November (NZDT); Africa/Bangui UTC+1.
    p = plan("Pacific/Auckland", [{"day": "mon", "start": "08:00", "end": "10:00"}], slot=60)
    got = slots(p, "2026-11-29T00:00", "2026-11-30T00:00")  # Sunday, UTC
    assert got == ["2026-11-29T19:00", "2026-11-29T20:00"]
    bangui = [datetime.fromisoformat(s).replace(tzinfo=UTC).astimezone(ZoneInfo("Africa/Bangui")) for s in got]
    assert [b.strftime("%a %H:%M") for b in bangui] == ["Sun 20:00", "Sun 21:00"]
    # Nothing on Monday UTC until the next Auckland Monday.
    assert slots(p, "2026-11-30T00:00", "2026-12-06T00:00") == []


def test_same_local_monday_either_side_of_the_date_line_is_25_hours_apart():
    window = [{"day": "mon", "start": "09:00", "end": "10:00"}]
    kiritimati = slots(plan("Pacific/Kiritimati", window, slot=60), "2026-11-28T00:00", "2026-12-02T00:00")
    pago = slots(plan("Pacific/Pago_Pago", window, slot=60), "2026-11-28T00:00", "2026-12-02T00:00")
    assert kiritimati == ["2026-11-29T19:00"] and pago == ["2026-11-30T20:00"]


def test_samoa_skipped_friday_30_december_2011_has_no_slots():
    p = plan(
        "Pacific/Apia",
        [{"day": "fri", "start": "09:00", "end": "10:00"}, {"day": "thu", "start": "09:00", "end": "10:00"}],
        slot=60,
    )
    got = slots(p, "2011-12-27T00:00", "2012-01-07T00:00")
    zone = ZoneInfo("Pacific/Apia")
    local_days = [datetime.fromisoformat(s).replace(tzinfo=UTC).astimezone(zone).strftime("%a %d %b %Y") for s in got]
    assert local_days == ["Thu 29 Dec 2011", "Thu 05 Jan 2012", "Fri 06 Jan 2012"]


# --- Overrides, buffers, notice, horizon


def test_override_replaces_the_day_and_an_empty_override_closes_it():
    weekly = [{"day": d, "start": "08:00", "end": "10:00"} for d in ("mon", "tue")]
    overrides = [
        {"date": "2026-11-30", "windows": [{"start": "14:00", "end": "15:00"}]},
        {"date": "2026-12-01", "windows": []},
    ]
    p = plan("Africa/Nairobi", weekly, overrides, slot=30)
    assert slots(p, "2026-11-30T00:00", "2026-12-02T00:00") == ["2026-11-30T11:00", "2026-11-30T11:30"]
    # The following week, without overrides, the weekly windows apply again.
    assert len(slots(p, "2026-12-07T00:00", "2026-12-09T00:00")) == 8


def test_buffer_keeps_time_free_after_each_booking_and_before_the_next():
    p = plan("UTC", [{"day": "mon", "start": "08:00", "end": "13:00"}], slot=30, buffer=15)
    booked = (u("2026-11-30T10:00"), u("2026-11-30T10:45"))  # a 30-minute booking + 15-minute buffer
    got = slots(p, "2026-11-30T00:00", "2026-12-01T00:00", busy=[booked])
    assert "2026-11-30T09:00" in got and "2026-11-30T09:30" not in got  # 09:30 + 30 + 15 > 10:00
    assert "2026-11-30T10:30" not in got and "2026-11-30T11:00" in got
    assert got[:4] == ["2026-11-30T08:00", "2026-11-30T08:30", "2026-11-30T09:00", "2026-11-30T11:00"]


def test_minimum_notice_and_horizon():
    p = plan(
        "UTC",
        [{"day": d, "start": "08:00", "end": "12:00"} for d in ("mon", "tue", "wed")],
        slot=60,
        notice=70,
        horizon=1,
    )
    got = slots(p, "2026-11-30T00:00", "2026-12-03T00:00", now="2026-11-30T07:55")
    # notice: nothing before 09:05, so the first grid slot is 10:00; horizon: nothing after Tue 07:55.
    assert got == ["2026-11-30T10:00", "2026-11-30T11:00"]


def test_fits_names_why_a_time_is_not_bookable():
    p = plan("UTC", [{"day": "mon", "start": "08:00", "end": "12:00"}], slot=30, buffer=10, notice=60, horizon=60)
    now = u("2026-11-30T07:00")
    busy = [(u("2026-11-30T10:00"), u("2026-11-30T10:40"))]
    assert fits(p, busy, start=u("2026-11-30T07:30"), duration=1800, now=now) == "too_soon"
    assert fits(p, busy, start=u("2026-11-30T11:45"), duration=1800, now=now) == "outside_availability"
    assert fits(p, busy, start=u("2026-11-30T09:45"), duration=1800, now=now) == "overlaps_booking"
    assert fits(p, busy, start=u("2026-11-30T10:35"), duration=1800, now=now) == "overlaps_booking"
    assert fits(p, busy, start=u("2026-11-30T10:40"), duration=1800, now=now) is None
    assert fits(p, busy, start=u("2026-11-30T09:20"), duration=1800, now=now) is None  # off-grid is fine
    assert fits(p, busy, start=u("2027-03-01T09:00"), duration=1800, now=now) == "beyond_horizon"


# --- Interval arithmetic == minute-by-minute expansion

MIN = 60


@st.composite
def calendars(draw):
    base = 1_800_000_000 // 3600 * 3600
    n = draw(st.integers(0, 4))
    cuts = sorted(draw(st.lists(st.integers(0, 48 * 60), min_size=2 * n, max_size=2 * n, unique=True)))
    windows = [(base + cuts[i] * MIN, base + cuts[i + 1] * MIN) for i in range(0, len(cuts), 2)]
    busy = sorted(
        (base + s * MIN, base + (s + draw(st.integers(1, 180))) * MIN)
        for s in draw(st.lists(st.integers(-120, 50 * 60), max_size=8))
    )
    duration = draw(st.integers(1, 120)) * MIN
    step = draw(st.sampled_from([5, 10, 15, 20, 30, 45, 60])) * MIN
    buffer = draw(st.integers(0, 30)) * MIN
    earliest = base + draw(st.integers(-60, 48 * 60)) * MIN
    latest = earliest + draw(st.integers(0, 48 * 60)) * MIN
    return windows, busy, dict(duration=duration, step=step, buffer=buffer, earliest=earliest, latest=latest)


@settings(max_examples=300, deadline=None)
@given(calendars())
def test_interval_arithmetic_matches_minute_by_minute_expansion(calendar):
    windows, busy, params = calendar
    assert free_starts(windows, busy, **params) == naive_free_starts(windows, busy, **params)


def test_slots_never_overlap_a_block_including_buffers():
    p = plan(
        "Asia/Kathmandu",
        [{"day": d, "start": "07:15", "end": "19:45"} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")],
        slot=20,
        buffer=10,
    )
    busy = [(u("2026-12-01T03:00"), u("2026-12-01T03:50")), (u("2026-12-01T06:10"), u("2026-12-01T07:00"))]
    for s in clinician_slots(
        p, busy, start=u("2026-11-30T00:00"), end=u("2026-12-03T00:00"), now=u("2026-11-29T00:00")
    ):
        for b0, b1 in busy:
            assert s + 20 * MIN + 10 * MIN <= b0 or s >= b1
        # Kathmandu is UTC+05:45: slots are on the local quarter-hour grid from 07:15.
        assert from_epoch(s).astimezone(ZoneInfo("Asia/Kathmandu")).minute in (15, 35, 55)
