"""Over real HTTP against the real server (bin/serve: gunicorn, 20 threads) on PostgreSQL: a field client's
burst of identical retries makes one request; gzip bodies and ETag polling work on the wire."""

import gzip
import json
import threading

import pytest
import requests

from tests.casevac.conftest import CASUALTY, body
from tests.e2e.conftest import login as e2e_login
from tests.e2e.conftest import pg_database, start_server  # noqa: F401 - the fixtures

pytestmark = pytest.mark.e2e


def login(server, username):
    return {"Authorization": f"Bearer {e2e_login(server, username)}"}


def test_twenty_parallel_http_retries_make_one_request(start_server, pg_database):
    server = start_server(DATABASE_URL=pg_database)
    medic = login(server, "demo-medic")
    coordinator = login(server, "demo-coordinator")
    url = server.url + "/api/v1/casevac/requests"
    payload = json.dumps(body(casualties=[CASUALTY]))
    headers = {**medic, "Content-Type": "application/json", "Idempotency-Key": "burst-over-http"}
    barrier = threading.Barrier(20)
    results = []

    def submit():
        barrier.wait()
        response = requests.post(url, data=payload, headers=headers, timeout=30)
        results.append((response.status_code, response.json().get("id")))

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(code for code, _ in results) == [200] * 19 + [201], results
    (request_id,) = {request_id for _, request_id in results}
    queue = requests.get(url, headers=coordinator, timeout=10).json()["items"]
    assert [item["id"] for item in queue] == [request_id]

    # A compressed filing, then cheap polling with If-None-Match.
    compressed = requests.post(
        url,
        data=gzip.compress(json.dumps(body()).encode()),
        headers={**medic, "Content-Type": "application/json", "Content-Encoding": "gzip"},
        timeout=10,
    )
    assert compressed.status_code == 201
    first = requests.get(f"{url}/{request_id}", headers=coordinator, timeout=10)
    assert first.status_code == 200 and first.headers["ETag"]
    again = requests.get(
        f"{url}/{request_id}", headers={**coordinator, "If-None-Match": first.headers["ETag"]}, timeout=10
    )
    assert again.status_code == 304 and again.content == b""
