"""Mass-casualty load test (issue 8): 2 server processes + Redis + PostgreSQL (private instances on free
loopback ports), N coordinators connected over Socket.IO (asyncio clients in child processes:
bench/clientfleet.py), M medics filing CASEVAC requests in a burst, every asset (20 by default, each with its
device token) reporting its position every 2 s.

Reports filing latency p50/p99 (POST /casevac/requests -> 201), alert latency p50/p99 (POST start ->
`casevac.created` received, per coordinator and request), events missed live and events lost after `sync`
(must be 0), errors (must be 0), peak memory (peak RSS of each server worker), and a baseline measured in the
same run: GET /healthz at the same pace from the same threads (the cost of HTTP + the server, no database).

    PYTHONPATH=. .venv/bin/python bench/load_masscas.py            # 200 requests / 10 s / 50 medics / 300 coordinators
    PYTHONPATH=. .venv/bin/python bench/load_masscas.py --quick    # 40 / 4 s / 10 / 30: a smoke run

Loopback only; every loop is bounded in count and time (--timeout, default 600 s); everything it starts is
stopped at the end. Exit status 1 when events were lost or requests failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cpu_model, percentile  # noqa: E402

SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789"
DEMO_PASSWORD = "bench-password-123"
BANGUI = (4.3947, 18.5582)
PRECEDENCES = ("urgent", "urgent_surgical", "priority", "routine")
POSITION_REPORTERS = 4


def ms(ns: float) -> float:
    return ns / 1e6


# ------------------------------------------------------------------------------------------------------------
# Servers and data


def peak_rss_kb(master_pid: int) -> dict:
    """VmHWM (peak RSS) of a server's processes: the gunicorn master and its worker."""
    pids = [master_pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == master_pid:
                pids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    peaks = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[pid] = int(line.split()[1])
        except OSError:
            pass
    return peaks


def prepare_users(database_url: str, medics: int, coordinators: int) -> dict:
    """Bench users, inserted directly with the demo users' password hash (hashing 350 passwords with argon2
    would dominate the set-up), and their tokens minted by the application's own code."""
    from config.app import create_app
    from config.extensions import db
    from config.settings import Settings
    from core.auth import issue_token
    from core.models import Mission, User

    app = create_app(
        Settings.from_env(ENV="production", DATABASE_URL=database_url, SECRET_KEY=SECRET_KEY, LOG_LEVEL="WARNING")
    )
    with app.app_context():
        mission = db.session.execute(db.select(Mission).where(Mission.code == "DEMO")).scalar_one()
        template = db.session.execute(db.select(User).where(User.username == "demo-medic")).scalar_one()
        run = uuid.uuid4().hex[:6]
        made = {"medic": [], "coordinator": []}
        for role, count in (("medic", medics), ("coordinator", coordinators)):
            for i in range(count):
                user = User(
                    username=f"bench-{run}-{role}-{i}",
                    password_hash=template.password_hash,
                    role=role,
                    mission_id=mission.id,
                    display_name=f"Bench {role} {i}",
                )
                db.session.add(user)
                made[role].append(user)
        db.session.commit()
        tokens = {role: [issue_token(u, 120) for u in users] for role, users in made.items()}
        coordinator = db.session.execute(db.select(User).where(User.username == "demo-coordinator")).scalar_one()
        tokens["demo-coordinator"] = issue_token(coordinator, 120)
        db.engine.dispose()
    return tokens


def register_assets(url: str, headers: dict, count: int) -> list[dict]:
    """`count` assets of the demo mission, each with a device token: the seeded demo assets first, then
    assets registered through the API. Returns [{"id", "callsign", "token"}]."""
    import requests

    listed = requests.get(url + "/api/v1/assets", headers=headers, params={"limit": 500}, timeout=30)
    listed.raise_for_status()
    assets = listed.json()["items"][:count]
    for n in range(len(assets), count):
        response = requests.post(
            url + "/api/v1/assets",
            headers=headers,
            timeout=30,
            json={
                "callsign": f"BENCH-{n}",
                "kind": "ground_ambulance" if n % 2 else "rotary_wing",
                "capabilities": ["medical_crew"],
                "litter_capacity": 4,
                "ambulatory_capacity": 2,
                "cruise_speed_kmh": 60 if n % 2 else 220,
                "readiness_minutes": 10,
                "base": {"name": "Bangui", "lat": BANGUI[0], "lon": BANGUI[1]},
            },
        )
        response.raise_for_status()
        assets.append(response.json())
    out = []
    for asset in assets:
        issued = requests.post(f"{url}/api/v1/assets/{asset['id']}/device-token", headers=headers, timeout=30)
        issued.raise_for_status()
        out.append({"id": asset["id"], "callsign": asset["callsign"], "token": issued.json()["device_token"]})
    return out


def filing_body(i: int) -> dict:
    precedence = PRECEDENCES[i % len(PRECEDENCES)]
    patients = {p: 0 for p in ("urgent", "urgent_surgical", "priority", "routine", "convenience")}
    patients[precedence] = 1 + i % 2
    total = sum(patients.values())
    return {
        "client_ref": str(uuid.uuid4()),
        "location": {"lat": BANGUI[0] + (i % 17) * 0.01, "lon": BANGUI[1] + (i % 13) * 0.01},
        "callsign": f"BRAVO-{i % 9}-{i % 7}",
        "frequency": "38.90",
        "patients": patients,
        "equipment": ["hoist"] if i % 5 == 0 else [],
        "litter": total,
        "ambulatory": 0,
    }


# ------------------------------------------------------------------------------------------------------------


def run(args) -> dict:
    import requests

    from bench.clientfleet import ClientFleet
    from tests.e2e.conftest import Server, free_port
    from tests.e2e.faults import PrivatePostgres, PrivateRedis

    deadline = time.monotonic() + args.timeout
    started: list = []
    tmp = Path(os.environ.get("BENCH_TMP", "/tmp")) / f"masscas-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    result: dict = {}
    try:
        pg = PrivatePostgres()
        started.append(pg.destroy)
        pg.start()
        pg.create_database()
        redis_server = PrivateRedis().start()
        started.append(redis_server.stop)
        base_env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        base_env.update(
            {
                "BIND": "127.0.0.1",
                "APP_ENV": "production",
                "SECRET_KEY": SECRET_KEY,
                "DATABASE_URL": pg.url,
                "REDIS_URL": redis_server.url,
                "REDIS_PREFIX": "bench",
                "DEMO_PASSWORD": DEMO_PASSWORD,
                "VENV": str(ROOT / ".venv"),
                "LOG_LEVEL": "WARNING",
                # Each websocket holds a thread of the gunicorn worker.
                "THREADS": str(max(100, args.coordinators // args.servers + 100)),
                "WORKER_CLASS": args.worker_class,
                "SOCKETIO_ASYNC_MODE": "gevent" if args.worker_class == "gevent" else "threading",
                "LOGIN_LIMIT_PER_ADDRESS": "100000 per minute",
                "LOGIN_LIMIT_PER_ACCOUNT": "100000 per minute",
            }
        )
        servers = []
        for n in range(args.servers):
            env = dict(base_env, PORT=str(free_port()), SEED_DEMO="1" if n == 0 else "0")
            server = Server(env, tmp / f"server-{n}.log").start(timeout=120)
            started.append(server.stop)
            servers.append(server)
        urls = [s.url for s in servers]
        tokens = prepare_users(pg.url, args.medics, args.coordinators)
        coord_headers = {"Authorization": f"Bearer {tokens['demo-coordinator']}"}
        assets = register_assets(urls[0], coord_headers, args.assets)

        # Coordinators connect (client i to server i % servers), asyncio clients in child processes.
        fleet = ClientFleet(args.client_procs, track="casevac.created", reconnection=True)
        started.append(fleet.close)
        report = fleet.connect(
            [(urls[i % len(urls)], token) for i, token in enumerate(tokens["coordinator"])],
            timeout=max(10, deadline - time.monotonic()),
        )
        connected, connect_errors = report["connected"], report["errors"]

        sessions = [requests.Session() for _ in range(args.medics)]
        for s, token in zip(sessions, tokens["medic"], strict=False):
            s.headers["Authorization"] = f"Bearer {token}"

        def paced(n: int, task) -> list:
            """n calls spread evenly over args.seconds, by args.medics threads (open-loop arrivals)."""
            t0 = time.monotonic() + 0.5
            interval = args.seconds / n

            def one(i):
                delay = t0 + i * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                return task(i)

            with ThreadPoolExecutor(max_workers=args.medics) as pool:
                return list(pool.map(one, range(n)))

        # Baseline: liveness requests at the same pace, from the same threads, against the same servers.
        def healthz(i):
            begin = time.monotonic_ns()
            response = sessions[i % args.medics].get(urls[i % len(urls)] + "/healthz", timeout=30)
            return time.monotonic_ns() - begin, response.status_code

        baseline = paced(args.requests, healthz)

        # Every asset reports its position every --position-interval seconds during the burst, with its own
        # device token (Authorization: Device), spread over the servers, from a few reporter threads.
        stop_positions = threading.Event()
        position_stats = {"sent": 0, "errors": 0, "codes": {}, "latency_ns": []}
        stats_lock = threading.Lock()

        def report_positions(share: list[tuple[int, dict]]):
            session = requests.Session()
            k = 0
            while not stop_positions.is_set() and time.monotonic() < deadline:
                tick = time.monotonic()
                for a, asset in share:
                    k += 1
                    body = {
                        "lat": BANGUI[0] + 0.001 * (k % 100),
                        "lon": BANGUI[1] + 0.001 * a,
                        "heading": (k * 7) % 360,
                        "speed_kmh": 180,
                    }
                    begin = time.monotonic_ns()
                    try:
                        response = session.post(
                            f"{urls[a % len(urls)]}/api/v1/assets/{asset['id']}/positions",
                            json=body,
                            headers={"Authorization": f"Device {asset['token']}"},
                            timeout=10,
                        )
                        code = response.status_code
                    except requests.RequestException:
                        code = -1
                    with stats_lock:
                        position_stats["sent"] += 1
                        position_stats["codes"][code] = position_stats["codes"].get(code, 0) + 1
                        if 200 <= code < 300:
                            position_stats["latency_ns"].append(time.monotonic_ns() - begin)
                        else:
                            position_stats["errors"] += 1
                stop_positions.wait(max(0.0, args.position_interval - (time.monotonic() - tick)))

        indexed = list(enumerate(assets))
        reporters = [
            threading.Thread(target=report_positions, args=(indexed[r::POSITION_REPORTERS],), daemon=True)
            for r in range(min(POSITION_REPORTERS, len(assets)))
        ]
        for reporter in reporters:
            reporter.start()

        filings: dict[str, int] = {}
        statuses: dict[int, int] = {}

        def file_one(i):
            begin = time.monotonic_ns()
            begin_s = time.monotonic()  # the clients' receipt times are time.monotonic() (system-wide)
            try:
                response = sessions[i % args.medics].post(
                    urls[i % len(urls)] + "/api/v1/casevac/requests", json=filing_body(i), timeout=30
                )
                code = response.status_code
                rid = response.json().get("id") if code == 201 else None
            except requests.RequestException as exc:
                code, rid = type(exc).__name__, None
            end = time.monotonic_ns()
            statuses[code] = statuses.get(code, 0) + 1
            if rid:
                filings[rid] = begin_s
            return end - begin, code

        burst_started = time.monotonic()
        filed = paced(args.requests, file_one)
        burst_seconds = time.monotonic() - burst_started
        stop_positions.set()
        for reporter in reporters:
            reporter.join(timeout=30)

        # Give live delivery a bounded grace period; then what came live, then what each client's sync returns.
        time.sleep(min(args.grace, max(0, deadline - time.monotonic())))
        collected = fleet.collect()
        synced = fleet.sync(timeout=max(30, deadline - time.monotonic()))
        collected_errors = fleet.collect()["errors"]  # sync errors included
        alert_latencies, missed_live, lost = [], 0, 0
        for client, synced_ids in zip(collected["clients"], synced, strict=False):
            synced_ids = set(synced_ids)
            for rid, begin in filings.items():
                if rid in client["received"]:
                    alert_latencies.append((client["received"][rid][0] - begin) * 1e9)
                else:
                    missed_live += 1
                    if rid not in synced_ids:
                        lost += 1
        positions_received = sum(c["counts"].get("asset.position", 0) for c in collected["clients"])
        client_errors = collected_errors
        memory = {f"server-{n}": peak_rss_kb(s.process.pid) for n, s in enumerate(servers)}
        filing_ns = [d for d, code in filed if code == 201]
        baseline_ns = [d for d, code in baseline if code == 200]
        result = {
            "scenario": {
                "servers": args.servers,
                "worker_class": args.worker_class,
                "medics": args.medics,
                "requests": args.requests,
                "seconds": args.seconds,
                "coordinators": args.coordinators,
                "assets": len(assets),
                "position_interval_s": args.position_interval,
                "client_processes": args.client_procs,
            },
            "connected_coordinators": connected,
            "burst_seconds": round(burst_seconds, 2),
            "filed_201": len(filings),
            "filing_statuses": statuses,
            "filing_latency_ms": {
                "p50": round(ms(percentile(filing_ns, 50)), 1),
                "p99": round(ms(percentile(filing_ns, 99)), 1),
                "max": round(ms(max(filing_ns, default=0)), 1),
            },
            "baseline_healthz_ms": {
                "p50": round(ms(percentile(baseline_ns, 50)), 1),
                "p99": round(ms(percentile(baseline_ns, 99)), 1),
            },
            "alert_latency_ms": {
                "p50": round(ms(percentile(alert_latencies, 50)), 1),
                "p99": round(ms(percentile(alert_latencies, 99)), 1),
                "samples": len(alert_latencies),
            },
            "events_expected": len(filings) * connected,
            "events_missed_live": missed_live,
            "events_lost_after_sync": lost,
            "client_drops_during_run": sum(c["drops"] for c in collected["clients"]),
            "positions": {
                "sent": position_stats["sent"],
                "errors": position_stats["errors"],
                "codes": position_stats["codes"],
                "latency_ms": {
                    "p50": round(ms(percentile(position_stats["latency_ns"], 50)), 1),
                    "p99": round(ms(percentile(position_stats["latency_ns"], 99)), 1),
                },
                "asset.position received by coordinators": positions_received,
            },
            "errors": (args.requests - len(filings))
            + position_stats["errors"]
            + len(connect_errors)
            + len(client_errors)
            + (args.coordinators - connected),
            "error_samples": (connect_errors + client_errors)[:5],
            "peak_rss_mb": {name: round(sum(p.values()) / 1024, 1) for name, p in memory.items()},
            "client_peak_rss_mb": [round(kb / 1024, 1) for kb in collected["peak_rss_kb"]],
        }
        if result["filing_latency_ms"]["p50"] and result["baseline_healthz_ms"]["p50"]:
            result["ratio_filing_p50_to_baseline"] = round(
                result["filing_latency_ms"]["p50"] / result["baseline_healthz_ms"]["p50"], 1
            )
        return result
    finally:
        for stop in reversed(started):
            try:
                stop()
            except Exception as exc:  # noqa: BLE001
                print(f"cleanup: {exc}", file=sys.stderr)
        if result:
            (tmp / "result.json").write_text(json.dumps(result, indent=2))
        print(f"server logs and result: {tmp}", file=sys.stderr)


def machine() -> str:
    return (
        f"{os.cpu_count()} cores ({subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} "
        f"usable), {cpu_model()}, Python {platform.python_version()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--medics", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--coordinators", type=int, default=300)
    parser.add_argument("--position-interval", type=float, default=2.0)
    parser.add_argument(
        "--assets",
        type=int,
        default=20,
        help="assets reporting positions (the 7 demo assets and as many more registered)",
    )
    parser.add_argument(
        "--client-procs",
        type=int,
        default=3,
        help="child processes holding the coordinators' asyncio clients (bench/clientfleet.py)",
    )
    parser.add_argument(
        "--worker-class",
        default="gevent",
        choices=["gthread", "gevent"],
        help="gunicorn worker of the servers (bin/serve WORKER_CLASS)",
    )
    parser.add_argument("--grace", type=float, default=5.0, help="seconds to wait for live delivery after the burst")
    parser.add_argument("--timeout", type=float, default=600.0, help="hard bound on the whole run")
    parser.add_argument("--quick", action="store_true", help="40 requests / 4 s / 10 medics / 30 coordinators")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.seconds, args.medics, args.coordinators = 40, 4, 10, 30
    print(f"mass-casualty load test, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine()}")
    result = run(args)
    print(json.dumps(result, indent=2))
    ok = (
        result.get("events_lost_after_sync") == 0
        and result.get("errors") == 0
        and result.get("filed_201") == args.requests
    )
    print("PASS" if ok else "FAIL: events lost or errors (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
