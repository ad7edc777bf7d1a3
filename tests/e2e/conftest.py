"""Real server processes for end-to-end tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


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

    def start(self, timeout: float = 60) -> "Server":
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([str(ROOT / "bin" / "serve")], cwd=ROOT, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
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

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_server(tmp_path):
    """start_server(**env) -> a running Server; stopped at teardown."""
    servers: list[Server] = []

    def _start(**env_overrides) -> Server:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update({
            "PORT": str(free_port()), "BIND": "127.0.0.1", "APP_ENV": "production",
            "SECRET_KEY": "e2e-secret-key-that-is-long-enough-0123456789",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}", "DEMO_PASSWORD": "demo-password-123",
            "VENV": str(ROOT / ".venv"), "THREADS": "20", "LOG_LEVEL": "INFO",
        })
        env.update({k: str(v) for k, v in env_overrides.items()})
        server = Server(env, tmp_path / f"server-{len(servers)}.log").start()
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.stop()
