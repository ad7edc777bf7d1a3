"""Test infrastructure: every `app` test runs on SQLite and on PostgreSQL.

PostgreSQL (TEST_DATABASE_URL, default the local `test` database) and Redis (TEST_REDIS_URL, default
the local Redis) are used when reachable; with CI=true they are mandatory and an unreachable one fails
the run. Each test session works in its own PostgreSQL database and Redis key prefix, so parallel runs
on one machine do not see each other. Each test starts from an empty, migrated schema.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from config.app import create_app
from config.settings import Settings
from core import clock

CI = os.environ.get("CI") == "true"
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:10]
# Uploads of the test run go to a temporary directory, never into the repository's instance/.
UPLOAD_DIR = tempfile.mkdtemp(prefix=f"uploads-{RUN_ID}-")


def _pg_error() -> str | None:
    try:
        import psycopg

        with psycopg.connect(_libpq(PG_URL), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001
        return str(exc)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _redis_error() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc)


def require_service(name: str, error: str | None) -> None:
    if error is None:
        return
    if CI:
        pytest.fail(f"{name} is mandatory in CI and unreachable: {error}", pytrace=False)
    pytest.skip(f"{name} unreachable ({error}); set the TEST_* URL or start it")


class Databases:
    """One migrated database per backend for the whole session."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.urls: dict[str, str] = {}
        self.sqlite_template: Path | None = None
        self.pg_name: str | None = None

    def url(self, backend: str) -> str:
        if backend in self.urls:
            return self.urls[backend]
        if backend == "sqlite":
            self.sqlite_template = self.tmp / "template.db"
            url = f"sqlite:///{self.tmp / 'test.db'}"
            _migrate(f"sqlite:///{self.sqlite_template}")
            shutil.copy(self.sqlite_template, self.tmp / "test.db")
        else:
            require_service("PostgreSQL", _pg_error())
            import psycopg

            self.pg_name = f"t_{RUN_ID}_{os.getpid()}"
            with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.pg_name}"')
            url = PG_URL.rsplit("/", 1)[0] + "/" + self.pg_name
            _migrate(url)
        self.urls[backend] = url
        return url

    def drop(self) -> None:
        if self.pg_name:
            import psycopg

            with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')


def _migrate(url: str) -> None:
    from flask_migrate import upgrade

    app = create_app(test_settings(url))
    with app.app_context():
        upgrade()
        from config.extensions import db

        db.engine.dispose()


def test_settings(database_url: str, **overrides) -> Settings:
    # LOG_LEVEL INFO as in production, so the whole-run log check (tests/security/logscan.py) sees what
    # production would write.
    values = dict(
        ENV="test",
        DATABASE_URL=database_url,
        REDIS_URL=None,
        REDIS_PREFIX=f"t{RUN_ID}",
        LOG_LEVEL="INFO",
        SWEEPER_INTERVAL_SECONDS=3600.0,
        UPLOAD_DIR=UPLOAD_DIR,
    )
    values.update(overrides)
    return Settings.from_env(**values)


# Files that start servers, browsers or a TAK server take most of the run: handed out first, so that under
# pytest-xdist (`make test` runs two workers, --dist loadfile) the run does not end waiting on one of them.
SLOW_FIRST = (
    "tests/e2e/",
    "tests/web/",
    "tests/casevac/tak/test_e2e",
    "tests/security/test_fuzz",
    "tests/security/test_authz_matrix",
    "tests/telemed/mental/test_e2e",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items) -> None:
    slow = [item for item in items if item.nodeid.startswith(SLOW_FIRST)]
    if slow:
        rest = [item for item in items if not item.nodeid.startswith(SLOW_FIRST)]
        items[:] = slow + rest


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    dbs = Databases(tmp_path_factory.mktemp("db"))
    yield dbs
    dbs.drop()


_apps: dict = {}


def _session_app(databases, backend: str):
    if backend not in _apps:
        _apps[backend] = create_app(test_settings(databases.url(backend)))
    return _apps[backend]


def reset_database(app, databases, backend: str) -> None:
    from config.extensions import db, limiter

    with app.app_context():
        db.session.remove()
        if backend == "sqlite":
            db.engine.dispose()
            path = Path(databases.url("sqlite").removeprefix("sqlite:///"))
            for suffix in ("-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            shutil.copy(databases.sqlite_template, path)
        else:
            tables = [t.name for t in db.metadata.sorted_tables]
            with db.engine.begin() as conn:
                conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        try:
            limiter.reset()
        except Exception:  # noqa: BLE001 - storage without reset support
            pass


def _app_fixture(request, databases, backend: str):
    app = _session_app(databases, backend)
    ctx = app.app_context()
    ctx.push()
    app.backend = backend
    try:
        yield app
    finally:
        from config.extensions import db

        db.session.remove()
        ctx.pop()
        clock.freeze(None)
        reset_database(app, databases, backend)


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request, databases):
    """The application on each backend, in an app context, on an empty schema."""
    yield from _app_fixture(request, databases, request.param)


@pytest.fixture
def pg_app(request, databases):
    """PostgreSQL only: for races that need real concurrent writers."""
    yield from _app_fixture(request, databases, "postgresql")


@pytest.fixture
def sqlite_app(request, databases):
    yield from _app_fixture(request, databases, "sqlite")


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def redis_url():
    """The shared test Redis (mandatory in CI). Tests must namespace keys with the app's REDIS_PREFIX."""
    require_service("Redis", _redis_error())
    return REDIS_URL


@pytest.fixture
def frozen_clock():
    """Control time: frozen_clock(datetime) pins core.clock.now()."""
    yield clock.freeze
    clock.freeze(None)


@pytest.fixture
def mission(app):
    from tests.factories import MissionFactory

    return MissionFactory()


@pytest.fixture
def make_user(app, mission):
    """make_user(role, mission=None, **fields) -> a committed user (default: the test's mission)."""
    from tests.factories import UserFactory

    def _make(role: str = "medic", mission_=None, **fields):
        return UserFactory(role=role, mission_id=(mission_ or mission).id, **fields)

    return _make


@pytest.fixture
def headers():
    """headers(user) -> Authorization headers with a fresh token for that user."""
    from tests.helpers import auth_headers

    return auth_headers
