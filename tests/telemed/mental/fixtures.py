"""Fixtures of the mental-health tests (imported by the tests of tests/telemed/mental/)."""

from __future__ import annotations

import pytest

from config.extensions import db
from realtime.models import Event

PHQ9_ITEM9 = [0, 0, 0, 0, 0, 0, 0, 0, 1]  # total 1, item 9 at 1: suicidal_ideation
PHQ9_NONE = [0] * 9
PHQ9_MODERATE = [2, 2, 2, 2, 2, 0, 0, 0, 0]  # 10: moderate, positive, no flag


@pytest.fixture
def make_mh_clinician(make_clinician):
    """make_mh_clinician(mission=None, **profile) -> the user of a psychiatrist profile (telemed's clinician),
    available every day 08:00-17:00 UTC, speaking English and French unless told otherwise."""

    def _make(mission=None, specialties=("psychiatry",), languages=("en", "fr"), **profile):
        return make_clinician(specialties=specialties, languages=languages, mission_=mission, **profile).user

    return _make


@pytest.fixture
def member(make_user):
    return make_user("member", display_name="Private Ada")


@pytest.fixture
def screen(client, headers):
    """screen(user, instrument, answers, **extra) -> the response of POST /screenings."""

    def _screen(user, instrument="phq9", answers=None, **extra):
        body = {"instrument": instrument, "answers": PHQ9_NONE if answers is None else answers, **extra}
        return client.post("/api/v1/telemed/screenings", json=body, headers=headers(user))

    return _screen


def events_of(type_: str) -> list[Event]:
    db.session.expire_all()
    return list(db.session.execute(db.select(Event).where(Event.type == type_).order_by(Event.id)).scalars())
