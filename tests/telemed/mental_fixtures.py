"""Fixtures of the mental-health tests (imported by tests/telemed/test_mental*.py and test_screening*.py)."""
from __future__ import annotations

import pytest

from config.extensions import db
from realtime.models import Event

PHQ9_ITEM9 = [0, 0, 0, 0, 0, 0, 0, 0, 1]  # total 1, item 9 at 1: suicidal_ideation
PHQ9_NONE = [0] * 9
PHQ9_MODERATE = [2, 2, 2, 2, 2, 0, 0, 0, 0]  # 10: moderate, positive, no flag


_mental_health_ids: set[str] = set()


@pytest.fixture(autouse=True)
def mental_health_check(monkeypatch):
    from telemed import mental_service

    # Until telemed's clinician profiles are merged: the check telemed will provide.
    monkeypatch.setattr(mental_service, "is_mental_health_clinician",
                        lambda session, user: user.role == "clinician" and user.id in _mental_health_ids)


@pytest.fixture
def make_mh_clinician(make_user):
    """make_mh_clinician(mission=None) -> a clinician with a mental-health specialty."""

    def _make(mission=None):
        user = make_user("clinician", mission)
        _mental_health_ids.add(user.id)
        return user

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
