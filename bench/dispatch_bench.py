"""Dispatch speed: recommendations, mass-casualty plan, position reports (issue 4, "Speed").

Run: PYTHONPATH=. .venv/bin/python bench/dispatch_bench.py [--redis redis://127.0.0.1:6379/0] [--quick]

Each figure is printed with a baseline measured in the same run, so the ratio shows the overhead:
- recommendations: the same number of bare geodesic distance computations a naive engine needs (one per
  asset and one per facility, with casevac.geo.distance_km);
- plan: the geodesic computations a naive cost matrix needs (requests x (assets + facilities));
- position reports in-process: bare Redis round trips (PING) from the same process;
- position reports through a real server (`bin/serve`: gunicorn, one gevent worker, a private redis-server,
  SQLite, the sweeper flushing the track): bare `GET /healthz` requests on the same server, loaded the same
  way (separate load-generator processes, keep-alive HTTP/1.1 connections).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import cpu_model, percentile
from casevac.dispatch import plan as mass_casualty
from casevac.dispatch import rules as dispatch
from casevac.dispatch import service as dispatch_service
from casevac.dispatch.states import AssetState, CasualtyClock, EvacuationNeed, FacilityState
from casevac.geo import distance_km

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
        assets.append(
            AssetState(
                id=f"A{i}",
                callsign=f"A{i}",
                kind=kind,
                capabilities=frozenset(caps),
                litter_capacity=RNG.choice([2, 4, 6]),
                ambulatory_capacity=RNG.choice([2, 4]),
                cruise_speed_kmh=220 if kind != "ground_ambulance" else 50,
                readiness_minutes=RNG.choice([5, 10, 15, 30]),
                status=RNG.choice(["available"] * 8 + ["tasked", "maintenance"]),
                position=point(),
            )
        )
    return assets


def make_facilities(m):
    return [
        FacilityState(
            id=f"F{j}",
            name=f"F{j}",
            level=RNG.choice(["1", "1", "1+", "2", "3"]),
            capabilities=frozenset(c for c in ("damage_control_surgery", "icu") if RNG.random() < 0.4),
            status=RNG.choice(["normal"] * 8 + ["diverting", "closed"]),
            beds_available=RNG.randint(0, 20),
            helipad=RNG.random() < 0.7,
            location=point(),
        )
        for j in range(m)
    ]


def make_need(i=0):
    precedence = RNG.choice(["urgent_surgical", "urgent", "urgent", "priority", "routine"])
    return EvacuationNeed(
        pickup=point(),
        patients={precedence: 1},
        litter=1,
        ambulatory=0,
        filed_at=NOW,
        deadline=NOW + timedelta(hours={"priority": 4, "routine": 24}.get(precedence, 1)),
        casualties=(CasualtyClock(precedence, NOW - timedelta(minutes=10)),),
        request_id=f"R{i}",
    )


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
        dispatch.recommend(need, assets, facilities, now=NOW, road_factor=1.4, limit=10)
        times.append(time.perf_counter() - start)
    baseline = statistics.median(bare_geodesics(1100) for _ in range(3))
    p50, p99 = percentile(times, 50) * 1000, percentile(times, 99) * 1000
    print(
        f"recommend, 1000 assets x 100 facilities, {runs} requests: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"(target p99 < 20 ms)"
    )
    print(
        f"  baseline: 1,100 bare geodesic distances {baseline * 1000:.1f} ms; p99 / baseline = "
        f"{p99 / (baseline * 1000):.2f}"
    )
    return p99


def bench_plan(runs):
    assets, facilities = make_assets(200), make_facilities(20)
    for a_i, a in enumerate(assets):  # the plan only uses available assets: make them all count
        assets[a_i] = a._replace(status="available")
    needs = [make_need(i) for i in range(50)]
    mass_casualty.plan(needs, assets, facilities, now=NOW, road_factor=1.4)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = mass_casualty.plan(needs, assets, facilities, now=NOW, road_factor=1.4)
        times.append(time.perf_counter() - start)
    used = [a["asset_id"] for a in result["assignments"]]
    assert len(used) == len(set(used))
    baseline = bare_geodesics(50 * 220)
    worst = max(times) * 1000
    print(
        f"plan, 50 requests x 200 assets x 20 facilities: median {statistics.median(times) * 1000:.0f} ms, "
        f"max {worst:.0f} ms over {runs} runs (target < 500 ms); {len(result['assignments'])} assigned, "
        f"{len(result['unserved'])} unserved"
    )
    print(
        f"  baseline: 11,000 bare geodesic distances (a naive cost matrix) {baseline * 1000:.0f} ms; "
        f"max / baseline = {worst / (baseline * 1000):.2f}"
    )


def bench_positions(redis_url, count, batch_size):
    import redis as redis_lib

    tmp = tempfile.mkdtemp()
    os.environ.setdefault("APP_ENV", "test")
    from flask_migrate import upgrade

    from config.app import create_app
    from config.extensions import db
    from config.settings import Settings

    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(
        ENV="test",
        DATABASE_URL=f"sqlite:///{tmp}/bench.db",
        REDIS_URL=redis_url,
        REDIS_PREFIX=prefix,
        LOG_LEVEL="WARNING",
        SWEEPER_INTERVAL_SECONDS=3600.0,
    )
    app = create_app(settings)
    client = redis_lib.Redis.from_url(redis_url)
    with app.app_context():
        upgrade()
        from casevac.fleet import device_tokens, positions
        from casevac.fleet.models import Asset
        from casevac.fleet.positions import LiveStore
        from core.models import Mission, User

        mission = Mission(code="BENCH", name="bench")
        db.session.add(mission)
        db.session.flush()
        user = User(username="bench-coord", password_hash="x", role="coordinator", mission_id=mission.id)
        assets = [
            Asset(
                mission_id=mission.id,
                callsign=f"B{i}",
                kind="ground_ambulance",
                capabilities=[],
                litter_capacity=2,
                ambulatory_capacity=2,
                cruise_speed_kmh=50,
                readiness_minutes=5,
                base_lat=4.4,
                base_lon=18.5,
            )
            for i in range(50)
        ]
        db.session.add_all([user, *assets])
        db.session.commit()
        redis_client = app.extensions["redis"]
        tokens = {}
        for asset in assets:
            tokens[asset.id] = device_tokens.issue_device_token(
                db.session, actor=user, asset_id=asset.id, store=LiveStore(redis_client, prefix)
            )["device_token"]

        start = time.perf_counter()
        for _ in range(count):
            client.ping()
        ping = count / (time.perf_counter() - start)

        # A device's report as the view makes it: token checked in Redis, one Lua call, the volatile emit.
        start = time.perf_counter()
        for i in range(count):
            asset = assets[i % len(assets)]
            device_tokens.report_as_device(
                db.session,
                token=tokens[asset.id],
                asset_id=asset.id,
                batch=False,
                fixes=[{"lat": 4.4 + i * 1e-6, "lon": 18.5, "heading": 90.0, "speed_kmh": 40.0}],
                store=LiveStore(redis_client, prefix),
            )
        service_rate = count / (time.perf_counter() - start)

        batches = max(1, count // batch_size)
        start = time.perf_counter()
        for i in range(batches):
            asset = assets[i % len(assets)]
            device_tokens.report_as_device(
                db.session,
                token=tokens[asset.id],
                asset_id=asset.id,
                batch=True,
                fixes=[
                    {"lat": 4.4 + j * 1e-6, "lon": 18.5, "heading": 90.0, "speed_kmh": 40.0} for j in range(batch_size)
                ],
                store=LiveStore(redis_client, prefix),
            )
        batch_rate = batches * batch_size / (time.perf_counter() - start)

        start = time.perf_counter()
        flushed = positions.flush_track(db.session, store=LiveStore(redis_client, prefix))
        flush_rate = flushed / (time.perf_counter() - start)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    print(
        f"position reports with Redis, in-process service calls (no HTTP), one thread: single fixes "
        f"{service_rate:,.0f}/s; batches of {batch_size} {batch_rate:,.0f} fixes/s"
    )
    print(
        f"  baseline: bare Redis PING round trips {ping:,.0f}/s; single / baseline = {service_rate / ping:.2f}, "
        f"batched fixes / baseline = {batch_rate / ping:.2f}"
    )
    print(f"  track flush to the database (SQLite): {flush_rate:,.0f} fixes/s ({flushed} fixes)")


# ---------------------------------------------------------------- through a real server


def _http_request(method: str, path: str, host: str, headers: dict, body: bytes = b"") -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        "Connection: keep-alive",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _keep_alive_connection(host, port, requests_, start, stop, tally):
    """One keep-alive HTTP/1.1 connection sending the prepared requests in turn (one in flight), counting
    responses by status and sampling latencies between `start` and `stop` (time.monotonic())."""
    import asyncio

    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    try:
        while True:
            sent = time.monotonic()
            if sent >= stop:
                return
            writer.write(requests_[i % len(requests_)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                elif name.strip().lower() == b"transfer-encoding":
                    raise RuntimeError("chunked responses are not expected from these endpoints")
            if length:
                await reader.readexactly(length)
            done = time.monotonic()
            if sent >= start:
                tally["status"][status] = tally["status"].get(status, 0) + 1
                if len(tally["latency"]) < 200_000:
                    tally["latency"].append(done - sent)
            if b"connection: close" in head.lower():
                raise RuntimeError(f"the server closed the keep-alive connection (status {status})")
    finally:
        writer.close()


def _load_generator(host, port, requests_, connections, start_at, seconds, results):
    """A load-generator process: `connections` keep-alive connections in one asyncio loop, measuring from
    `start_at` (time.time(), shared by all generators) for `seconds`."""
    import asyncio

    async def run():
        delay = start_at - time.time()
        start = time.monotonic() + max(delay, 0)
        tally = {"status": {}, "latency": []}
        await asyncio.gather(
            *(_keep_alive_connection(host, port, requests_, start, start + seconds, tally) for _ in range(connections))
        )
        return tally

    cpu_before = time.process_time()
    tally = asyncio.run(run())
    tally["cpu_seconds"] = time.process_time() - cpu_before
    results.put(tally)


def load(
    url: str, requests_: list[bytes], *, seconds: float, generators: int, connections: int, warmup: float = 1.0
) -> dict:
    """Drive the server at `url` from `generators` separate processes; -> {rate, status, p50_ms, p99_ms,
    client_cpu}: responses per second over the measured window (after `warmup` seconds)."""
    import multiprocessing
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + 1.5 + warmup  # spawned interpreters need a moment to start
    processes = [
        context.Process(
            target=_load_generator,
            args=(parts.hostname, parts.port, requests_, connections, start_at, seconds, results),
        )
        for _ in range(generators)
    ]
    for process in processes:
        process.start()
    tallies, deadline = [], time.monotonic() + seconds + 120
    while len(tallies) < len(processes):
        try:
            tallies.append(results.get(timeout=1))
        except queue.Empty:
            failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                raise RuntimeError(f"a load generator failed (exit codes {failed})") from None
    for process in processes:
        process.join()
    status: dict = {}
    latency: list = []
    for tally in tallies:
        for code, count in tally["status"].items():
            status[code] = status.get(code, 0) + count
        latency += tally["latency"]
    return {
        "rate": sum(status.values()) / seconds,
        "status": status,
        "ok": sum(c for code, c in status.items() if 200 <= code < 300) / seconds,
        "p50_ms": percentile(latency, 50) * 1000 if latency else float("nan"),
        "p99_ms": percentile(latency, 99) * 1000 if latency else float("nan"),
        "client_cpu": sum(t["cpu_seconds"] for t in tallies) / (seconds + 1.5 + warmup),
    }


def bench_positions_server(seconds: float, generators: int, connections: int, batch_size: int) -> None:
    """Single fixes and batches through a real server process, each beside GET /healthz on the same server."""
    from pathlib import Path

    import requests

    from tests.e2e.conftest import PrivateRedis, Server, server_env

    workdir = Path(tempfile.mkdtemp(prefix="bench-positions-"))
    redis_server = PrivateRedis(workdir).start()
    server = Server(server_env(workdir, REDIS_URL=redis_server.url, LOG_LEVEL="WARNING"), workdir / "server.log")
    try:
        server.start()
        host = f"127.0.0.1:{server.port}"
        login = requests.post(
            f"{server.url}/api/v1/auth/login",
            timeout=30,
            json={"username": "demo-coordinator", "password": server.env["DEMO_PASSWORD"]},
        )
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assets = requests.get(f"{server.url}/api/v1/assets", headers=bearer, timeout=30).json()["items"]
        devices = {
            a["id"]: requests.post(
                f"{server.url}/api/v1/assets/{a['id']}/device-token", headers=bearer, timeout=30
            ).json()["device_token"]
            for a in assets
        }
        rng = random.Random(7)

        def fix(k):
            return {
                "lat": round(4.3 + rng.uniform(-0.2, 0.2), 6),
                "lon": round(18.5 + rng.uniform(-0.2, 0.2), 6),
                "heading": rng.randrange(360),
                "speed_kmh": rng.randrange(120),
            }

        def prepared(make_body, auth_for, count=400):
            out = []
            for k in range(count):
                asset_id = assets[k % len(assets)]["id"]
                out.append(
                    _http_request(
                        "POST",
                        f"/api/v1/assets/{asset_id}/positions",
                        host,
                        auth_for(asset_id),
                        json.dumps(make_body(k)).encode(),
                    )
                )
            return out

        device = lambda asset_id: {"Authorization": f"Device {devices[asset_id]}"}  # noqa: E731
        coordinator = lambda asset_id: bearer  # noqa: E731
        healthz = [_http_request("GET", "/healthz", host, {})]
        print(
            f"position reports through a real server (bin/serve: gunicorn, 1 gevent worker; private Redis; "
            f"SQLite; sweeper on), {generators} load-generator process(es) x {connections} keep-alive "
            f"connections, {seconds:.0f} s per figure"
        )

        import redis as redis_lib

        live = redis_lib.Redis.from_url(redis_server.url)
        stream = f"{server.env.get('REDIS_PREFIX', 'medevac')}:fleet:track"

        def drained():
            """Seconds the server takes to move the fixes still in the Redis stream into the track table (a
            track read flushes the stream first, as the sweeper does every few seconds)."""
            start = time.monotonic()
            response = requests.get(
                f"{server.url}/api/v1/assets/{assets[0]['id']}/positions?limit=1", headers=bearer, timeout=300
            )
            assert response.status_code == 200, response.text
            return time.monotonic() - start

        def run(name, requests_, fixes_per_request=1):
            result = load(server.url, requests_, seconds=seconds, generators=generators, connections=connections)
            errors = {code: n for code, n in result["status"].items() if not 200 <= code < 300}
            backlog = live.xlen(stream)
            drain = drained() if backlog else 0.0
            rate = result["ok"] * fixes_per_request
            print(
                f"  {name}: {rate:,.0f} "
                + ("fixes/s" if fixes_per_request > 1 else "requests/s")
                + (f" ({result['ok']:,.0f} requests/s)" if fixes_per_request > 1 else "")
                + f", p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms"
                + (f", NOT ACCEPTED: {errors}" if errors else "")
                + f"; load generators used {result['client_cpu']:.0%} of a core; "
                f"load average {os.getloadavg()[0]:.2f}"
            )
            if backlog:
                # The sweeper shares the process: a rate it cannot flush would not be sustainable.
                print(
                    f"    track: {backlog:,} fixes still in the Redis stream at the end (the sweeper flushes "
                    f"every few seconds), moved to the database by the next track read in {drain:.2f} s "
                    f"({live.xlen(stream)} left); accepted and stored: "
                    f"{rate * seconds / (seconds + drain):,.0f} fixes/s"
                )
            return rate

        before = run("baseline: GET /healthz", healthz)
        single = run("single fix, device token", prepared(fix, device))
        single_jwt = run("single fix, coordinator bearer token", prepared(fix, coordinator))
        batched = run(
            f"batches of {batch_size} fixes, device token",
            prepared(lambda k: {"fixes": [fix(k) for _ in range(batch_size)]}, device, count=40),
            batch_size,
        )
        after = run("baseline again: GET /healthz", healthz)
        baseline = (before + after) / 2
        print(
            f"  ratios to the baseline (mean of both, {baseline:,.0f} requests/s): single fix (device) "
            f"{single / baseline:.2f}, single fix (bearer) {single_jwt / baseline:.2f}, batched fixes "
            f"{batched / baseline:.2f} (target: 2,000 fixes/s; single {single:,.0f}/s, batched {batched:,.0f}/s)"
        )
    finally:
        server.stop()
        redis_server.stop()


def _recommend_fixture(settings):
    """A migrated SQLite database with 1,000 assets, 100 facilities and one filed request (urgent, one
    litter); -> (app, request id, the coordinator's id, the coordinator's headers). No app context is left
    pushed and no ORM object alive: each HTTP request then gets its own app context and session, as in the
    server (and its teardown is measured with it)."""
    from flask_migrate import upgrade

    from config.app import create_app
    from config.extensions import db

    app = create_app(settings)
    with app.app_context():
        upgrade()
        from casevac.fleet.models import Asset, Facility
        from core.auth import issue_token
        from core.models import Mission, User

        mission = Mission(code="BENCHR", name="bench")
        db.session.add(mission)
        db.session.flush()
        medic = User(username="bench-medic", password_hash="x", role="medic", mission_id=mission.id)
        coordinator = User(username="bench-coordinator", password_hash="x", role="coordinator", mission_id=mission.id)
        rows = []
        for a in make_assets(1000):
            rows.append(
                Asset(
                    mission_id=mission.id,
                    callsign=a.callsign,
                    kind=a.kind,
                    capabilities=sorted(a.capabilities),
                    litter_capacity=a.litter_capacity,
                    ambulatory_capacity=a.ambulatory_capacity,
                    cruise_speed_kmh=a.cruise_speed_kmh,
                    readiness_minutes=a.readiness_minutes,
                    status=a.status,
                    base_lat=a.position[0],
                    tasked_request_id="elsewhere" if a.status == "tasked" else None,
                    base_lon=a.position[1],
                )
            )
        for f in make_facilities(100):
            rows.append(
                Facility(
                    mission_id=mission.id,
                    name=f.name,
                    level=f.level,
                    capabilities=sorted(f.capabilities),
                    status=f.status,
                    beds_available=f.beds_available,
                    helipad=f.helipad,
                    lat=f.location[0],
                    lon=f.location[1],
                )
            )
        db.session.add_all([medic, coordinator, *rows])
        db.session.commit()
        filed = app.test_client().post(
            "/api/v1/casevac/requests",
            headers={"Authorization": f"Bearer {issue_token(medic, 60)}"},
            json={
                "location": {"lat": 5.5, "lon": 20.0},
                "callsign": "B-1",
                "frequency": "38.90",
                "patients": {"urgent": 1},
                "equipment": [],
                "litter": 1,
                "ambulatory": 0,
            },
        )
        assert filed.status_code == 201, filed.get_data(as_text=True)
        headers = {"Authorization": f"Bearer {issue_token(coordinator, 60)}"}
        coordinator_id = coordinator.id
        db.session.remove()
    return app, filed.get_json()["id"], coordinator_id, headers


def bench_recommend_service(
    runs, *, freeze: bool = True, profile: bool = False, postgresql: str | None = None, live_redis: str | None = None
):
    """The same recommendation end to end in-process: load 1,000 assets and 100 facilities from the database
    (SQLite; with `postgresql`, a temporary database on that server, dropped after), build the need from a
    filed request, rank (the service, in one app context); and through HTTP (Flask test client, each request
    in its own app context as in the server; without and with `Accept-Encoding: gzip`, as a browser sends).
    `live_redis`: a Redis URL, every asset with a live fix there (keys under a private prefix, removed after).
    `freeze`: the heap settled after start-up as the server does (wsgi.py, config.app.freeze_heap); False
    shows the cost of not doing it. `profile`: cProfile of the HTTP requests instead of timings."""
    from config.settings import Settings

    database_url, drop = f"sqlite:///{tempfile.mkdtemp()}/bench.db", None
    if postgresql:
        import psycopg

        name = f"bench_{uuid.uuid4().hex[:10]}"
        server = postgresql.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        database_url = server.rsplit("/", 1)[0] + "/" + name

        def drop():
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    prefix = f"benchrec{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(
        ENV="test",
        DATABASE_URL=database_url,
        REDIS_URL=live_redis,
        REDIS_PREFIX=prefix,
        LOG_LEVEL="WARNING",
        SWEEPER_INTERVAL_SECONDS=3600.0,
    )
    try:
        _bench_recommend_service(runs, settings, freeze=freeze, profile=profile)
    finally:
        if live_redis:
            import redis as redis_lib

            client = redis_lib.Redis.from_url(live_redis)
            for key in client.scan_iter(f"{prefix}:*"):
                client.delete(key)
        if drop:
            drop()


def _bench_recommend_service(runs, settings, *, freeze: bool, profile: bool) -> None:
    from config.extensions import db
    from core.models import User

    app, request_id, coordinator_id, headers = _recommend_fixture(settings)
    if settings.REDIS_URL:
        from casevac.fleet import positions
        from casevac.fleet.models import Asset

        with app.app_context():
            store = positions.live_store()
            for asset_id, mission_id, lat, lon in db.session.execute(
                db.select(Asset.id, Asset.mission_id, Asset.base_lat, Asset.base_lon)
            ):
                positions.report_positions(
                    db.session,
                    asset_id=asset_id,
                    mission_id=mission_id,
                    source="coordinator",
                    batch=False,
                    fixes=[{"lat": lat + 0.01, "lon": lon + 0.01, "heading": None, "speed_kmh": None}],
                    store=store,
                )
            db.session.remove()
    http = app.test_client()
    url = f"/api/v1/casevac/requests/{request_id}/recommendations"
    answer = http.get(url, headers=headers)  # warm up (and what the figures are for)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    if freeze:
        from config.app import freeze_heap

        freeze_heap()
    if profile:
        import cProfile
        import pstats

        with cProfile.Profile() as profiler:
            for _ in range(runs):
                http.get(url, headers=headers)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    service_times = []
    with app.app_context():
        from casevac.fleet import positions

        coordinator = db.session.get(User, coordinator_id)
        for _ in range(runs):
            start = time.perf_counter()
            dispatch_service.recommend_for_request(
                db.session,
                actor=coordinator,
                request_id=request_id,
                limit=10,
                settings=settings,
                store=positions.live_store(),
            )
            service_times.append(time.perf_counter() - start)
            db.session.rollback()
        db.session.remove()
    http_times: dict[str, list[float]] = {"identity": [], "gzip": []}
    for encoding, times in http_times.items():
        for _ in range(runs):
            start = time.perf_counter()
            response = http.get(url, headers={**headers, "Accept-Encoding": encoding})
            times.append(time.perf_counter() - start)
            assert response.status_code == 200
    with app.app_context():
        db.engine.dispose()  # a temporary PostgreSQL database is dropped next
    baseline = statistics.median(bare_geodesics(1100) for _ in range(3))
    body = answer.get_json()

    def ms(times, q):
        return f"{percentile(times, q) * 1000:.1f}"

    backend = "PostgreSQL" if settings.DATABASE_URL.startswith("postgresql") else "SQLite"
    print(
        f"recommend end to end ({backend} load of 1000 assets + 100 facilities"
        f"{', a live fix in Redis for each' if settings.REDIS_URL else ''}, rank), {runs} runs, "
        f"heap {'frozen' if freeze else 'not frozen'}: "
        f"service p50 {ms(service_times, 50)} ms, p99 {ms(service_times, 99)} ms;"
        f" HTTP p50 {ms(http_times['identity'], 50)} ms, p99 {ms(http_times['identity'], 99)} ms;"
        f" HTTP gzip p50 {ms(http_times['gzip'], 50)} ms, p99 {ms(http_times['gzip'], 99)} ms"
    )
    print(
        f"  answer: {len(body['options'])} options, {len(body['excluded_assets'])} excluded assets, "
        f"{len(body['excluded_facilities'])} excluded facilities, night {body['night']}, "
        f"{len(answer.get_data()):,} bytes (gzip {len(response.get_data()):,})"
    )
    print(f"  baseline: 1,100 bare geodesic distances {baseline * 1000:.1f} ms")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--only",
        choices=("positions", "positions-server", "recommend-service"),
        help="run one group: in-process position reports, through a real server, or recommendations end to end",
    )
    parser.add_argument("--runs", type=int, default=100, help="recommend-service: runs per figure")
    parser.add_argument("--no-freeze", action="store_true", help="recommend-service: leave the heap unfrozen")
    parser.add_argument(
        "--postgresql",
        nargs="?",
        const=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="recommend-service: on PostgreSQL (a temporary database on this URL's server) instead of SQLite",
    )
    parser.add_argument(
        "--live-fixes", action="store_true", help="recommend-service: every asset with a live fix in Redis (--redis)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="recommend-service: cProfile of the HTTP requests instead of timings"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per figure through the real server")
    parser.add_argument("--generators", type=int, default=1, help="load-generator processes")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections per generator")
    parser.add_argument("--batch", type=int, default=50, help="fixes per batched report")
    args = parser.parse_args()
    import platform

    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"Python {platform.python_version()}"
    )
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.only is None:
        bench_recommend(50 if args.quick else 300)
        bench_recommend_service(20 if args.quick else 100)
        bench_plan(3 if args.quick else 10)
    if args.only == "recommend-service":
        bench_recommend_service(
            args.runs,
            freeze=not args.no_freeze,
            profile=args.profile,
            postgresql=args.postgresql,
            live_redis=args.redis if args.live_fixes else None,
        )
    if args.only in (None, "positions"):
        bench_positions(args.redis, 1000 if args.quick else 5000, args.batch)
    if args.only in (None, "positions-server"):
        bench_positions_server(3 if args.quick else args.seconds, args.generators, args.connections, args.batch)


if __name__ == "__main__":
    main()
