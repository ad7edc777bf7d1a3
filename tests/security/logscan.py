"""No secret, password hash, token or psychotherapy note text in any log line of the whole test run
(issue 8, "Security review"; API.md "Password hashes, tokens and secrets never appear in any response or
log line"; DOMAIN.md section 6 on psychotherapy notes).

A pytest plugin (loaded by `-p tests.security.logscan` in pytest.ini):
- a handler on the root logger records every log line of the run, formatted the way production writes it
  (config.logging.JsonFormatter: message and traceback after redaction);
- Flask signals and a SQLAlchemy hook learn the secrets the run handles: bearer tokens sent, tokens and
  secrets returned in JSON responses, passwords sent in JSON bodies, every app's SECRET_KEY, and the text
  of every psychotherapy note written to the database;
- tests/security/test_logs.py (moved to the very end of the run) asserts that no recorded line and no log
  file written under the run's temporary directory (the e2e servers' output) contains any of them, nor
  anything shaped like a JWT or a password hash; pytest_sessionfinish checks again after the last teardown.

Cheap by construction: lines are scanned once with two regular expressions plus one alternation of the
literal secrets; token-shaped words are looked up in a set.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

# Shapes that are a leak wherever they appear, known or not.
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
PASSWORD_HASH = re.compile(
    r"\$(argon2(id|i|d)|scrypt|2[aby])\$[^\s\"']{10,}|scrypt:\d+:\d+:\d+\$\S{10,}|"
    r"pbkdf2:sha\d+:\d+\$\S{10,}"
)
# Words that might be an opaque token (join tokens, device tokens, api keys): looked up in the known set.
WORD = re.compile(r"[A-Za-z0-9_\-.~+/=]{16,}")
SECRET_KEYS = re.compile(r"(?i)(token|secret|password|api_key|apikey)$")
MIN_SECRET = 8  # shorter values would match ordinary text
NOTE_TABLE = re.compile(r"(?i)psychotherap")


class Scanner:
    def __init__(self):
        self.lines: list[str] = []
        self.literals: set[str] = set()  # passwords, secret keys, note text: matched anywhere in a line
        self.tokens: set[str] = set()  # opaque tokens: matched as whole words
        self.files: list[Path] = []
        self.reported: set[str] = set()

    # What the run handles ---------------------------------------------------------------------------------
    def secret(self, value) -> None:
        if isinstance(value, str) and len(value) >= MIN_SECRET:
            self.literals.add(value)

    def token(self, value) -> None:
        if isinstance(value, str) and len(value) >= 16:
            self.tokens.add(value)

    def note(self, text) -> None:
        # A note is matched by its first line (long enough to be specific), so a log line that quotes part of a
        # long note is still caught.
        if isinstance(text, str):
            for line in text.splitlines():
                if len(line.strip()) >= 12:
                    self.literals.add(line.strip()[:200])

    # The check ----------------------------------------------------------------------------------------------
    def leaks(self, lines=None, files=None) -> list[str]:
        lines = self.lines if lines is None else lines
        files = self.files if files is None else files
        literal = (
            re.compile("|".join(re.escape(s) for s in sorted(self.literals, key=len, reverse=True)))
            if self.literals
            else None
        )
        found: list[str] = []

        def scan(line: str, where: str) -> None:
            for pattern, what in ((JWT, "a JWT"), (PASSWORD_HASH, "a password hash")):
                if pattern.search(line):
                    found.append(f"{where}: {what}: {_clip(line)}")
            if literal is not None and (match := literal.search(line)):
                found.append(f"{where}: a secret or psychotherapy note ({_mask(match.group())}): {_clip(line)}")
            if self.tokens and any(word in self.tokens for word in WORD.findall(line)):
                found.append(f"{where}: a token: {_clip(line)}")

        for number, line in enumerate(lines):
            scan(line, f"log line {number}")
        for path in files:
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            for number, line in enumerate(text.splitlines(), 1):
                scan(line, f"{path.name}:{number}")
        return found


def _clip(line: str) -> str:
    line = JWT.sub("<JWT>", line)
    return line[:300]


def _mask(value: str) -> str:
    return value[:3] + "..." if len(value) > 6 else "..."


SCANNER = Scanner()
# Leaks reported by pytest-xdist workers at their end (the controller's list).
WORKER_LEAKS: list[str] = []


class RecordingHandler(logging.Handler):
    """Records each line as production would write it (the JSON formatter redacts message and traceback)."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        from config.logging import JsonFormatter

        self.setFormatter(JsonFormatter())
        self._medevac_recorder = True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            SCANNER.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is not written in production either
            SCANNER.lines.append(str(record.msg))


