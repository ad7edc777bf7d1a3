"""Safe defaults of bin/serve and of the answers the application itself never writes (issue 17, item 3), on
real gunicorn servers: production never seeds the demo; development listens on the loopback interface only
unless BIND says otherwise; gunicorn's own 414/431 answers and the Socket.IO transport's answers are JSON
with the security headers."""

from __future__ import annotations

import socket
import subprocess

import pytest
import requests

from core.http import SECURITY_HEADERS
from tests.e2e.conftest import DEMO_PASSWORD, ROOT, Server, free_port, server_env

pytestmark = pytest.mark.e2e


def _external_address() -> str | None:
    """An address of this machine that is not loopback (None when it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_production_never_seeds_the_demo(tmp_path):
    server = Server(server_env(tmp_path, APP_ENV="production"), tmp_path / "prod.log").start()
    try:
        response = requests.post(
            f"{server.url}/api/v1/auth/login", json={"username": "demo-admin", "password": DEMO_PASSWORD}, timeout=10
        )
        assert response.status_code == 401, response.text
        assert "demo password" not in server.logs() and "demo mission" not in server.logs()
    finally:
        server.stop()
    # Asked explicitly, bin/serve refuses to start at all.
    env = server_env(tmp_path, APP_ENV="production", SEED_DEMO="1", MIGRATE="0")
    result = subprocess.run(
        [str(ROOT / "bin" / "serve")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "SEED_DEMO=1 refused with APP_ENV=production" in result.stderr
    # And so does the command itself.
    env = server_env(tmp_path, APP_ENV="production")
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi", "seed-demo"],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "refused with APP_ENV=production" in result.stderr


def test_development_listens_on_loopback_only_unless_bind_says_otherwise(tmp_path):
    env = server_env(tmp_path, APP_ENV="development")
    env.pop("BIND")
    server = Server(env, tmp_path / "dev.log").start()
    try:
        assert f"Listening at: http://127.0.0.1:{server.port}" in server.logs()
        external = _external_address()
        if external is not None:
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://{external}:{server.port}/healthz", timeout=3)
    finally:
        server.stop()
    opened = Server(
        server_env(tmp_path, APP_ENV="development", BIND="0.0.0.0", SEED_DEMO="0", MIGRATE="0"),
        tmp_path / "dev-open.log",
    ).start()
    try:
        assert f"Listening at: http://0.0.0.0:{opened.port}" in opened.logs()
    finally:
        opened.stop()


def _raw(port: int, request: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split(" ")[1]), headers, body


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("defaults")
    server = Server(server_env(tmp, PORT=str(free_port())), tmp / "server.log").start()
    yield server
    server.stop()


def _assert_json_with_headers(code, headers, body, expected):
    import json

    assert code == expected, (code, body[:300])
    assert headers["Content-Type"] == "application/json"
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (name, headers)
    document = json.loads(body)
    assert document["code"] == expected and document["status"] and document["message"]
    return document


def test_gunicorn_414_and_431_are_json_with_the_security_headers(server):
    # Over gunicorn's 4094-byte request line limit, and small enough to be read whole (else gunicorn closes
    # with unread data, which resets the connection before its answer can be read).
    long_uri = b"/healthz?" + b"a" * 5000
    code, headers, body = _raw(server.port, b"GET " + long_uri + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    document = _assert_json_with_headers(code, headers, body, 414)
    assert "aaaa" not in document["message"]
    big_header = b"X-Big: " + b"b" * 9000 + b"\r\n"
    code, headers, body = _raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + big_header + b"\r\n")
    _assert_json_with_headers(code, headers, body, 431)
    many = b"".join(b"X-H%d: 1\r\n" % i for i in range(150))
    code, headers, body = _raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    _assert_json_with_headers(code, headers, body, 431)


def test_socketio_transport_answers_carry_the_security_headers_and_errors_are_json(server):
    handshake = requests.get(f"{server.url}/socket.io/?EIO=4&transport=polling", timeout=10)
    assert handshake.status_code == 200
    for name, value in SECURITY_HEADERS.items():
        assert handshake.headers.get(name) == value, name
    bogus = requests.get(f"{server.url}/socket.io/?EIO=4&transport=polling&sid=not-a-session", timeout=10)
    code = bogus.status_code
    _assert_json_with_headers(code, bogus.headers, bogus.content, 400)
    unknown_transport = requests.get(f"{server.url}/socket.io/?EIO=4&transport=carrier-pigeon", timeout=10)
    _assert_json_with_headers(unknown_transport.status_code, unknown_transport.headers, unknown_transport.content, 400)
