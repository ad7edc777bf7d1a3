"""Fan-out latency, sync catch-up and memory per idle connection (issue 5, "Speed").

    PYTHONPATH=. .venv/bin/python bench/realtime_fanout.py [--clients 500] [--filings 50] [--mode gevent|threads]

Starts a private redis-server, a fresh PostgreSQL database and 2 server processes (bin/serve, one gunicorn
worker each), connects N coordinator clients spread over both, and measures the time from the start of
POST /api/v1/casevac/requests to the receipt of casevac.created by every client (p50, p99). Baseline in
the same run: 2 bare Flask-SocketIO processes (bench/bare_socketio.py, same Redis, same serving mode)
broadcasting the same payload on POST /fire. Then: a client that missed 10,000 events catches up with
sync; and the server's resident memory per idle connection.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
import socketio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import cpu_model, percentile  # noqa: E402
from bench.clientfleet import ClientFleet  # noqa: E402
from tests.casevac.conftest import body  # noqa: E402
from tests.e2e.conftest import (  # noqa: E402
    PrivateRedis,
    Server,
    free_port,
    pg_database_url,
    start_servers,
    stop_servers,
)

PASSWORD = "demo-password-123"


def serving_env(mode: str, clients_per_process: int) -> dict:
    # Threads: every open websocket holds a worker thread, so THREADS must exceed the connections.
    if mode == "gevent":
        return {"WORKER_CLASS": "gevent", "SOCKETIO_ASYNC_MODE": "gevent"}
    return {"WORKER_CLASS": "gthread", "THREADS": str(clients_per_process + 50)}


def rss_kb(pid: int) -> int:
    """Resident memory of a process and its children (gunicorn master + worker)."""
    total = 0
    pids = [pid] + [
        int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    ]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children (gunicorn master + worker)."""
    total = 0
    pids = [pid] + [
        int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    ]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        except FileNotFoundError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def gunicorn_pid(server: Server) -> int:
    # bin/serve execs gunicorn: the process started is the gunicorn master.
    return server.process.pid


def measure(fire, fleet: ClientFleet, filings: int) -> tuple[dict[str, list[float]], list[float]]:
    """Per server URL: receipt time (the fleet's time.monotonic, system-wide) minus the start of the request,
    per client and filing, in ms; and the response time of each request, in ms."""
    latencies: dict[str, list[float]] = {}
    responses = []
    for _ in range(filings):
        started = time.monotonic()
        key = fire()
        responses.append((time.monotonic() - started) * 1000)
        for url, times in fleet.arrivals(key).items():
            latencies.setdefault(url, []).extend((t - started) * 1000 for t in times)
        time.sleep(0.05)
    return latencies, responses


