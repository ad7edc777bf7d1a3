"""Dispatch speed: recommendations, mass-casualty plan, position reports (issue 4, "Speed").

Run: PYTHONPATH=. .venv/bin/python bench/dispatch_bench.py [--redis redis://127.0.0.1:6379/0] [--quick]

Each figure is printed with a baseline measured in the same run, so the ratio shows the overhead:
- recommendations: the same number of bare geodesic distance computations a naive engine needs (one per
  asset and one per facility, with casevac.geo.distance_km);
- plan: the geodesic computations a naive cost matrix needs (requests x (assets + facilities));
- position reports: bare Redis round trips (PING) from the same process.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from casevac import dispatch  # noqa: E402
from casevac.dispatch import AssetState, Casualty, EvacuationNeed, FacilityState  # noqa: E402
from casevac.geo import distance_km  # noqa: E402

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
RNG = random.Random(42)


def point():
    # The Central African Republic, roughly.
    return (RNG.uniform(2.5, 10.5), RNG.uniform(15.0, 26.0))


def make_assets(n):
    kinds = ["rotary_wing"] * 2 + ["ground_ambulance"] * 7 + ["fixed_wing"]
    assets = []
    for i in range(n):
        kind = RNG.choice(kinds)
        caps = {c for c in ("medical_crew", "night", "hoist", "armored", "ventilator") if RNG.random() < 0.3}
        assets.append(AssetState(id=f"A{i}", callsign=f"A{i}", kind=kind, capabilities=frozenset(caps),
                                 litter_capacity=RNG.choice([2, 4, 6]), ambulatory_capacity=RNG.choice([2, 4]),
                                 cruise_speed_kmh=220 if kind != "ground_ambulance" else 50,
                                 readiness_minutes=RNG.choice([5, 10, 15, 30]),
                                 status=RNG.choice(["available"] * 8 + ["tasked", "maintenance"]), position=point()))
    return assets


def make_facilities(m):
    return [FacilityState(id=f"F{j}", name=f"F{j}", level=RNG.choice(["1", "1", "1+", "2", "3"]),
                          capabilities=frozenset(c for c in ("damage_control_surgery", "icu") if RNG.random() < 0.4),
                          status=RNG.choice(["normal"] * 8 + ["diverting", "closed"]),
                          beds_available=RNG.randint(0, 20), helipad=RNG.random() < 0.7, location=point())
            for j in range(m)]


def make_need(i=0):
    precedence = RNG.choice(["urgent_surgical", "urgent", "urgent", "priority", "routine"])
    return EvacuationNeed(pickup=point(), patients={precedence: 1}, litter=1, ambulatory=0, filed_at=NOW,
                          deadline=NOW + timedelta(hours={"priority": 4, "routine": 24}.get(precedence, 1)),
                          casualties=(Casualty(precedence, NOW - timedelta(minutes=10)),), request_id=f"R{i}")


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def bare_geodesics(count):
    pairs = [(point(), point()) for _ in range(count)]
    start = time.perf_counter()
    for a, b in pairs:
        distance_km(a, b)
    return time.perf_counter() - start


def bench_recommend(runs):
    assets, facilities = make_assets(1000), make_facilities(100)
    needs = [make_need(i) for i in range(runs)]
    dispatch.recommend(needs[0], assets, facilities, now=NOW, road_factor=1.4)  # warm up
    times = []
    for need in needs:
        start = time.perf_counter()
        result = dispatch.recommend(need, assets, facilities, now=NOW, road_factor=1.4, limit=10)
        times.append(time.perf_counter() - start)
        assert result.options or not result.options
    baseline = statistics.median(bare_geodesics(1100) for _ in range(3))
    p50, p99 = percentile(times, 50) * 1000, percentile(times, 99) * 1000
    print(f"recommend, 1000 assets x 100 facilities, {runs} requests: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"(target p99 < 20 ms)")
    print(f"  baseline: 1,100 bare geodesic distances {baseline * 1000:.1f} ms; p99 / baseline = "
          f"{p99 / (baseline * 1000):.2f}")
    return p99


def bench_plan(runs):
    assets, facilities = make_assets(200), make_facilities(20)
    for a_i, a in enumerate(assets):  # the plan only uses available assets: make them all count
        assets[a_i] = a._replace(status="available")
    needs = [make_need(i) for i in range(50)]
    dispatch.plan(needs, assets, facilities, now=NOW, road_factor=1.4)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = dispatch.plan(needs, assets, facilities, now=NOW, road_factor=1.4)
        times.append(time.perf_counter() - start)
    used = [a["asset_id"] for a in result["assignments"]]
    assert len(used) == len(set(used))
    baseline = bare_geodesics(50 * 220)
    worst = max(times) * 1000
    print(f"plan, 50 requests x 200 assets x 20 facilities: median {statistics.median(times) * 1000:.0f} ms, "
          f"max {worst:.0f} ms over {runs} runs (target < 500 ms); {len(result['assignments'])} assigned, "
          f"{len(result['unserved'])} unserved")
    print(f"  baseline: 11,000 bare geodesic distances (a naive cost matrix) {baseline * 1000:.0f} ms; "
          f"max / baseline = {worst / (baseline * 1000):.2f}")


def bench_positions(redis_url, count):
    import redis as redis_lib

    tmp = tempfile.mkdtemp()
    os.environ.setdefault("APP_ENV", "test")
    from config.app import create_app
    from config.extensions import db
    from config.settings import Settings
    from flask_migrate import upgrade

    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(ENV="test", DATABASE_URL=f"sqlite:///{tmp}/bench.db", REDIS_URL=redis_url,
                                 REDIS_PREFIX=prefix, LOG_LEVEL="WARNING", SWEEPER_INTERVAL_SECONDS=3600.0)
    app = create_app(settings)
    client = redis_lib.Redis.from_url(redis_url)
    with app.app_context():
        upgrade()
        from casevac import fleet_service
        from casevac.fleet_models import Asset
        from core.models import Mission, User
        from core.auth import issue_token

        mission = Mission(code="BENCH", name="bench")
        db.session.add(mission)
        db.session.flush()
        user = User(username="bench-coord", password_hash="x", role="coordinator", mission_id=mission.id)
        assets = [Asset(mission_id=mission.id, callsign=f"B{i}", kind="ground_ambulance", capabilities=[],
                        litter_capacity=2, ambulatory_capacity=2, cruise_speed_kmh=50, readiness_minutes=5,
                        base_lat=4.4, base_lon=18.5) for i in range(50)]
        db.session.add_all([user, *assets])
        db.session.commit()
        redis_client = app.extensions["redis"]

        start = time.perf_counter()
        for _ in range(count):
            client.ping()
        ping = count / (time.perf_counter() - start)

        start = time.perf_counter()
        for i in range(count):
            asset = assets[i % len(assets)]
            fleet_service.report_position(db.session, asset=asset, source="device", lat=4.4 + i * 1e-6, lon=18.5,
                                          redis=redis_client, prefix=prefix)
        service_rate = count / (time.perf_counter() - start)

        http = app.test_client()
        headers = {"Authorization": f"Bearer {issue_token(user, 60)}"}
        start = time.perf_counter()
        for i in range(count):
            response = http.post(f"/api/v1/assets/{assets[i % len(assets)].id}/positions",
                                 json={"lat": 4.4, "lon": 18.5 + i * 1e-6}, headers=headers)
            assert response.status_code == 202, response.get_data(as_text=True)
        http_rate = count / (time.perf_counter() - start)

        start = time.perf_counter()
        flushed = fleet_service.flush_track(db.session, redis=redis_client, prefix=prefix)
        flush_rate = flushed / (time.perf_counter() - start)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    print(f"position reports with Redis, one process, one thread: service {service_rate:,.0f}/s, "
          f"HTTP (Flask test client, JWT + role check) {http_rate:,.0f}/s (target >= 2,000/s)")
    print(f"  baseline: bare Redis PING round trips {ping:,.0f}/s; service / baseline = {service_rate / ping:.2f}")
    print(f"  track flush to the database (SQLite): {flush_rate:,.0f} fixes/s ({flushed} fixes)")


def bench_recommend_service(runs):
    """The same recommendation end to end in-process: load 1,000 assets and 100 facilities from the database
    (SQLite), build the need from a filed request, rank; and through HTTP (Flask test client)."""
    tmp = tempfile.mkdtemp()
    from config.app import create_app
    from config.extensions import db
    from config.settings import Settings
    from flask_migrate import upgrade

    settings = Settings.from_env(ENV="test", DATABASE_URL=f"sqlite:///{tmp}/bench.db", REDIS_URL=None,
                                 REDIS_PREFIX="benchrec", LOG_LEVEL="WARNING", SWEEPER_INTERVAL_SECONDS=3600.0)
    app = create_app(settings)
    with app.app_context():
        upgrade()
        from casevac.fleet_models import Asset, Facility
        from core.auth import issue_token
        from core.models import Mission, User

        mission = Mission(code="BENCHR", name="bench")
        db.session.add(mission)
        db.session.flush()
        medic = User(username="bench-medic", password_hash="x", role="medic", mission_id=mission.id)
        coordinator = User(username="bench-coordinator", password_hash="x", role="coordinator",
                           mission_id=mission.id)
        rows = []
        for a in make_assets(1000):
            rows.append(Asset(mission_id=mission.id, callsign=a.callsign, kind=a.kind,
                              capabilities=sorted(a.capabilities), litter_capacity=a.litter_capacity,
                              ambulatory_capacity=a.ambulatory_capacity, cruise_speed_kmh=a.cruise_speed_kmh,
                              readiness_minutes=a.readiness_minutes, status=a.status, base_lat=a.position[0],
                              tasked_request_id="elsewhere" if a.status == "tasked" else None,
                              base_lon=a.position[1]))
        for f in make_facilities(100):
            rows.append(Facility(mission_id=mission.id, name=f.name, level=f.level, capabilities=sorted(f.capabilities),
                                 status=f.status, beds_available=f.beds_available, helipad=f.helipad,
                                 lat=f.location[0], lon=f.location[1]))
        db.session.add_all([medic, coordinator, *rows])
        db.session.commit()
        http = app.test_client()
        filed = http.post("/api/v1/casevac/requests", headers={"Authorization": f"Bearer {issue_token(medic, 60)}"},
                          json={"location": {"lat": 5.5, "lon": 20.0}, "callsign": "B-1", "frequency": "38.90",
                                "patients": {"urgent": 1}, "equipment": [], "litter": 1, "ambulatory": 0})
        assert filed.status_code == 201, filed.get_data(as_text=True)
        request_id = filed.get_json()["id"]
        coordinator = db.session.get(User, coordinator.id)
        service_times = []
        for _ in range(runs):
            start = time.perf_counter()
            dispatch.recommend_for_request(db.session, user=coordinator, request_id=request_id, limit=10,
                                           settings=settings)
            service_times.append(time.perf_counter() - start)
            db.session.rollback()
        headers = {"Authorization": f"Bearer {issue_token(coordinator, 60)}"}
        http_times = []
        for _ in range(runs):
            start = time.perf_counter()
            response = http.get(f"/api/v1/casevac/requests/{request_id}/recommendations", headers=headers)
            http_times.append(time.perf_counter() - start)
            assert response.status_code == 200
    baseline = statistics.median(bare_geodesics(1100) for _ in range(3))
    print(f"recommend end to end (SQLite load of 1000 assets + 100 facilities, rank), {runs} runs: "
          f"service p50 {percentile(service_times, 50) * 1000:.1f} ms, p99 {percentile(service_times, 99) * 1000:.1f} ms;"
          f" HTTP p50 {percentile(http_times, 50) * 1000:.1f} ms, p99 {percentile(http_times, 99) * 1000:.1f} ms")
    print(f"  baseline: 1,100 bare geodesic distances {baseline * 1000:.1f} ms")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"machine: {os.cpu_count()} cores, {cpu}; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
          f"Python {platform.python_version()}")
    bench_recommend(50 if args.quick else 300)
    bench_recommend_service(20 if args.quick else 100)
    bench_plan(3 if args.quick else 10)
    bench_positions(args.redis, 1000 if args.quick else 5000)


if __name__ == "__main__":
    main()
