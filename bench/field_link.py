"""A 9-line over an emulated 2G link (issue 16): filing latency with cut connections, bytes on the wire,
the queue page and a 304 poll, Socket.IO connect; the old client profile is the baseline of the same run.

    PYTHONPATH=. .venv/bin/python bench/field_link.py [--filings 100] [--concurrency 10] [--seed 16]

The link is a TCP proxy on loopback (asyncio, this process): per direction 50 kbit/s (each segment of up to
1460 bytes waits for the link to be free, then its transmission time), 250 ms one way (500 ms round trip)
plus one round trip for the TCP handshake of each new connection, a 1 s stall (a retransmission timeout)
on 5 % of segments, and a share of connections (10 % or 50 %) cut (both sides reset) after a random
byte of the exchange (uniform over the size of that profile's clean exchange, measured first), so a cut
falls before the request arrived, while it is processed, or while the answer comes back. The server is
the real one (bin/serve: gunicorn, gevent, SQLite file, demo data).

A cut is a reset (both ends see it) or, for half of them, silent (nothing more arrives either way; the
client notices by its timeout). The client files lines 1-5 with one of two strategies, always with the
same client_ref, and a filing is accepted at its first 201 or 200:
- retry: one attempt at a time, 10 s of silence allowed, 0.5 s pause after a failure;
- hedge (docs/casevac.md, field clients): a new attempt after a failure or after 2.5 s without an answer
  (a clean filing takes 1.2-2.5 s), the earlier ones kept open for 20 s (at most 8 at once).
Profiles:
- old: the 460-character JWT, the whole request echoed, no compression (the issue's "today");
- new: the 26-character device token (login with device: true), Prefer: return=minimal, gzip accepted.
Duplicates: requests in the queue per client_ref beyond the first (expected 0: the database decides).
Not part of make test.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cpu_model, percentile  # noqa: E402

PASSWORD = "bench-password-123"
SEGMENT = 1460


class Link:
    """The emulated 2G link: a TCP proxy from a loopback port to the server's, in its own event loop."""

    def __init__(
        self,
        upstream: int,
        *,
        rate_bps=50_000,
        rtt=0.5,
        stall_p=0.05,
        stall_s=1.0,
        cut_p=0.0,
        silent_share=0.5,
        cut_span=2500,
        seed=16,
    ):
        self.upstream, self.rate, self.rtt = upstream, rate_bps, rtt
        self.cut_span = cut_span
        self.silent_share = silent_share
        self.stall_p, self.stall_s, self.cut_p = stall_p, stall_s, cut_p
        self.rng = random.Random(seed)
        self.connections: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.port = None
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _handle(self, client_reader, client_writer):
        stats = {"up": 0, "down": 0, "cut": False}
        self.connections.append(stats)
        cut_after = self.rng.uniform(0, self.cut_span) if self.rng.random() < self.cut_p else None
        # A cut is a reset (both ends see it at once) or silent (the link goes dead: nothing more arrives
        # either way, as when the radio drops; the client notices only by its own timeout).
        silent = cut_after is not None and self.rng.random() < self.silent_share
        dead = asyncio.Event()
        await asyncio.sleep(self.rtt)  # SYN, SYN-ACK: one round trip before the first byte goes
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            client_writer.transport.abort()
            return
        writers = (client_writer, up_writer)

        def cut():
            stats["cut"] = True
            if silent:
                dead.set()
                self.loop.call_later(60, lambda: [w.transport.abort() for w in writers])
                return
            for writer in writers:
                writer.transport.abort()

        async def pipe(reader, writer, direction):
            queue: asyncio.Queue = asyncio.Queue()

            async def deliver():
                while True:
                    at, chunk = await queue.get()
                    if chunk is None:
                        writer.close() if not writer.transport.is_closing() else None
                        return
                    delay = at - self.loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if writer.transport.is_closing() or dead.is_set():
                        return
                    writer.write(chunk)
                    stats[direction] += len(chunk)
                    if cut_after is not None and stats["up"] + stats["down"] >= cut_after:
                        cut()
                        return

            deliverer = asyncio.ensure_future(deliver())
            free_at = last = self.loop.time()
            try:
                while True:
                    chunk = await reader.read(SEGMENT)
                    if not chunk:
                        break
                    now = self.loop.time()
                    free_at = max(now, free_at) + len(chunk) * 8 / self.rate
                    at = free_at + self.rtt / 2 + (self.stall_s if self.rng.random() < self.stall_p else 0.0)
                    last = max(last, at)
                    queue.put_nowait((last, chunk))
            except (ConnectionError, OSError):
                pass
            queue.put_nowait((last, None))
            await deliverer

        try:
            await asyncio.gather(pipe(client_reader, up_writer, "up"), pipe(up_reader, client_writer, "down"))
        except (ConnectionError, OSError):
            pass
        finally:
            if not dead.is_set():
                for writer in writers:
                    writer.transport.abort()


