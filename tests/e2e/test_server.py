"""The real server, started the way `make run` starts it, on a fresh database."""

import pytest
import requests

pytestmark = pytest.mark.e2e


def test_fresh_server_migrates_seeds_and_is_ready(start_server):
    server = start_server()
    ready = requests.get(server.url + "/readyz", timeout=5)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "redis": "disabled"}
    login = requests.post(
        server.url + "/api/v1/auth/login",
        json={"username": "demo-coordinator", "password": "demo-password-123"},
        timeout=5,
    )
    assert login.status_code == 200
    assert "gunicorn" in server.logs().lower()
    assert "demo-password-123" not in server.logs()
    spec = requests.get(server.url + "/openapi.json", timeout=5).json()
    assert "/api/v1/auth/login" in spec["paths"]


def test_production_refuses_to_start_without_secret_key(tmp_path):
    import os
    import subprocess
    import sys

    from tests.e2e.conftest import ROOT

    env = {**os.environ, "APP_ENV": "production", "PYTHONPATH": str(ROOT)}
    env.pop("SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
