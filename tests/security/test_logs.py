"""The whole run's logs hold no secret, hash, token or psychotherapy note text (see logscan.py)."""

from __future__ import annotations

import logging

from tests.factories import PASSWORD
from tests.security.logscan import SCANNER, Scanner, collect_files


def test_the_scanner_finds_each_kind_of_leak_and_passes_ordinary_lines(tmp_path):
    scanner = Scanner()
    scanner.secret("s3cret-signing-key-0123456789")
    scanner.token("Zq8v2N0c7xYb1TtR9pLmWk3H")
    scanner.note("I keep dreaming about the convoy ambush at night")
    leaky = [
        '{"message": "auth header eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"}',
        "user row password_hash=$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        "werkzeug hash scrypt:32768:8:1$abcdefghijkl$0123456789abcdef",
        "config SECRET_KEY loaded: s3cret-signing-key-0123456789",
        "joining room with Zq8v2N0c7xYb1TtR9pLmWk3H",
        "note saved: I keep dreaming about the convoy ambush at night, says patient",
    ]
    ordinary = [
        '{"level": "INFO", "message": "casevac request 3f2c8e1a-1111-4222-8333-944455556666 filed"}',
        '127.0.0.1 "POST /api/v1/auth/login" 401 61 0.05s',
        "Authorization: Bearer [redacted] password=[redacted]",
    ]
    assert len(scanner.leaks(lines=leaky, files=[])) == len(leaky)
    assert scanner.leaks(lines=ordinary, files=[]) == []
    server_log = tmp_path / "server.log"
    server_log.write_text("\n".join(ordinary + leaky[3:4]))
    assert [leak.split(":")[0] for leak in scanner.leaks(lines=[], files=[server_log])] == ["server.log"]


def test_the_recorder_sees_application_logs_and_learns_the_run_s_secrets(client, make_user):
    user = make_user()
    before = len(SCANNER.lines)
    token = client.post("/api/v1/auth/login", json={"username": user.username, "password": PASSWORD}).get_json()[
        "access_token"
    ]
    assert token in SCANNER.tokens and PASSWORD in SCANNER.literals
    logging.getLogger("core.views").info("a line from the application")
    assert any("a line from the application" in line for line in SCANNER.lines[before:])


def test_no_secrets_in_the_logs_of_the_whole_run(request):
    """Runs last (logscan.pytest_collection_modifyitems): every line logged so far and every *.log file under
    the run's temporary directory (the e2e servers' output)."""
    SCANNER.files = collect_files(request.config)
    leaks = SCANNER.leaks()
    SCANNER.reported.update(leaks)
    assert leaks == [], f"{len(leaks)} leaks, first ones:\n" + "\n".join(leaks[:30])
    assert SCANNER.lines, "nothing was recorded: is the recorder installed?"
    print(
        f"logscan: {len(SCANNER.lines)} lines, {len(SCANNER.files)} log files, {len(SCANNER.literals)} secrets, "
        f"{len(SCANNER.tokens)} tokens checked"
    )
