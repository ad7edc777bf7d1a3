"""CASEVAC fixtures: users of the test's mission and a valid 9-line body to vary."""

from __future__ import annotations

import copy

import pytest

BASE_BODY = {
    "location": {"lat": 4.3612, "lon": 18.5550},
    "callsign": "BRAVO-2-6",
    "frequency": "38.90",
    "patients": {"urgent": 1, "urgent_surgical": 1, "priority": 0, "routine": 0, "convenience": 0},
    "equipment": ["hoist"],
    "litter": 2,
    "ambulatory": 0,
}
FULL_LINES = {
    "security": "P",
    "marking": "smoke",
    "nationality": {"un_military": 2},
    "terrain": "open field, slope to the north",
}
CASUALTY = {
    "zap": "A-1",
    "age": 27,
    "time_of_injury": "2026-11-28T09:12:00Z",
    "mechanism": "blast",
    "injuries": ["left leg amputation"],
    "signs": {"pulse": 128, "resp_rate": 26, "spo2": 91, "sbp": 85, "avpu": "V"},
    "treatments": [{"code": "tourniquet", "at": "2026-11-28T09:15:00Z"}],
    "precedence": "urgent_surgical",
}


def body(**overrides) -> dict:
    """A valid lines 1-5 body; keyword overrides replace top-level keys (None removes one)."""
    out = copy.deepcopy(BASE_BODY)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture
def medic(make_user):
    return make_user("medic")


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")


@pytest.fixture
def file_request(client, headers, medic):
    """file_request(user=medic, **overrides) -> the response JSON of a 201 filing."""

    def _file(user=None, expect=201, extra_headers=None, **overrides):
        response = client.post(
            "/api/v1/casevac/requests",
            json=body(**overrides),
            headers={**headers(user or medic), **(extra_headers or {})},
        )
        assert response.status_code == expect, response.get_data(as_text=True)[:800]
        return response.get_json()

    return _file


@pytest.fixture
def pg_make_user(pg_app):
    """make_user for PostgreSQL-only race tests (make_user itself runs on both backends)."""
    from tests.factories import MissionFactory, UserFactory

    mission = MissionFactory()

    def _make(role: str = "medic", mission_=None, **fields):
        return UserFactory(role=role, mission_id=(mission_ or mission).id, **fields)

    return _make


@pytest.fixture
def live_redis(app, redis_url):
    """Switch the app to Redis live positions for one test (keys under the run's prefix, removed after)."""
    import redis

    from casevac.fleet import positions

    client = redis.Redis.from_url(redis_url)
    prefix = app.extensions["settings"].REDIS_PREFIX

    def clean():
        for key in client.scan_iter(f"{prefix}:fleet:*"):
            client.delete(key)

    clean()
    app.extensions["redis"] = client
    positions.bind(app)
    yield client
    app.extensions["redis"] = None
    positions.bind(app)
    clean()
