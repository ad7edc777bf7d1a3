"""The TAK gateway (issue 15): CoT events per second from a TAK client to committed requests, beside the TAK
server's own relay rate in the same run; acknowledgement-to-GeoChat latency.

    PYTHONPATH=. .venv/bin/python bench/tak_gateway.py [--events 300] [--acks 40] [--db postgresql|sqlite]

Starts taky (tests/casevac/tak/taky_server.py, its own venv), one server (bin/serve) on a fresh database and
the gateway (`flask tak-gateway`). A scripted ATAK client sends N distinct MEDEVAC events back to back; a
second client on the same TAK server counts them arriving (the server's relay rate: the baseline), while the
database is polled until the gateway has committed all N requests (the gateway's rate). Then a coordinator
acknowledges requests one at a time; the latency is from the start of POST .../status to the GeoChat
reaching the filing client.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import cpu_model, percentile  # noqa: E402
from tests.casevac.tak import taky_server  # noqa: E402
from tests.casevac.tak.atak_client import AtakClient, chat_id, medevac_event  # noqa: E402
from tests.e2e.conftest import Server, login, pg_database_url, server_env  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--acks", type=int, default=40)
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    args = parser.parse_args()
    taky_server.install()
    tmp = Path(tempfile.mkdtemp(prefix="tak-bench-"))
    pg = pg_database_url() if args.db == "postgresql" else None
    url = next(pg) if pg else f"sqlite:///{tmp / 'bench.db'}"
    taky = taky_server.Taky(tmp).start()
    server = Server(server_env(tmp, DATABASE_URL=url), tmp / "server.log").start()
    env = {
        **server.env,
        "TAK_URL": f"tcp://127.0.0.1:{taky.port}",
        "TAK_MISSION": "DEMO",
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
    }
    gateway = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "flask", "--app", "wsgi", "tak-gateway"],
        cwd=ROOT,
        env=env,
        stdout=open(tmp / "gateway.log", "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    sender = AtakClient(taky.port, uid="ANDROID-bench-sender", callsign="BENCH-MEDIC")
    watcher = AtakClient(taky.port, uid="ANDROID-bench-watcher", callsign="BENCH-WATCH")
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        sender.connect()
        watcher.connect()
        sender.wait_for(lambda e: e.uid == "medevac-gateway-demo", timeout=90, what="the gateway")
        uids = [f"bench-{uuid.uuid4()}" for _ in range(args.events)]
        payloads = [medevac_event(uid, sender.uid) for uid in uids]
        wanted = set(uids)

        def committed() -> int:
            with engine.connect() as conn:
                return conn.execute(
                    sa.text(
                        "SELECT count(*) FROM casevac_requests r JOIN users u ON u.id = r.filed_by "
                        "WHERE u.username = 'tak-gateway-demo'"
                    )
                ).scalar_one()

        before = committed()
        start = time.perf_counter()
        sender.send(b"".join(payloads))
        relay_done = gateway_done = None
        deadline = time.monotonic() + 600
        while (relay_done is None or gateway_done is None) and time.monotonic() < deadline:
            if relay_done is None and len({e.uid for e in watcher.seen(lambda e: e.uid in wanted)}) == len(wanted):
                relay_done = time.perf_counter() - start
            if gateway_done is None and committed() - before >= args.events:
                gateway_done = time.perf_counter() - start
            time.sleep(0.01)
        if relay_done is None or gateway_done is None:
            raise RuntimeError(f"not all events arrived: relay {relay_done}, gateway {gateway_done}")

        auth = {"Authorization": f"Bearer {login(server, 'demo-coordinator')}"}
        items = requests.get(
            f"{server.url}/api/v1/casevac/requests", params={"active": "true", "limit": 500}, headers=auth, timeout=30
        ).json()["items"]
        ids = [r["id"] for r in items if r["status"] == "requested"][: args.acks]
        latencies, posts = [], []
        for request_id in ids:
            t0 = time.perf_counter()
            response = requests.post(
                f"{server.url}/api/v1/casevac/requests/{request_id}/status",
                json={"status": "acknowledged"},
                headers=auth,
                timeout=30,
            )
            assert response.status_code == 200, response.text
            posts.append((time.perf_counter() - t0) * 1000)
            sender.wait_for(
                lambda e, rid=request_id: chat_id(e) == f"medevac-{rid}-acknowledged", timeout=60, what="GeoChat"
            )
            latencies.append((time.perf_counter() - t0) * 1000)

        gateway_rate, relay_rate = args.events / gateway_done, args.events / relay_done
        print(
            f"machine: {cpu_model()}, {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}; db {args.db}; "
            f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC"
        )
        print(
            f"{args.events} MEDEVAC events: taky relayed them to another client in {relay_done:.2f} s "
            f"({relay_rate:.0f} events/s); the gateway committed them as requests in {gateway_done:.2f} s "
            f"({gateway_rate:.1f} events/s); ratio gateway/relay {gateway_rate / relay_rate:.3f}"
        )
        print(
            f"acknowledgement -> GeoChat at the medic's client ({len(latencies)}): "
            f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms; of which the POST "
            f"itself (baseline: the API's answer) p50 {percentile(posts, 50):.1f} ms, "
            f"p99 {percentile(posts, 99):.1f} ms"
        )
    finally:
        sender.close()
        watcher.close()
        if gateway.poll() is None:
            os.killpg(gateway.pid, signal.SIGTERM)
            gateway.wait(20)
        server.stop()
        taky.stop()
        engine.dispose()
        if pg:
            next(pg, None)


if __name__ == "__main__":
    main()
