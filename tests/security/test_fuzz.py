"""Fuzzing (issue 8): schemathesis against the live server's own /openapi.json, every operation, authenticated as
each role: no 5xx, no response that contradicts the document (status code, content type, headers, body schema),
invalid input always rejected, authentication never ignored.

Bounded here (FUZZ_SECONDS per role, default 12: the coverage phase alone needs ~5 s for the 85
operations on a quiet machine and twice that beside another test worker; the module takes ~2 min); `make fuzz` runs the
same test for longer with a random seed (FUZZ_SECONDS=120 FUZZ_SEED=random). A failure prints schemathesis'
report, with a curl line reproducing each case against a server started the same way (see docs/reliability.md).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import ROOT, Server, free_port, login

pytestmark = pytest.mark.e2e

FUZZ_SECONDS = os.environ.get("FUZZ_SECONDS", "12")
FUZZ_SEED = os.environ.get("FUZZ_SEED", "20261128")
DEMO_PASSWORD = "demo-password-123"
ROLES = ("admin", "coordinator", "medic", "clinician", "member", "superadmin", "anon")
# Every check schemathesis has, less the ones that do not fit an API with authorisation and opaque ids:
# - positive_data_acceptance: a schema-valid body can still be refused (an opaque cursor it never issued,
#   another mission's id, a role that may not do this): 403/404/409/422 are the contract there;
# - use_after_free / ensure_resource_availability: the stateful phase links a create to a read by another
#   role, which the mission and role rules rightly refuse.
EXCLUDED_CHECKS = "positive_data_acceptance,use_after_free,ensure_resource_availability"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        {
            "PORT": str(free_port()),
            "BIND": "127.0.0.1",
            # APP_ENV=test: as production, with the demo seeded (which bin/serve refuses in production).
            "APP_ENV": "test",
            "SECRET_KEY": "e2e-secret-key-that-is-long-enough-0123456789",
            "DATABASE_URL": os.environ.get("FUZZ_DATABASE_URL", f"sqlite:///{tmp / 'fuzz.db'}"),
            "DEMO_PASSWORD": DEMO_PASSWORD,
            "VENV": str(ROOT / ".venv"),
            "THREADS": "8",
            "LOG_LEVEL": "INFO",
            # The fuzzer hammers login: lift the brute-force limits so the login logic itself is exercised.
            "LOGIN_LIMIT_PER_ADDRESS": "100000 per minute",
            "LOGIN_LIMIT_PER_ACCOUNT": "100000 per minute",
            "CORS_ORIGINS": "https://ops.example.org",
        }
    )
    server = Server(env, tmp / "fuzz-server.log").start(timeout=180)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tokens(fuzz_server):
    """A token per role; demo-admin is a superadmin, so a plain admin is created for "admin"."""
    superadmin = login(fuzz_server, "demo-admin")
    me = requests.get(
        fuzz_server.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {superadmin}"}, timeout=10
    ).json()
    created = requests.post(
        fuzz_server.url + "/api/v1/users",
        headers={"Authorization": f"Bearer {superadmin}"},
        json={"username": "fuzz-admin", "password": DEMO_PASSWORD, "role": "admin", "mission_id": me["mission_id"]},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    return {
        "superadmin": superadmin,
        "admin": login(fuzz_server, "fuzz-admin"),
        "coordinator": login(fuzz_server, "demo-coordinator"),
        "medic": login(fuzz_server, "demo-medic"),
        "clinician": login(fuzz_server, "demo-psychiatrist"),
        "member": login(fuzz_server, "demo-member"),
        "anon": None,
    }


# Refusals that count as rejecting invalid data besides schemathesis' own list: 413, 414 and 431 are the limits
# on body, request line and headers (gunicorn's, answered in JSON), which a long enough invalid value reaches
# before the application does (a 414 for a 1,500-character cursor is a refusal, not an acceptance).
CONFIG = """\
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "414", "415", "422", "428", "429",
  "431", "5xx"]
"""


def schemathesis_command(url: str, token: str | None, seed: str, seconds: str, report_dir: Path) -> list[str]:
    config = report_dir / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        EXCLUDED_CHECKS,
        # No `examples` phase: the document carries no examples.
        "--phases",
        "coverage,fuzzing,stateful",
        "--max-time",
        seconds,
        "--seed",
        seed,
        "--workers",
        "1",
        "--no-color",
        "--request-timeout",
        "20",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
    ]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    return command


@pytest.mark.parametrize("role", ROLES)
def test_fuzz_the_live_api_as(role, fuzz_server, tokens, tmp_path):
    seed = str(random.SystemRandom().randrange(1, 2**31)) if FUZZ_SEED == "random" else FUZZ_SEED
    command = schemathesis_command(fuzz_server.url, tokens[role], seed, FUZZ_SECONDS, tmp_path)
    # cwd: schemathesis keeps a cache of cases in ./.schemathesis; each run starts clean in its tmp dir.
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=float(FUZZ_SECONDS) * 3 + 120
    )
    output = result.stdout + result.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    assert result.returncode == 0, (
        f"schemathesis as {role} (seed {seed}) found problems; server log: {fuzz_server.log_path}\n" + _failures(output)
    )
    assert "generated" in output and " passed" in output, output[-2000:]
    assert "No tests were run" not in output.split("Fuzzing")[0], (
        f"FUZZ_SECONDS={FUZZ_SECONDS} is too short for the coverage phase: raise it\n{output[-2000:]}"
    )
    # No 5xx reached the server's log either (a crash the fuzzer's checks would have missed).
    server_errors = [
        line for line in fuzz_server.logs().splitlines() if re.search(r'" 5\d\d \d', line) or "unhandled error" in line
    ]
    assert server_errors == [], "\n".join(server_errors[:20])


def _failures(output: str) -> str:
    start = output.find("FAILURES")
    return output[start : start + 12000] if start >= 0 else output[-6000:]
