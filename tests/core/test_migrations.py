"""Migrations build the whole schema from empty on both databases, and match the models."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from config.extensions import db
from tests.conftest import PG_URL, _libpq, _pg_error, require_service

ROOT = Path(__file__).resolve().parents[2]


def test_migrated_schema_matches_the_models(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], diff


def flask_db(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "test", "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def tables(url: str) -> set[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_from_empty_and_downgrade_to_base(backend, tmp_path):
    if backend == "sqlite":
        url, cleanup = f"sqlite:///{tmp_path / 'fresh.db'}", None
    else:
        require_service("PostgreSQL", _pg_error())
        import psycopg

        name = f"mig_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = PG_URL.rsplit("/", 1)[0] + "/" + name

        def cleanup():
            with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    try:
        result = flask_db(url, "upgrade")
        assert result.returncode == 0, result.stderr
        assert {"users", "missions", "audit_log", "events"} <= tables(url)
        result = flask_db(url, "downgrade", "base")
        assert result.returncode == 0, result.stderr
        assert tables(url) <= {"alembic_version"}
    finally:
        if cleanup:
            cleanup()
