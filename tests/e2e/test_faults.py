"""Fault injection with real processes (issue 8): a private PostgreSQL cluster and Redis server, stopped and
restarted under a running server. The shared services of the machine are never touched."""
from __future__ import annotations

import time

import pytest
import requests

from tests.e2e.faults import private_postgres, private_redis  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e
DEMO_PASSWORD = "demo-password-123"


def _token(server, username="demo-coordinator") -> str:
    response = requests.post(server.url + "/api/v1/auth/login",
                             json={"username": username, "password": DEMO_PASSWORD}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s (last: {last})")


def test_postgres_restart_reports_degraded_503_and_recovers_without_a_restart(start_server, private_postgres):
    pg = private_postgres.start()
    pg.create_database()
    server = start_server(DATABASE_URL=pg.url)
    pid = server.process.pid
    auth = {"Authorization": f"Bearer {_token(server)}"}
    ready = requests.get(server.url + "/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["database"] == "ok"

    pg.stop("fast")
    # While the database is down: readiness says so with 503, every database-backed call is 503 (retry
    # later), never 500, and fast (no request hangs on a dead pool).
    down = requests.get(server.url + "/readyz", timeout=15)
    assert down.status_code == 503
    assert down.json() == {"status": "degraded", "database": "error", "redis": "disabled"}
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200  # the process itself is alive
    for _ in range(3):
        started = time.monotonic()
        me = requests.get(server.url + "/api/v1/auth/me", headers=auth, timeout=15)
        assert me.status_code == 503, (me.status_code, me.text)
        assert me.json()["code"] == 503 and "database" in me.json()["message"]
        assert time.monotonic() - started < 10
        login = requests.post(server.url + "/api/v1/auth/login",
                              json={"username": "demo-medic", "password": DEMO_PASSWORD}, timeout=15)
        assert login.status_code == 503, (login.status_code, login.text)

    pg.start()
    # Recovers by itself: the same process, stale pooled connections replaced (pool_pre_ping).
    _wait_for(lambda: requests.get(server.url + "/readyz", timeout=5).status_code == 200, 30, "recovery")
    assert requests.get(server.url + "/api/v1/auth/me", headers=auth, timeout=5).status_code == 200
    assert _token(server, "demo-medic")
    assert server.process.pid == pid and server.process.poll() is None
    assert '" 500 ' not in server.logs()