def flat(by_url: dict[str, list[float]]) -> list[float]:
    return [v for values in by_url.values() for v in values]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--filings", type=int, default=50)
    parser.add_argument("--missed", type=int, default=10_000)
    parser.add_argument("--mode", choices=("threads", "gevent"), default="gevent")
    parser.add_argument(
        "--client-procs", type=int, default=4, help="child processes holding the asyncio clients (bench/clientfleet.py)"
    )
    args = parser.parse_args()
    per_process = args.clients // 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-rt-"))
    print(f"server logs: {workdir}", flush=True)
    redis_server = PrivateRedis(workdir).start()
    db_gen = pg_database_url()
    database_url = next(db_gen)
    env = dict(
        serving_env(args.mode, per_process),
        DATABASE_URL=database_url,
        REDIS_URL=redis_server.url,
        LOGIN_LIMIT_PER_ACCOUNT="10000 per minute",
        LOGIN_LIMIT_PER_ADDRESS="10000 per minute",
        LOG_LEVEL="WARNING",
    )
    servers, bare, fleet, bare_fleet = [], [], None, None
    try:
        servers = start_servers(workdir, 2, **env)
        login = requests.post(
            f"{servers[0].url}/api/v1/auth/login",
            json={"username": "demo-coordinator", "password": PASSWORD},
            timeout=30,
        ).json()
        coordinator = login["access_token"]
        medic = requests.post(
            f"{servers[0].url}/api/v1/auth/login", json={"username": "demo-medic", "password": PASSWORD}, timeout=30
        ).json()["access_token"]
        memory_before = [rss_kb(gunicorn_pid(s)) for s in servers]
        fleet = ClientFleet(args.client_procs)
        report = fleet.connect([(server.url, coordinator) for server in servers for _ in range(per_process)])
        if report["errors"]:
            print(f"app clients not connected: {2 * per_process - report['connected']}, e.g. {report['errors'][0]}")
        time.sleep(2)
        memory_after = [rss_kb(gunicorn_pid(s)) for s in servers]
        per_connection_kb = sum(a - b for a, b in zip(memory_after, memory_before, strict=False)) / (2 * per_process)

        def file_one():
            response = requests.post(
                f"{servers[0].url}/api/v1/casevac/requests",
                json=body(client_ref=str(uuid.uuid4())),
                headers={"Authorization": f"Bearer {medic}"},
                timeout=30,
            )
            assert response.status_code == 201, response.text
            return response.json()["id"]

        measure(file_one, fleet, 3)  # warm-up, fan-out included (a filing must not overlap the previous fan-out)
        cpu_before = [cpu_seconds(gunicorn_pid(s)) for s in servers]
        app_latencies, app_responses = measure(file_one, fleet, args.filings)
        app_cpu = [
            (cpu_seconds(gunicorn_pid(s)) - b) * 1000 / args.filings for s, b in zip(servers, cpu_before, strict=False)
        ]
        app_dropped = 2 * per_process - fleet.connected()
        fleet.close()

        # Baseline: bare Flask-SocketIO, same Redis, same serving mode.
        for _ in range(2):
            port = free_port()
            cmd = [
                str(ROOT / ".venv/bin/gunicorn"),
                "bench.bare_socketio:app",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
            ]
            if args.mode == "gevent":
                cmd += ["-k", "gevent"]
            else:
                cmd += ["--threads", str(per_process + 50)]
            process = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env={
                    **os.environ,
                    "REDIS_URL": redis_server.url,
                    "CHANNEL": f"bare-{workdir.name}",
                    "SOCKETIO_ASYNC_MODE": "gevent" if args.mode == "gevent" else "threading",
                    "PYTHONPATH": str(ROOT),
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            bare.append((process, f"http://127.0.0.1:{port}"))
        for _, url in bare:
            for _ in range(300):
                try:
                    requests.get(url + "/healthz", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            else:
                raise RuntimeError(f"the baseline server {url} did not answer GET /healthz after 300 tries")
        bare_fleet = ClientFleet(args.client_procs)
        report = bare_fleet.connect([(url, None) for _, url in bare for _ in range(per_process)])
        if report["errors"]:
            print(f"baseline clients not connected: {2 * per_process - report['connected']}")
        time.sleep(2)
        payload = {
            k: v
            for k, v in requests.get(
                f"{servers[0].url}/api/v1/casevac/requests?limit=1",
                headers={"Authorization": f"Bearer {coordinator}"},
                timeout=10,
            )
            .json()["items"][0]
            .items()
        }

        def fire_one():
            key = str(uuid.uuid4())
            requests.post(f"{bare[0][1]}/fire", json={**payload, "id": key}, timeout=30)
            return key

        measure(fire_one, bare_fleet, 3)  # warm-up
        cpu_before = [cpu_seconds(process.pid) for process, _ in bare]
        bare_latencies, bare_responses = measure(fire_one, bare_fleet, args.filings)
        bare_cpu = [
            (cpu_seconds(process.pid) - b) * 1000 / args.filings
            for (process, _), b in zip(bare, cpu_before, strict=False)
        ]
        bare_dropped = 2 * per_process - bare_fleet.connected()
        bare_fleet.close()

        # Catch-up: a client that missed N events syncs them all.
        from sqlalchemy import create_engine, insert, text

        from core import clock
        from realtime.models import Event

        # The late client is away while the servers emit the N events live: one canary per server watches
        # the live fan-out end, so the timed catch-up below measures `sync`, not a live flood overlapping it.
        live_done = [threading.Event() for _ in servers]
        canaries = []
        engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
        last_id = str(args.missed - 1)  # sequenced in insert order: the last one inserted is emitted last
        for server, done in zip(servers, live_done, strict=False):
            canary = socketio.Client(reconnection=False)
            canary.on(
                "casevac.updated",
                lambda envelope, done=done: done.set() if envelope["data"].get("id") == last_id else None,
            )
            canary.connect(server.url, auth={"token": coordinator}, transports=["websocket"])
            canaries.append(canary)
        with engine.begin() as conn:
            since = conn.execute(text("SELECT coalesce(max(seq), 0) FROM events")).scalar()
            mission_id = login["user"]["mission_id"]
            conn.execute(
                insert(Event.__table__),
                [
                    {
                        "type": "casevac.updated",
                        "rooms": [f"mission:{mission_id}:role:coordinator"],
                        "data": {"id": str(n), "status": "acknowledged", "precedence": "urgent"},
                        "mission_id": mission_id,
                        "at": clock.now(),
                    }
                    for n in range(args.missed)
                ],
            )
        deadline = time.monotonic() + 120
        while True:  # the relays sequence them
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM events WHERE seq IS NULL")).scalar() == 0:
                    break
            if time.monotonic() > deadline:
                engine.dispose()
                raise RuntimeError("the relays did not sequence the missed events within 120 s")
            time.sleep(0.2)
        engine.dispose()
        for done in live_done:
            if not done.wait(120):
                raise RuntimeError("the servers did not finish emitting the missed events live within 120 s")
        for canary in canaries:
            canary.disconnect()
        late = socketio.Client(reconnection=False)
        late.connect(servers[1].url, auth={"token": coordinator}, transports=["websocket"])
        started = time.perf_counter()
        got, cursor, pages = 0, since, 0
        while True:
            ack = late.call("sync", {"since": cursor, "limit": 1000}, timeout=60)
            got += len(ack["events"])
            cursor, pages = ack["last_seq"], pages + 1
            if not ack["more"]:
                break
        catch_up = time.perf_counter() - started
        late.disconnect()

        print(
            f"machine: nproc={os.cpu_count()} cpu={cpu_model()} load={os.getloadavg()[0]:.1f} "
            f"date={time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} mode={args.mode} "
            f"client processes={args.client_procs}"
        )
        print(f"fan-out, {2 * per_process} coordinator clients on 2 processes + Redis, {args.filings} filings:")
        app50, app99 = percentile(flat(app_latencies), 50), percentile(flat(app_latencies), 99)
        bare50, bare99 = percentile(flat(bare_latencies), 50), percentile(flat(bare_latencies), 99)
        print(f"  POST /casevac/requests -> casevac.created at every client: p50 {app50:.1f} ms, p99 {app99:.1f} ms")
        print(f"  baseline bare Flask-SocketIO broadcast:                    p50 {bare50:.1f} ms, p99 {bare99:.1f} ms")
        for name, by_url, responses, posted_to, cpu in (
            ("app", app_latencies, app_responses, servers[0].url, app_cpu),
            ("baseline", bare_latencies, bare_responses, bare[0][1], bare_cpu),
        ):
            split = ", ".join(
                f"{'posted-to' if url == posted_to else 'other'} process p50 "
                f"{percentile(v, 50):.1f} / p99 {percentile(v, 99):.1f} ms"
                for url, v in sorted(by_url.items(), key=lambda kv: kv[0] != posted_to)
            )
            print(
                f"    {name}: HTTP response p50 {percentile(responses, 50):.1f} ms; {split}; "
                f"server CPU per filing {' + '.join(f'{c:.1f}' for c in cpu)} ms"
            )
        print(f"  clients dropped during the run: app {app_dropped}, baseline {bare_dropped}")
        print(f"  ratio app/baseline: p50 {app50 / bare50:.2f}x, p99 {app99 / bare99:.2f}x")
        print(f"sync catch-up of {got} missed events ({pages} pages of 1000): {catch_up:.2f} s")
        print(
            f"server memory per idle connection: {per_connection_kb:.0f} KiB "
            f"(RSS {sum(memory_before) // 1024} -> {sum(memory_after) // 1024} MiB for {2 * per_process})"
        )
    finally:
        for each in (fleet, bare_fleet):
            if each is not None:
                each.close()
        for process, _ in bare:
            os.killpg(process.pid, signal.SIGTERM)
        stop_servers(servers)
        redis_server.stop()
        db_gen.close()


if __name__ == "__main__":
    main()
