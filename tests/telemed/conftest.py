"""Telemedicine fixtures: clinicians with availability, bookings through the API."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from config.extensions import db
from telemed.scheduling.availability import DAYS
from telemed.scheduling.models import Clinician

UTC = timezone.utc
WORKDAY = [{"day": d, "start": "08:00", "end": "17:00"} for d in DAYS]


def at(text: str) -> datetime:
    """'2026-12-01T10:00' (UTC unless an offset is given) -> aware datetime."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def make_clinician(app, mission, make_user):
    """make_clinician(specialties=..., languages=..., timezone=..., weekly=..., ...) -> committed profile."""

    def _make(
        specialties=("general_medicine",),
        languages=("en",),
        timezone="UTC",
        kinds=None,
        weekly=None,
        overrides=(),
        slot_minutes=30,
        buffer_minutes=0,
        min_notice_minutes=0,
        horizon_days=60,
        mission_=None,
        user=None,
        **user_fields,
    ):
        user = user or make_user("clinician", mission_, **user_fields)
        if kinds is None:
            kinds = ["mental_health"] if set(specialties) <= {"psychiatry", "psychology"} else ["diagnostic"]
        clinician = Clinician(
            user_id=user.id,
            mission_id=user.mission_id,
            specialties=list(specialties),
            languages=list(languages),
            timezone=timezone,
            kinds=list(kinds),
            weekly=list(WORKDAY if weekly is None else weekly),
            overrides=list(overrides),
            slot_minutes=slot_minutes,
            buffer_minutes=buffer_minutes,
            min_notice_minutes=min_notice_minutes,
            horizon_days=horizon_days,
            display_name=user.display_name,
        )
        db.session.add(clinician)
        db.session.commit()
        return clinician

    return _make


@pytest.fixture
def book(client, headers):
    """book(user, clinician, start, **fields) -> the response of POST /consultations."""

    def _book(
        user,
        clinician,
        start,
        *,
        kind="diagnostic",
        modality="video",
        duration=None,
        patient=None,
        reason="assess wound",
    ):
        body = {
            "kind": kind,
            "clinician_id": clinician.id if hasattr(clinician, "id") else clinician,
            "modality": modality,
            "reason": reason,
            "patient": patient if patient is not None else {"name": "Cpl A"},
        }
        if start is not None:
            body["start"] = iso(start)
        if duration:
            body["duration_minutes"] = duration
        return client.post("/api/v1/telemed/consultations", json=body, headers=headers(user))

    return _book


@pytest.fixture
def now_frozen(frozen_clock):
    """Freeze the clock at Monday 2026-11-30 06:00 UTC (tests book on the following days)."""
    moment = at("2026-11-30T06:00")
    frozen_clock(moment)
    return moment


def days(n: int) -> timedelta:
    return timedelta(days=n)


def race(app, requests_) -> Counter:
    """Run the callables at once (a barrier lines them up); return their status codes."""
    barrier = threading.Barrier(len(requests_))
    codes: list[int] = []
    lock = threading.Lock()

    def run(fn):
        client = app.test_client()
        barrier.wait()
        code = fn(client)
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in requests_]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return Counter(codes)
