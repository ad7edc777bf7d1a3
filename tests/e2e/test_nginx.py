"""A real nginx in front (issue 17): Debian's nginx with deploy/nginx.conf, rendered for free ports, in front of
two server processes (bin/serve) sharing one PostgreSQL database and one private Redis. Through nginx: a
filing, Socket.IO clients over a websocket upgrade and over long-polling only, a restart of the servers behind
it, and `sync`. Also real chunked bodies, through nginx and straight to gunicorn.

nginx runs as a private process: `-p <tmp>` prefix, `-c <rendered conf>`, its pid file and temp directories in
the test's tmp directory; stopped by its PID. .ci/run installs nginx when it is missing; elsewhere a missing
nginx is a visible skip (a failure with CI=true)."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import socketio

from tests.casevac.conftest import body
from tests.e2e.conftest import (
    DEMO_PASSWORD,
    ROOT,
    deployment,
    free_port,
    login,
)

pytestmark = pytest.mark.e2e

SERVER_ENV = {"LOGIN_LIMIT_PER_ACCOUNT": "1000 per minute", "LOGIN_LIMIT_PER_ADDRESS": "1000 per minute"}


def render(conf: str, *, listen_port: int, http_port: int, upstream_ports: list[int], prefix: Path, tls: Path) -> str:
    """deploy/nginx.conf (an http-level snippet) as a whole nginx.conf for a private nginx: its ports, upstreams,
    certificate (`tls`: fullchain.pem and privkey.pem) and temporary directories."""
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in upstream_ports)
    snippet, count = re.subn(
        r"(upstream medevac \{\n\s*ip_hash;\n)(?:\s*#?\s*server [^\n]*\n)+", lambda m: m.group(1) + servers, conf
    )
    assert count == 1, "deploy/nginx.conf: the upstream block changed shape; update render()"
    for pattern, replacement in (
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen 443 ssl http2;", f"listen 127.0.0.1:{listen_port} ssl http2;"),
        (r"/etc/medevac/tls/", f"{tls}/"),
        (r"root /var/www/acme;", f"root {prefix / 'acme'};"),
    ):
        snippet, count = re.subn(pattern, replacement, snippet)
        assert count >= 1, f"deploy/nginx.conf: no `{pattern}` to render"
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / (kind + '_temp')};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} info;\n"
        f"events {{ worker_connections 512; }}\n"
        f"http {{\n    access_log {prefix / 'access.log'};\n{temp}\n{snippet}\n}}\n"
    )


def make_certificate(directory: Path) -> Path:
    """A private CA (ca.pem) and a certificate for 127.0.0.1 signed by it (fullchain.pem, privkey.pem), with
    Debian's openssl."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=medevac test CA")
    openssl("req", *ec, "-keyout", "privkey.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "fullchain.pem", "-days", "2", "-extfile", "ext.cnf",
    )  # fmt: skip
    return directory