# ---- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path, **env_overrides) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        {
            "PORT": str(port),
            "BIND": "127.0.0.1",
            "APP_ENV": "production",
            "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
            "DEMO_PASSWORD": PASSWORD,
            "VENV": str(ROOT / ".venv"),
            "THREADS": "40",
            "LOG_LEVEL": "WARNING",
            "ESCALATE_AFTER_SECONDS": "100000",
            **env_overrides,
        }
    )
    log = open(tmp / f"server-{port}.log", "ab")
    process = subprocess.Popen(
        [str(ROOT / "bin" / "serve")], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((tmp / f"server-{port}.log").read_text()[-2000:])
        try:
            if direct(port, "GET", "/healthz")[0] == 200:
                return process, port
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the server did not start")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def direct(port, method, path, body=None, headers=None, timeout=15):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
        if response.getheader("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        return response.status, (json.loads(raw) if raw else None), response
    finally:
        conn.close()


# ---- the client ----------------------------------------------------------------------------------


def nine_line(n: int, client_ref: str) -> dict:
    return {
        "client_ref": client_ref,
        "location": {"mgrs": "34NBK2863382493"},
        "callsign": f"BRAVO-{n}",
        "frequency": "38.90",
        "patients": {"urgent": 1, "urgent_surgical": 1, "priority": 0, "routine": 0, "convenience": 0},
        "equipment": ["hoist"],
        "litter": 2,
        "ambulatory": 0,
    }


def profile_headers(profile: str, tokens: dict) -> dict:
    if profile == "old":
        return {"Authorization": f"Bearer {tokens['jwt']}", "Content-Type": "application/json"}
    return {
        "Authorization": f"Bearer {tokens['device']}",
        "Content-Type": "application/json",
        "Prefer": "return=minimal",
        "Accept-Encoding": "gzip",
    }


def file_with_retries(link: Link, body: dict, headers: dict, deadline_s: float = 120.0, timeout: float = 10.0) -> dict:
    """Attempts one after the other (each given `timeout` seconds of silence) until a 201/200 answer
    arrives: seconds to acceptance and the attempts made."""
    start = time.monotonic()
    attempts = 0
    data = json.dumps(body, separators=(",", ":")).encode()
    while time.monotonic() - start < deadline_s:
        attempts += 1
        conn = http.client.HTTPConnection("127.0.0.1", link.port, timeout=timeout)
        try:
            conn.request("POST", "/api/v1/casevac/requests", body=data, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status in (200, 201):
                return {"seconds": time.monotonic() - start, "attempts": attempts, "status": response.status}
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(0.5)
    return {"seconds": float("inf"), "attempts": attempts, "status": None}


def _attempt(link: Link, data: bytes, headers: dict, timeout: float) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", link.port, timeout=timeout)
    try:
        conn.request("POST", "/api/v1/casevac/requests", body=data, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status in (200, 201)
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def file_hedged(link: Link, body: dict, headers: dict, *, hedge_after=2.5, in_flight=8, deadline_s=120.0) -> dict:
    """The field client of docs/casevac.md: a new attempt (same client_ref) when the last one failed, or
    after hedge_after seconds without an answer, the earlier ones kept open (at most in_flight at once)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    start = time.monotonic()
    done = threading.Event()
    lock = threading.Lock()
    state = {"attempts": 0, "running": 0, "failed": threading.Event()}

    def run():
        ok = _attempt(link, data, headers, timeout=20)
        with lock:
            state["running"] -= 1
        if ok:
            done.set()
        else:
            state["failed"].set()

    last_start = 0.0
    while not done.is_set() and time.monotonic() - start < deadline_s:
        now = time.monotonic()
        with lock:
            may_start = state["running"] < in_flight and (
                state["attempts"] == 0 or state["failed"].is_set() or now - last_start >= hedge_after
            )
            if may_start:
                state["attempts"] += 1
                state["running"] += 1
                state["failed"].clear()
        if may_start:
            if state["attempts"] > 1 and now - last_start < 0.5:
                time.sleep(0.5)  # after a reset, a short pause before the next attempt
            last_start = time.monotonic()
            threading.Thread(target=run, daemon=True).start()
        done.wait(0.05)
    seconds = time.monotonic() - start if done.is_set() else float("inf")
    return {"seconds": seconds, "attempts": state["attempts"], "status": 201 if done.is_set() else None}


def run_filings(
    server_port, tokens, profile, *, filings, concurrency, cut_p, seed, run_id, strategy="retry", cut_span=2500
):
    link = Link(server_port, cut_p=cut_p, seed=seed, cut_span=cut_span)
    headers = profile_headers(profile, tokens)
    refs = [f"{run_id}-{profile}-{strategy}-{int(cut_p * 100)}-{n}" for n in range(filings)]
    client = file_with_retries if strategy == "retry" else file_hedged
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda n: client(link, nine_line(n, refs[n]), headers), range(filings)))
    return results, refs, link


def duplicates(server_port, tokens, refs) -> int:
    """Requests per client_ref beyond the first, over the medic's whole list (read directly, no link)."""
    seen: dict[str, int] = {}
    cursor = None
    while True:
        path = "/api/v1/casevac/requests?limit=500" + (f"&cursor={cursor}" if cursor else "")
        status, page, _ = direct(server_port, "GET", path, headers={"Authorization": f"Bearer {tokens['jwt']}"})
        for item in page["items"]:
            seen[item["id"]] = 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    # The queue entries carry no client_ref: read each request of this run once (ids are unique).
    wanted = set(refs)
    counts: dict[str, int] = {}
    for request_id in seen:
        _, request, _ = direct(
            server_port,
            "GET",
            f"/api/v1/casevac/requests/{request_id}",
            headers={"Authorization": f"Bearer {tokens['jwt']}"},
        )
        if request["client_ref"] in wanted:
            counts[request["client_ref"]] = counts.get(request["client_ref"], 0) + 1
    missing = len(wanted - set(counts))
    return sum(c - 1 for c in counts.values()) + 1000 * missing  # a missing filing would show as >= 1000


def one_exchange(link: Link, method, path, headers, body=None) -> dict:
    """Bytes on the wire of one request on a fresh connection (no cuts on this link)."""
    before = len(link.connections)
    conn = http.client.HTTPConnection("127.0.0.1", link.port, timeout=30)
    data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    status = response.status
    etag = response.getheader("ETag")
    conn.close()
    time.sleep(0.8)  # the last segments drain through the link
    stats = link.connections[before]
    body_size = len(raw)
    plain = gzip.decompress(raw) if response.getheader("Content-Encoding") == "gzip" else raw
    return {
        "status": status,
        "up": stats["up"],
        "down": stats["down"],
        "body": body_size,
        "identity_body": len(plain),
        "etag": etag,
        "header_bytes_up": stats["up"] - len(data or b""),
    }


def socketio_connect(url: str, token: str, transports, wait_timeout: float) -> float:
    import socketio

    client = socketio.Client(reconnection=False)
    start = time.monotonic()
    try:
        client.connect(url, auth={"token": token}, transports=transports, wait_timeout=wait_timeout)
        return time.monotonic() - start
    except Exception:  # noqa: BLE001 - a failed connect is a figure too
        return float("nan")
    finally:
        try:
            client.disconnect()
        except Exception:  # noqa: BLE001
            pass


def summary(name, results) -> str:
    seconds = [r["seconds"] for r in results]
    ok = [s for s in seconds if s != float("inf")]
    within = sum(1 for s in seconds if s <= 25) / len(seconds) * 100
    retried = sum(1 for r in results if r["attempts"] > 1)
    return (
        f"{name:<24} p50 {statistics.median(ok):5.2f} s  p95 {percentile(ok, 95):5.2f} s  max {max(ok):5.2f} s  "
        f"within 25 s {within:5.1f} %  retried {retried}/{len(results)}"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--filings", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--only-filings", action="store_true", help="bytes per filing and the filing runs only")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-field-link-"))
    print(
        f"machine: {platform.node()} {cpu_model()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    process, port = start_server(tmp)
    try:
        status, login, _ = direct(
            port, "POST", "/api/v1/auth/login", {"username": "demo-medic", "password": PASSWORD, "device": True}
        )
        assert status == 200, login
        tokens = {"jwt": login["access_token"], "device": login["device_token"]}
        _, coordinator, _ = direct(
            port, "POST", "/api/v1/auth/login", {"username": "demo-coordinator", "password": PASSWORD, "device": True}
        )
        print(f"bearer token: JWT {len(tokens['jwt'])} characters, device token {len(tokens['device'])}")
        run_id = uuid.uuid4().hex[:6]

        print("\n# bytes on the wire, one filing (no cuts)")
        clean = Link(port, cut_p=0.0, stall_p=0.0, seed=args.seed)
        sizes = {}
        for profile in ("old", "new"):
            sizes[profile] = one_exchange(
                clean,
                "POST",
                "/api/v1/casevac/requests",
                profile_headers(profile, tokens),
                nine_line(0, f"{run_id}-bytes-{profile}"),
            )
            s = sizes[profile]
            print(
                f"{profile} profile: up {s['up']} B (headers {s['header_bytes_up']} B), down {s['down']} B "
                f"(body {s['body']} B on the wire, {s['identity_body']} B as JSON), status {s['status']}"
            )
        print(
            f"ratio new/old: up {sizes['new']['up'] / sizes['old']['up']:.2f}, "
            f"down {sizes['new']['down'] / sizes['old']['down']:.2f}"
        )

        print("\n# lines 1-5 accepted, through the link (old profile, one attempt at a time = baseline);")
        print("# a connection drawn for a cut is cut at a random byte of its exchange (the clean exchange's size")
        print("# for that profile, measured above): half resets, half silent (the client notices by its timeout)")
        baseline = {}
        for cut_p in (0.10, 0.50):
            for profile, strategy in (("old", "retry"), ("new", "retry"), ("new", "hedge")):
                results, refs, link = run_filings(
                    port,
                    tokens,
                    profile,
                    filings=args.filings,
                    concurrency=args.concurrency,
                    cut_p=cut_p,
                    seed=args.seed,
                    run_id=run_id,
                    strategy=strategy,
                    cut_span=sizes[profile]["up"] + sizes[profile]["down"],
                )
                cuts = sum(1 for c in link.connections if c["cut"])
                p95 = percentile([r["seconds"] for r in results], 95)
                baseline.setdefault(cut_p, p95)
                print(
                    summary(f"{profile}, {strategy}, {int(cut_p * 100)} % cut", results)
                    + f"  cuts {cuts}/{len(link.connections)}  duplicates {duplicates(port, tokens, refs)}"
                    + f"  p95 {p95 / baseline[cut_p]:.2f}x baseline"
                )

        if args.only_filings:
            return
        print("\n# the queue, default page of 50 active requests, as the coordinator")
        queue = {}
        for name, path, headers in (
            (
                "old: JWT, no compression",
                "/api/v1/casevac/requests?active=true",
                {"Authorization": f"Bearer {coordinator['access_token']}"},
            ),
            (
                "new: device token, gzip",
                "/api/v1/casevac/requests?active=true",
                {"Authorization": f"Bearer {coordinator['device_token']}", "Accept-Encoding": "gzip"},
            ),
            (
                "new: device token, gzip, view=compact",
                "/api/v1/casevac/requests?active=true&view=compact",
                {"Authorization": f"Bearer {coordinator['device_token']}", "Accept-Encoding": "gzip"},
            ),
        ):
            queue[name] = one_exchange(clean, "GET", path, headers)
            q = queue[name]
            print(f"{name:<40} body {q['body']:6d} B on the wire ({q['identity_body']} B JSON), down {q['down']} B")
        print("\n# a 304 poll of the queue (If-None-Match)")
        for name, base in (("old", "old: JWT, no compression"), ("new", "new: device token, gzip, view=compact")):
            auth = coordinator["access_token"] if name == "old" else coordinator["device_token"]
            path = "/api/v1/casevac/requests?active=true" + ("&view=compact" if name == "new" else "")
            headers = {"Authorization": f"Bearer {auth}", "If-None-Match": queue[base]["etag"]}
            if name == "new":
                headers["Accept-Encoding"] = "gzip"
            poll = one_exchange(clean, "GET", path, headers)
            print(f"{name} 304 poll: status {poll['status']}, down {poll['down']} B, up {poll['up']} B")

        from core.http import API_HEADERS, SECURITY_HEADERS

        trimmed = {k: v for k, v in SECURITY_HEADERS.items() if k not in API_HEADERS}
        print(
            f"page-only security headers no longer on JSON answers: {len(trimmed)} headers, "
            f"{sum(len(f'{k}: {v}') + 2 for k, v in trimmed.items())} B per answer"
        )

        print("\n# Socket.IO connect through the link (python-socketio client)")
        url = f"http://127.0.0.1:{clean.port}"
        for transports, wait in ((None, 1.0), (["websocket"], 1.0), (["websocket"], 10.0)):
            times = [socketio_connect(url, tokens["device"], transports, wait) for _ in range(3)]
            label = "polling then websocket" if transports is None else "websocket only"
            print(
                f"500 ms RTT, {label:<22} wait_timeout {wait:4.1f} s: "
                + ", ".join("failed" if t != t else f"{t:.2f} s" for t in times)
            )
        satellite = Link(port, rtt=1.2, cut_p=0.0, stall_p=0.0, seed=args.seed)
        url = f"http://127.0.0.1:{satellite.port}"
        for transports, wait in ((["websocket"], 1.0), (["websocket"], 10.0)):
            times = [socketio_connect(url, tokens["device"], transports, wait) for _ in range(3)]
            print(
                f"1.2 s RTT, websocket only           wait_timeout {wait:4.1f} s: "
                + ", ".join("failed" if t != t else f"{t:.2f} s" for t in times)
            )

        print("\n# keep-alive: a follow-up request 3 s after the first, on the same connection")
        for keepalive in ("2", "75"):
            (tmp / f"ka{keepalive}").mkdir()
            other, other_port = start_server(tmp / f"ka{keepalive}", KEEPALIVE_SECONDS=keepalive)
            try:
                link = Link(other_port, cut_p=0.0, stall_p=0.0, seed=args.seed)
                conn = http.client.HTTPConnection("127.0.0.1", link.port, timeout=30)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                time.sleep(3)
                start = time.monotonic()
                try:
                    conn.request("GET", "/healthz")
                    conn.getresponse().read()
                    reused = True
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", link.port, timeout=30)
                    conn.request("GET", "/healthz")
                    conn.getresponse().read()
                    reused = False
                conn.close()
                print(
                    f"KEEPALIVE_SECONDS={keepalive:>2}: follow-up {time.monotonic() - start:.2f} s, "
                    f"{'same connection' if reused else 'the server had closed it: a new connection'}, "
                    f"connections opened {len(link.connections)}"
                )
            finally:
                stop_server(other)
    finally:
        stop_server(process)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
