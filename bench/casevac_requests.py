"""CASEVAC request throughput and queue latency, each with a baseline measured in the same run.

    PYTHONPATH=. .venv/bin/python bench/casevac_requests.py [--requests 2000] [--database-url URL]

Figures: filing latency (POST /api/v1/casevac/requests, 9-line with one MIST-AT casualty) against
GET /healthz through the same stack (the framework's floor); queue page latency (GET /requests?limit=50)
with and without the geodesic `near` filter, against the bare geodesic computations it needs.
Default database: a fresh SQLite file in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import percentile


def timed(func, repeat):
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def describe(name, samples, baseline=None):
    p50, p99 = statistics.median(samples), percentile(samples, 99)
    ratio = f"  ({p50 / statistics.median(baseline):.1f}x baseline p50)" if baseline else ""
    print(f"{name:<58} p50 {p50:8.3f} ms  p99 {p99:8.3f} ms{ratio}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000, help="requests in the queue")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    os.environ.setdefault("APP_ENV", "test")
    tmp = tempfile.mkdtemp(prefix="bench-casevac-")
    url = args.database_url or f"sqlite:///{tmp}/bench.db"

    from flask_migrate import upgrade

    from casevac import geo
    from config.app import create_app
    from config.extensions import db
    from config.settings import Settings
    from core import service as accounts
    from core.auth import issue_token

    app = create_app(
        Settings.from_env(
            ENV="test", DATABASE_URL=url, REDIS_URL=None, LOG_LEVEL="WARNING", SWEEPER_INTERVAL_SECONDS=3600.0
        )
    )
    with app.app_context():
        upgrade()
        mission = accounts.create_mission(db.session, actor=None, code="BENCH", name="Bench")
        medic = accounts.create_user(
            db.session,
            actor=None,
            username="bench-medic",
            password="long-enough-pw",
            role="medic",
            mission_id=mission.id,
        )
        coordinator = accounts.create_user(
            db.session,
            actor=None,
            username="bench-coord",
            password="long-enough-pw",
            role="coordinator",
            mission_id=mission.id,
        )
        medic_auth = {"Authorization": f"Bearer {issue_token(medic, 600)}"}
        coord_auth = {"Authorization": f"Bearer {issue_token(coordinator, 600)}"}
    client = app.test_client()
    rng = random.Random(7)
    casualty = {
        "zap": "A-1",
        "age": 27,
        "time_of_injury": datetime.now(timezone.utc).isoformat(),
        "mechanism": "blast",
        "injuries": ["left leg"],
        "signs": {"pulse": 120, "spo2": 93},
        "treatments": [{"code": "tourniquet"}],
        "precedence": "urgent",
    }

    def body():
        precedence = rng.choice(["urgent", "urgent_surgical", "priority", "routine"])
        # Requests spread over a 400 km square around Bangui.
        return {
            "location": {"lat": 4.36 + rng.uniform(-1.8, 1.8), "lon": 18.55 + rng.uniform(-1.8, 1.8)},
            "callsign": "BRAVO-2-6",
            "frequency": "38.90",
            "patients": {precedence: 1},
            "litter": 1,
            "ambulatory": 0,
            "equipment": ["hoist"],
            "casualties": [casualty],
        }

    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}, database {url.split(':')[0]}, {datetime.now(timezone.utc):%Y-%m-%d}"
    )
    healthz = timed(lambda: client.get("/healthz"), 300)
    describe("baseline: GET /healthz (same stack, no auth, no database)", healthz)
    me = timed(lambda: client.get("/api/v1/auth/me", headers=medic_auth), 300)
    describe("baseline: GET /auth/me (token check, one user read)", me, healthz)

    def file_one():
        response = client.post("/api/v1/casevac/requests", json=body(), headers=medic_auth)
        assert response.status_code == 201, response.get_data(as_text=True)

    filing = timed(file_one, args.requests)
    describe(f"POST /casevac/requests (9-line + 1 casualty), {args.requests}x", filing, me)
    print(f"{'':<58} throughput {1000 / statistics.mean(filing):8.1f} filings/s (one thread)")
    retry_body = {**body(), "client_ref": "bench-retry"}
    client.post("/api/v1/casevac/requests", json=retry_body, headers=medic_auth)
    describe(
        "POST retry with the same client_ref (200)",
        timed(lambda: client.post("/api/v1/casevac/requests", json=retry_body, headers=medic_auth), 200),
        me,
    )

    queue = timed(lambda: client.get("/api/v1/casevac/requests?limit=50", headers=coord_auth), 200)
    describe(f"GET queue, 50 of {args.requests + 1} requests", queue, me)
    near_url = "/api/v1/casevac/requests?limit=50&near=4.36,18.55&radius_km=60"
    near = timed(lambda: client.get(near_url, headers=coord_auth), 100)
    describe("GET queue near=Bangui radius 60 km (geodesic filter)", near, me)
    with app.app_context():
        from casevac.requests.models import CasevacRequest

        lat_min, lat_max, ranges = geo.bounding_box(4.36, 18.55, 60)
        points = db.session.execute(
            db.select(CasevacRequest.lat, CasevacRequest.lon).where(CasevacRequest.lat.between(lat_min, lat_max))
        ).all()
    points = [(lat, lon) for lat, lon in points if any(w <= lon <= e for w, e in ranges)]
    bare = timed(lambda: [geo.distance_km((4.36, 18.55), p) for p in points], 50)
    describe(f"baseline: {len(points)} bare geodesic distances (the box's rows)", bare)
    print(
        f"{'':<58} near-filter overhead over its geodesic work: "
        f"{statistics.median(near) / statistics.median(bare):.1f}x"
    )


if __name__ == "__main__":
    main()
