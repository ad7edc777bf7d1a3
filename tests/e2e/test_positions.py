"""Position reports end to end: two server processes (bin/serve) sharing PostgreSQL and a private Redis.
A device token revoked or rotated through one process is refused by the other at the very next report;
batches reported through one are read back, newest first, through the other (issue 4)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.e2e.conftest import deployment

pytestmark = pytest.mark.e2e

PASSWORD = "demo-password-123"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    with deployment(tmp_path_factory.mktemp("positions"), 2) as (servers, _redis):
        yield servers


def test_revocation_through_one_process_holds_in_the_other_at_once(pair):
    a, b = pair
    token = requests.post(
        f"{a.url}/api/v1/auth/login", timeout=10, json={"username": "demo-coordinator", "password": PASSWORD}
    ).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    asset = requests.get(f"{a.url}/api/v1/assets", headers=bearer, timeout=10).json()["items"][0]
    positions = f"/api/v1/assets/{asset['id']}/positions"

    def device_token(server):
        response = requests.post(f"{server.url}/api/v1/assets/{asset['id']}/device-token", headers=bearer, timeout=10)
        assert response.status_code == 201, response.text
        return {"Authorization": f"Device {response.json()['device_token']}"}

    def report(server, auth, body):
        return requests.post(server.url + positions, json=body, headers=auth, timeout=10)

    now = datetime.now(timezone.utc)
    fixes = [
        {"lat": 4.30 + i / 100, "lon": 18.50, "reported_at": (now - timedelta(seconds=30 - i)).isoformat()}
        for i in range(5)
    ]
    first = device_token(a)
    # Both processes learn the asset and its token hash.
    assert (
        report(
            a, first, {"lat": 4.29, "lon": 18.5, "reported_at": (now - timedelta(minutes=1)).isoformat()}
        ).status_code
        == 202
    )
    batch = report(b, first, {"fixes": list(reversed(fixes))})
    assert batch.status_code == 202, batch.text
    assert batch.json() == {"asset_id": asset["id"], "accepted": 5, "latest": True, "latest_index": 0}
    shown = requests.get(f"{a.url}/api/v1/assets/{asset['id']}", headers=bearer, timeout=10).json()["position"]
    assert shown["lat"] == pytest.approx(4.34)
    track = requests.get(a.url + positions, headers=bearer, timeout=10).json()["items"]
    assert [round(p["lat"], 2) for p in track][-5:] == [4.30, 4.31, 4.32, 4.33, 4.34]

    second = device_token(a)  # rotation through process a
    assert report(b, first, {"lat": 4.4, "lon": 18.5}).status_code == 401
    assert report(b, second, {"lat": 4.4, "lon": 18.5}).status_code == 202
    revoked = requests.delete(f"{b.url}/api/v1/assets/{asset['id']}/device-token", headers=bearer, timeout=10)
    assert revoked.status_code == 204  # revocation through process b
    for server in (a, b):
        assert report(server, second, {"fixes": [{"lat": 4.4, "lon": 18.5}]}).status_code == 401
