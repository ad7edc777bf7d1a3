"""Migration 0007_links up and down on both databases, with data: users keep their rows, the new unique
constraints hold, the downgrade removes only what it added."""

import os
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL, _libpq, _pg_error, require_service
from tests.core.test_migrations import ROOT


def flask_db(url, *args):
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "test", "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'links.db'}"
        return
    require_service("PostgreSQL", _pg_error())
    import psycopg

    name = f"mig_links_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def engine(url):
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def test_0007_links_up_and_down_with_data(empty_database):
    url = empty_database
    flask_db(url, "upgrade", "0004_evacuation_care")
    db = engine(url)
    try:
        with db.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO missions (id, code, name, timezone, created_at) "
                    "VALUES ('m1', 'M1', 'Mission', 'UTC', CURRENT_TIMESTAMP)"
                )
            )
            for n in (1, 2):
                conn.execute(
                    sa.text(
                        "INSERT INTO users (id, username, password_hash, role, mission_id, superadmin, active, "
                        "created_at) "
                        f"VALUES ('u{n}', 'user{n}', 'x', 'medic', 'm1', false, true, CURRENT_TIMESTAMP)"
                    )
                )
        flask_db(url, "upgrade", "0007_links")
        inspector = sa.inspect(db)
        assert {"casevac_gateways", "casevac_inbound_messages", "device_sessions"} <= set(inspector.get_table_names())
        assert {"phone", "imei"} <= {c["name"] for c in inspector.get_columns("users")}
        with db.begin() as conn:
            conn.execute(sa.text("UPDATE users SET phone = '+23670000001', imei = '300234010753370' WHERE id = 'u1'"))
            conn.execute(
                sa.text(
                    "INSERT INTO casevac_gateways (id, mission_id, name, kind, secret_hash, created_at) "
                    "VALUES ('g1', 'm1', 'sms', 'sms', 'h', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO casevac_inbound_messages (gateway_id, channel, message_id, sender, "
                    "outcome, received_at) "
                    "VALUES ('g1', 'sms', 'SM1', '+1', 'refused', CURRENT_TIMESTAMP)"
                )
            )
        for statement in (
            "UPDATE users SET phone = '+23670000001' WHERE id = 'u2'",
            "UPDATE users SET imei = '300234010753370' WHERE id = 'u2'",
            "INSERT INTO casevac_inbound_messages (gateway_id, channel, message_id, sender, outcome, "
            "received_at) VALUES ('g1', 'sms', 'SM1', '+1', 'refused', CURRENT_TIMESTAMP)",
            "INSERT INTO casevac_inbound_messages (gateway_id, channel, sender, outcome, received_at) "
            "VALUES ('g1', 'sms', '+1', 'refused', CURRENT_TIMESTAMP)",
        ):
            with pytest.raises(sa.exc.IntegrityError):
                with db.begin() as conn:
                    conn.execute(sa.text(statement))
        db.dispose()
        flask_db(url, "downgrade", "0004_evacuation_care")
        inspector = sa.inspect(db)
        added = {"casevac_gateways", "casevac_inbound_messages", "device_sessions"}
        assert not added & set(inspector.get_table_names())
        assert not {"phone", "imei"} & {c["name"] for c in inspector.get_columns("users")}
        with db.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar() == 2
    finally:
        db.dispose()