class PrivateNginx:
    def __init__(self, workdir: Path, upstream_ports: list[int]):
        self.workdir = workdir
        self.port, self.http_port = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.tls = make_certificate(workdir / "tls")
        self.ca = self.tls / "ca.pem"
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(
            render(
                (ROOT / "deploy" / "nginx.conf").read_text(),
                listen_port=self.port,
                http_port=self.http_port,
                upstream_ports=upstream_ports,
                prefix=workdir,
                tls=self.tls,
            )
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> "PrivateNginx":
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        check = subprocess.run(
            [nginx, "-t", "-p", str(self.workdir), "-c", str(self.conf)], capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.workdir), "-c", str(self.conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not start: {(self.workdir / 'error.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGQUIT)  # graceful; the master's PID, which we started
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def _nginx_or_skip():
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        from tests.conftest import require_service

        require_service("nginx (apt-get install nginx-light)", "nginx is not installed")


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    _nginx_or_skip()
    workdir = tmp_path_factory.mktemp("nginx")
    with deployment(workdir, 2, **SERVER_ENV) as (servers, _redis):
        nginx = PrivateNginx(workdir, [s.port for s in servers]).start()
        try:
            # Every HTTPS client of this module (requests, and python-socketio through its requests session)
            # trusts the private CA, and only it.
            saved = os.environ.get("REQUESTS_CA_BUNDLE")
            os.environ["REQUESTS_CA_BUNDLE"] = str(nginx.ca)
            try:
                yield nginx, servers
            finally:
                if saved is None:
                    os.environ.pop("REQUESTS_CA_BUNDLE", None)
                else:
                    os.environ["REQUESTS_CA_BUNDLE"] = saved
        finally:
            nginx.stop()


class Client:
    """A python-socketio client through nginx that syncs after every (re)connect, as API.md tells clients."""

    def __init__(self, url: str, token: str, transports: list[str]):
        self.seen: dict[int, dict] = {}
        self.last = 0
        self.connects = 0
        self.lock = threading.Condition()
        http = requests.Session()
        http.verify = os.environ.get("REQUESTS_CA_BUNDLE", True)  # engineio hands it to the websocket too
        self.sio = socketio.Client(
            reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1, http_session=http
        )

        @self.sio.on("connect")
        def _connect():
            with self.lock:
                self.connects += 1
            threading.Thread(target=self.sync, daemon=True).start()

        @self.sio.on("casevac.created")
        def _created(envelope):
            self._add([envelope])

        self.sio.connect(url, auth={"token": token}, transports=transports, wait_timeout=15)
        self.transport = self.sio.transport()

    def _add(self, envelopes):
        with self.lock:
            for envelope in envelopes:
                self.seen[envelope["seq"]] = envelope
            self.lock.notify_all()

    def sync(self):
        try:
            while True:
                ack = self.sio.call("sync", {"since": self.last}, timeout=15)
                self._add([e for e in ack["events"] if e["type"] == "casevac.created"])
                self.last = ack["last_seq"]
                if not ack["more"]:
                    return
        except Exception:  # noqa: BLE001 - disconnected meanwhile: the next connect syncs again
            pass

    def ids(self) -> set[str]:
        with self.lock:
            return {e["data"]["id"] for e in self.seen.values()}

    def wait_for(self, request_ids: set[str], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not request_ids <= {e["data"]["id"] for e in self.seen.values()}:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"missing {request_ids - self.ids()}")
                self.lock.wait(left)

    def close(self):
        self.sio.disconnect()


def _file(url: str, token: str) -> str:
    response = requests.post(
        f"{url}/api/v1/casevac/requests",
        json=body(client_ref=str(uuid.uuid4())),
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_filing_sockets_restart_and_sync_through_nginx(front):
    nginx, servers = front
    medic = login(nginx, "demo-medic")
    coordinator = login(nginx, "demo-coordinator")
    over_websocket = Client(nginx.url, coordinator, ["websocket"])
    over_polling = Client(nginx.url, coordinator, ["polling"])
    try:
        assert over_websocket.transport == "websocket" and over_polling.transport == "polling"
        first = _file(nginx.url, medic)
        for client in (over_websocket, over_polling):
            client.wait_for({first})

        # Restart both servers behind nginx, one after the other; filings go on through nginx meanwhile.
        filed = [first]
        for server in servers:
            server.stop()
            filed.append(_file(nginx.url, medic))  # nginx sends it to the process that is up
            server.start()
            filed.append(_file(nginx.url, medic))
        for client in (over_websocket, over_polling):
            client.wait_for(set(filed), timeout=60)
            assert client.connects >= 2  # reconnected through nginx, and synced what it missed

        # A sync from zero through nginx: every filing, in seq order.
        fresh = Client(nginx.url, coordinator, ["websocket"])
        try:
            fresh.wait_for(set(filed))
            seqs = sorted(fresh.seen)
            assert [fresh.seen[s]["data"]["id"] for s in seqs] == filed
        finally:
            fresh.close()
    finally:
        over_websocket.close()
        over_polling.close()


def _chunked_post(port: int, path: str, payload: bytes, headers: dict, ca: Path | None = None) -> tuple[int, dict]:
    """POST with Transfer-Encoding: chunked over a raw socket (requests would send a Content-Length); over TLS
    when `ca` is given."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    if ca is not None:
        raw = ssl.create_default_context(cafile=str(ca)).wrap_socket(raw, server_hostname="127.0.0.1")
    with raw as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            for i in range(0, len(payload), 32768):
                chunk = payload[i : i + 32768]
                conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            conn.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered (413) before the whole body was sent
        data = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        decoded, rest_ = b"", rest
        while rest_:
            size_line, _, rest_ = rest_.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            decoded, rest_ = decoded + rest_[:size], rest_[size + 2 :]
        rest = decoded
    return status, json.loads(rest) if rest.strip() else {}


@pytest.mark.parametrize("via", ["nginx", "gunicorn"])
def test_real_chunked_bodies(front, via):
    nginx, servers = front
    port, base = (nginx.port, nginx.url) if via == "nginx" else (servers[0].port, servers[0].url)
    ca = nginx.ca if via == "nginx" else None
    login_body = json.dumps({"username": "demo-medic", "password": DEMO_PASSWORD}).encode()
    status, answer = _chunked_post(port, "/api/v1/auth/login", login_body, {"Content-Type": "application/json"}, ca)
    assert status == 200 and answer["access_token"]
    status, answer = _chunked_post(
        port,
        "/api/v1/auth/login",
        gzip.compress(login_body),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        ca,
    )
    assert status == 200 and answer["access_token"], answer  # a chunked gzip body is read, not taken as empty
    for kilobytes in (600, 4 << 10, 9 << 10):
        padded = json.dumps({"username": "x", "password": "y", "pad": "p" * (kilobytes << 10)}).encode()
        status, answer = _chunked_post(port, "/api/v1/auth/login", padded, {"Content-Type": "application/json"}, ca)
        assert status == 413 and answer["code"] == 413, (kilobytes, status, answer)
    # Still served afterwards (nginx did not take a process out of the upstream).
    assert requests.get(f"{base}/readyz", timeout=10).status_code == 200


def test_uploads_above_the_json_cap_pass_nginx_to_the_application(front):
    nginx, _ = front
    token = login(nginx, "demo-medic")
    two_megabytes = b"\x89PNG\r\n\x1a\n" + b"0" * (2 << 20)
    response = requests.post(
        f"{nginx.url}/api/v1/telemed/consultations/{uuid.uuid4()}/attachments",
        files={"file": ("scan.png", two_megabytes, "image/png")},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    # The application's answer (no such consultation), not nginx's 413.
    assert response.status_code == 404 and response.json()["code"] == 404, response.text
    too_big = requests.post(
        f"{nginx.url}/api/v1/casevac/requests",
        data=b"{" + b" " * (2 << 20) + b"}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert too_big.status_code == 413 and too_big.json()["code"] == 413
    assert too_big.headers["X-Content-Type-Options"] == "nosniff"


def test_disabling_a_user_on_one_process_ends_their_socket_on_the_other(front):
    """Authority follows the user on every process (issue 17, item 1): the PATCH goes to one process, the
    user's socket is on the other."""
    from tests.e2e.conftest import Listener

    nginx, servers = front
    admin = login(servers[0], "demo-admin")
    username = f"medic-{uuid.uuid4().hex[:8]}"
    me = requests.get(
        f"{servers[0].url}/api/v1/auth/me", headers={"Authorization": f"Bearer {admin}"}, timeout=10
    ).json()
    created = requests.post(
        f"{servers[0].url}/api/v1/users",
        json={"username": username, "password": DEMO_PASSWORD, "role": "medic", "mission_id": me["mission_id"]},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    token = login(servers[1], username)
    listener = Listener(servers[1].url, token)
    try:
        response = requests.patch(
            f"{servers[0].url}/api/v1/users/{created.json()['id']}",
            json={"active": False},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=10,
        )
        assert response.status_code == 200 and response.json()["active"] is False
        [revoked] = [
            e
            for e in listener.wait_for(
                lambda events: any(e.get("type") == "session.revoked" for e in events), timeout=15
            )
            if e.get("type") == "session.revoked"
        ]
        assert revoked["data"]["reason"] == "user_disabled"
        deadline = time.monotonic() + 10
        while listener.client.connected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not listener.client.connected
        me_again = requests.get(
            f"{servers[1].url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert me_again.status_code == 401
    finally:
        listener.close()


def test_plain_http_only_redirects_to_https_and_https_is_strict(front):
    """The field app's service worker (offline filing) runs only on a secure origin: deploy/nginx.conf serves
    the application over TLS and answers plain HTTP with a redirect that keeps the method (308)."""
    nginx, _ = front
    plain = f"http://127.0.0.1:{nginx.http_port}"
    for method in ("GET", "POST"):
        response = requests.request(method, f"{plain}/api/v1/casevac/requests?x=1", allow_redirects=False, timeout=10)
        assert response.status_code == 308, (method, response.status_code)
        assert response.headers["Location"] == "https://127.0.0.1/api/v1/casevac/requests?x=1"
    # Certificate renewals (ACME http-01) are answered over plain HTTP, from the webroot.
    challenge = nginx.workdir / "acme" / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True, exist_ok=True)
    (challenge / "token-123").write_text("token-123.thumbprint")
    answer = requests.get(f"{plain}/.well-known/acme-challenge/token-123", allow_redirects=False, timeout=10)
    assert answer.status_code == 200 and answer.text == "token-123.thumbprint"

    for response in (
        requests.get(f"{nginx.url}/readyz", timeout=10),
        requests.post(f"{nginx.url}/api/v1/casevac/requests", data=b"{" + b" " * (2 << 20) + b"}", timeout=30),
    ):
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000", response.status_code
    assert requests.get(f"{nginx.url}/field", timeout=10).status_code == 200

    # TLS 1.2 at the least (a client that offers at most TLS 1.1 is refused by nginx, not by its own library),
    # and a device that comes back resumes its session (no full handshake over 2G), in TLS 1.2 and 1.3.
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(cafile=str(nginx.ca))
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version, old.maximum_version = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as refused:
        with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as raw:
            old.wrap_socket(raw, server_hostname="127.0.0.1")
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value)  # the client did offer TLS 1.1
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = ssl.create_default_context(cafile=str(nginx.ca))
        context.minimum_version = context.maximum_version = version
        sessions = []
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as raw:
                resume = sessions[-1] if sessions else None
                with context.wrap_socket(raw, server_hostname="127.0.0.1", session=resume) as tls:
                    tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    assert tls.recv(64).startswith(b"HTTP/1.1 200")  # TLS 1.3 hands the session over after data
                    sessions.append(tls.session)
                    reused = tls.session_reused
        assert reused, version
