"""Other clients' latency while one client floods the server with emits (issue 17, per-socket limits).

    PYTHONPATH=. .venv/bin/python bench/socket_flood.py [--flood 1800] [--others 5] [--mode gevent|gthread]

One real server (bin/serve, SQLite, the demo seeded). `others` clients each call `sync` in a loop and record the
round-trip time. Phases: (1) no flood: the baseline of this run; (2) one client emits `flood` `sync` events as
fast as it can. Run with the per-socket limit (SOCKET_EVENTS_BURST=20, 5 per second: the defaults) and
without it (a bucket too large to matter), on a new server each. Prints p50/p95 of the others' latency per phase
and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import socketio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import cpu_model, percentile  # noqa: E402
from tests.e2e.conftest import Server, login, server_env  # noqa: E402


def _measure(server, tokens, seconds: float, flood: int | None, flood_token: str | None) -> list[float]:
    clients = []
    for token in tokens:
        client = socketio.Client(reconnection=False)
        client.connect(server.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        clients.append(client)
    latencies: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def _loop(client):
        while not stop.is_set():
            start = time.perf_counter()
            try:
                client.call("sync", {"since": 0}, timeout=30)
            except Exception:  # noqa: BLE001 - a timeout counts as 30 s
                pass
            with lock:
                latencies.append(time.perf_counter() - start)
            time.sleep(0.05)

    threads = [threading.Thread(target=_loop, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    flooder = None
    if flood:
        flooder = socketio.Client(reconnection=False)
        flooder.connect(server.url, auth={"token": flood_token}, transports=["websocket"], wait_timeout=10)
        for _ in range(flood):
            if not flooder.connected:
                break
            try:
                flooder.emit("sync", {"since": 0})
            except Exception:  # noqa: BLE001 - disconnected by the server
                break
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(35)
    for client in clients + ([flooder] if flooder else []):
        if client.connected:
            client.disconnect()
    return latencies


def run(mode: str, limited: bool, flood: int, others: int, seconds: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="flood-"))
    extra = {} if limited else {"SOCKET_EVENTS_BURST": "100000000", "SOCKET_EVENTS_PER_SECOND": "100000000"}
    server = Server(
        server_env(
            tmp,
            WORKER_CLASS=mode,
            THREADS="100",
            LOG_LEVEL="WARNING",
            LOGIN_LIMIT_PER_ACCOUNT="1000 per minute",
            **extra,
        ),
        tmp / "server.log",
    ).start()
    try:
        tokens = [login(server, "demo-admin") for _ in range(others)]
        flood_token = login(server, "demo-coordinator")
        baseline = _measure(server, tokens, seconds, None, None)
        flooded = _measure(server, tokens, seconds, flood, flood_token)
    finally:
        server.stop()
    return {"baseline": baseline, "flooded": flooded}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flood", type=int, default=1800)
    parser.add_argument("--others", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--mode", default="gevent", choices=["gevent", "gthread"])
    args = parser.parse_args()
    print(f"machine: {cpu_model()}; mode {args.mode}; flood {args.flood} emits; {args.others} other clients")
    for limited in (True, False):
        result = run(args.mode, limited, args.flood, args.others, args.seconds)
        base50, base95 = percentile(result["baseline"], 50), percentile(result["baseline"], 95)
        f50, f95 = percentile(result["flooded"], 50), percentile(result["flooded"], 95)
        label = "with the per-socket limit" if limited else "without it"
        print(
            f"{label:28s} baseline p50 {base50 * 1000:7.1f} ms p95 {base95 * 1000:7.1f} ms | "
            f"during the flood p50 {f50 * 1000:7.1f} ms p95 {f95 * 1000:7.1f} ms | "
            f"ratio p50 {f50 / base50:5.1f}x p95 {f95 / base95:5.1f}x (n={len(result['flooded'])})"
        )


if __name__ == "__main__":
    main()
