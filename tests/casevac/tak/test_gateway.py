"""The gateway's settings, its command and its /readyz line."""
from __future__ import annotations

from datetime import timedelta

import pytest

from casevac.tak import service
from casevac.tak.gateway import Gateway, GatewayConfigError, parse_url
from config.extensions import db
from core import clock


def test_tak_url_forms():
    assert parse_url("tcp://tak.example:8087") == ("tcp", "tak.example", 8087)
    assert parse_url("tls://10.0.0.5") == ("tls", "10.0.0.5", 8089)
    assert parse_url("tcp://[::1]:9000") == ("tcp", "::1", 9000)
    for bad in ("", "http://tak:8087", "tak:8087", "tcp://"):
        with pytest.raises(GatewayConfigError, match="TAK_URL"):
            parse_url(bad)


def test_settings_are_checked_before_connecting(app):
    with pytest.raises(GatewayConfigError, match="TAK_MISSION"):
        Gateway(app, url="tcp://127.0.0.1:8087", mission_code="")
    with pytest.raises(GatewayConfigError, match="TAK_CERT"):
        Gateway(app, url="tls://127.0.0.1:8089", mission_code="DEMO")


def test_the_command_explains_a_missing_setting(app):
    result = app.test_cli_runner().invoke(args=["tak-gateway"])
    assert result.exit_code != 0 and "TAK_URL must be tcp://host:port" in result.output


def test_readyz_shows_each_gateway(app, client, mission):
    assert "tak" not in client.get("/readyz").get_json()
    ctx = service.ensure_context(db.session, mission_code=mission.code)
    service.state(db.session, ctx, "tak.example:8087")
    assert client.get("/readyz").get_json()["tak"] == {f"{mission.code} tak.example:8087": "silent"}
    service.set_connected(db.session, ctx, "tak.example:8087", True)
    body = client.get("/readyz").get_json()
    assert body["tak"] == {f"{mission.code} tak.example:8087": "connected"} and body["status"] == "ok"
    service.set_connected(db.session, ctx, "tak.example:8087", False, "connect failed: refused")
    assert client.get("/readyz").get_json()["tak"] == {f"{mission.code} tak.example:8087": "disconnected"}
    clock.freeze(clock.now() + timedelta(minutes=3))
    assert client.get("/readyz").get_json()["tak"] == {f"{mission.code} tak.example:8087": "silent"}


def test_the_seq_mark_only_moves_forward(app, mission):
    ctx = service.ensure_context(db.session, mission_code=mission.code)
    row = service.state(db.session, ctx, "s:1")
    start = row.last_seq
    service.save_seq(db.session, ctx, "s:1", start + 10)
    service.save_seq(db.session, ctx, "s:1", start + 5)  # a slower copy of the gateway
    assert service.state(db.session, ctx, "s:1").last_seq == start + 10
