"""Real server processes for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
# The password bin/serve gives the seeded demo users (DEMO_PASSWORD in server_env).
DEMO_PASSWORD = "demo-password-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server started the way `make run` starts it (bin/serve: migrate, seed, gunicorn)."""

    def __init__(self, env: dict, log_path: Path):
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> "Server":
        return self.launch().wait_ready(timeout)

    def launch(self) -> "Server":
        """Start the process without waiting (several servers can start side by side)."""
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(ROOT / "bin" / "serve")],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 180) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if getattr(self, "log", None):
            self.log.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self, timeout: float = 180, **env_overrides) -> "Server":
        """Stop and start again on the same port and database (env_overrides e.g. MIGRATE=0 SEED_DEMO=0)."""
        self.stop()
        self.env = {**self.env, **{k: str(v) for k, v in env_overrides.items()}}
        return self.start(timeout)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def login(server, username: str, password: str | None = None) -> str:
    """The access token of a user on a real server; the demo users' password by default."""
    response = requests.post(
        f"{server.url}/api/v1/auth/login",
        json={"username": username, "password": DEMO_PASSWORD if password is None else password},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def server_env(tmp_path: Path, **env_overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        {
            "PORT": str(free_port()),
            "BIND": "127.0.0.1",
            # APP_ENV=test: as production, with the demo seeded (which bin/serve refuses in production).
            "APP_ENV": "test",
            "SECRET_KEY": "e2e-secret-key-that-is-long-enough-0123456789",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}",
            "DEMO_PASSWORD": DEMO_PASSWORD,
            "VENV": str(ROOT / ".venv"),
            "THREADS": "20",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update({k: str(v) for k, v in env_overrides.items()})
    return env


def stop_servers(servers: list[Server]) -> None:
    """Stop several servers side by side (each one drains for a moment)."""
    for server in servers:
        if server.process and server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGTERM)
    for server in servers:
        server.stop()


def start_servers(tmp_path: Path, count: int, **env_overrides) -> list[Server]:
    """`count` processes of one deployment (same database, same Redis): the first migrates and seeds,
    the others start side by side with MIGRATE=0 SEED_DEMO=0, as in production."""
    first = Server(server_env(tmp_path, **env_overrides), tmp_path / "server-0.log").start()
    others = [
        Server(
            server_env(tmp_path, **{**env_overrides, "MIGRATE": "0", "SEED_DEMO": "0"}), tmp_path / f"server-{n}.log"
        ).launch()
        for n in range(1, count)
    ]
    return [first] + [server.wait_ready() for server in others]


@pytest.fixture
def start_server(tmp_path):
    """start_server(**env) -> a running Server; stopped at teardown."""
    servers: list[Server] = []

    def _start(**env_overrides) -> Server:
        server = Server(server_env(tmp_path, **env_overrides), tmp_path / f"server-{len(servers)}.log").start()
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.stop()


# ---- real-time end-to-end: Socket.IO clients, a private Redis, a PostgreSQL database for several processes


class PrivateRedis:
    """A redis-server of the test's own on a free port (never the machine's shared one): stop and start it
    to simulate an outage."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> "PrivateRedis":
        import redis

        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def private_redis_server(workdir: Path):
    """Generator (for a fixture of any scope): a started PrivateRedis, stopped at the end."""
    import shutil

    if shutil.which("redis-server") is None:
        from tests.conftest import require_service

        require_service("redis-server (for a private Redis)", "redis-server is not installed")
    server = PrivateRedis(workdir).start()
    try:
        yield server
    finally:
        server.stop()


def pg_database_url():
    """Generator (for a fixture of any scope): a fresh PostgreSQL database URL that several server
    processes share; dropped at the end."""
    import uuid

    import psycopg

    from tests.conftest import PG_URL, _libpq, _pg_error, require_service

    require_service("PostgreSQL", _pg_error())
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def deployment(workdir: Path, count: int, **env_overrides):
    """`count` processes of one deployment (start_servers) on a fresh PostgreSQL database and a private Redis,
    all three stopped or dropped at the end: yields (servers, the PrivateRedis)."""
    redis_gen, db_gen = private_redis_server(workdir), pg_database_url()
    redis_server, database_url = next(redis_gen), next(db_gen)
    servers = []
    try:
        servers = start_servers(workdir, count, DATABASE_URL=database_url, REDIS_URL=redis_server.url, **env_overrides)
        yield servers, redis_server
    finally:
        stop_servers(servers)
        for gen in (redis_gen, db_gen):
            gen.close()


@pytest.fixture
def pg_database():
    yield from pg_database_url()


class Listener:
    """A python-socketio Client connected to a real server, recording every event it receives."""

    def __init__(self, url: str, token: str | None):
        import threading

        import socketio

        self.received: list[tuple[str, dict]] = []
        self._changed = threading.Condition()
        self.client = socketio.Client(reconnection=False)

        @self.client.on("*")
        def _any(event, data=None):
            with self._changed:
                self.received.append((event, data))
                self._changed.notify_all()

        self.client.connect(
            url, auth={"token": token} if token is not None else None, transports=["websocket"], wait_timeout=10
        )

    def events(self, name: str | None = None) -> list[dict]:
        with self._changed:
            return [data for event, data in self.received if name is None or event == name]

    def wait_for(self, predicate, timeout: float = 10.0) -> list[dict]:
        """Wait until predicate(events) is true; returns the events. Fails the test on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                envelopes = [data for _, data in self.received]
                if predicate(envelopes):
                    return envelopes
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; received: {[e for e, _ in self.received]}")
                self._changed.wait(left)

    def sync_all(self, since: int = 0) -> tuple[list[dict], int]:
        envelopes = []
        while True:
            ack = self.client.call("sync", {"since": since}, timeout=10)
            envelopes += ack["events"]
            since = ack["last_seq"]
            if not ack["more"]:
                return envelopes, since

    def close(self) -> None:
        if self.client.connected:
            self.client.disconnect()


@pytest.fixture
def listen(start_server):
    """listen(server, token) -> a connected Listener; disconnected at teardown, before the test's servers stop
    (a server waits for open connections when it stops)."""
    listeners: list[Listener] = []

    def _listen(server, token):
        listeners.append(Listener(server.url, token))
        return listeners[-1]

    yield _listen
    for listener in listeners:
        listener.close()