def _walk(value, key: str = "") -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(v, str(k))
    elif isinstance(value, list):
        for v in value:
            _walk(v, key)
    elif isinstance(value, str) and SECRET_KEYS.search(key.replace("-", "_")):
        SCANNER.secret(value)
        SCANNER.token(value)


def _ensure_recorder() -> None:
    # logging.config.fileConfig (Alembic's env.py, run in-process by the test databases' migrations) replaces the
    # root handlers: put the recorder back whenever an app context or a request starts.
    root = logging.getLogger()
    if not any(getattr(h, "_medevac_recorder", False) for h in root.handlers):
        root.addHandler(RecordingHandler())


def _on_request_started(sender, **extra) -> None:
    from flask import request

    _ensure_recorder()

    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        SCANNER.token(auth[7:].strip())
    if request.mimetype == "application/json" and request.content_length and request.content_length < 65536:
        try:
            _walk(json.loads(request.get_data(cache=True)))
        except Exception:  # noqa: BLE001 - malformed bodies are the app's business, not ours
            pass


def _on_request_finished(sender, response, **extra) -> None:
    if response.mimetype != "application/json" or response.direct_passthrough:
        return
    data = response.get_data()
    if b"token" in data or b"secret" in data or b"password" in data:
        try:
            _walk(json.loads(data))
        except ValueError:
            pass


def _on_appcontext(sender, **extra) -> None:
    _ensure_recorder()
    SCANNER.secret(sender.config.get("SECRET_KEY"))
    settings = sender.extensions.get("settings")
    if settings is not None:
        SCANNER.secret(getattr(settings, "DEMO_PASSWORD", None))


def _after_insert(mapper, connection, target) -> None:
    table = getattr(mapper.local_table, "name", "") or ""
    if NOTE_TABLE.search(table) or getattr(target, "kind", None) == "psychotherapy":
        for column in mapper.columns:
            if column.primary_key or column.foreign_keys or column.key.endswith("_id"):
                continue  # ids are not note text (and appear in logs legitimately)
            value = getattr(target, column.key, None)
            if isinstance(value, str) and len(value) >= 12:
                SCANNER.note(value)


def _install() -> None:
    import flask
    from sqlalchemy import event
    from sqlalchemy.orm import Mapper

    _ensure_recorder()
    flask.request_started.connect(_on_request_started)
    flask.request_finished.connect(_on_request_finished)
    flask.appcontext_pushed.connect(_on_appcontext)
    event.listen(Mapper, "after_insert", _after_insert)
    # Secrets the test infrastructure itself uses.
    from tests.factories import PASSWORD

    SCANNER.secret(PASSWORD)
    SCANNER.secret("demo-password-123")  # tests/e2e DEMO_PASSWORD
    SCANNER.secret("e2e-secret-key-that-is-long-enough-0123456789")  # tests/e2e SECRET_KEY


def pytest_configure(config) -> None:
    _install()
    config._logscan_basetemp = None


def pytest_collection_modifyitems(session, config, items) -> None:
    # The whole-run check goes last, whatever the file order (its whole file, so that pytest-xdist's
    # --dist loadfile, which keeps a file on one worker, also hands it out last).
    last = [i for i in items if i.nodeid.startswith("tests/security/test_logs.py::")]
    last.sort(key=lambda item: "test_no_secrets" in item.nodeid)
    for item in last:
        items.remove(item)
        items.append(item)


def collect_files(config) -> list[Path]:
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None or getattr(factory, "_basetemp", None) is None:
        return []
    return sorted(Path(factory.getbasetemp()).rglob("*.log"))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    # Lines logged after the last test (fixture teardown, servers stopping) are checked here. Under pytest-xdist
    # each worker records and checks its own lines and files (a worker's tests, servers and secrets are its own)
    # and hands what it found to the controller (pytest_testnodedown), which fails the run.
    SCANNER.files = collect_files(session.config)
    new = [leak for leak in SCANNER.leaks() if leak not in SCANNER.reported]
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["logscan_leaks"] = new
        return
    new += WORKER_LEAKS
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "secrets in the logs of this run (tests/security/logscan.py):\n" + "\n".join(new[:50])
        if reporter is not None:
            reporter.write_line(text, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    # pytest-xdist, on the controller: a worker finished; keep what its final check found.
    WORKER_LEAKS.extend(getattr(node, "workeroutput", {}).get("logscan_leaks", []))
