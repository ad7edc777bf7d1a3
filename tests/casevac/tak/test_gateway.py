"""The gateway's settings, its command and its /readyz line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from casevac.tak import context, inbound
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
    ctx = context.ensure_context(db.session, mission_code=mission.code)
    context.state(db.session, ctx, "tak.example:8087")
    assert client.get("/readyz").get_json()["tak"] == {f"{mission.code} tak.example:8087": "silent"}
    context.set_connected(db.session, ctx, "tak.example:8087", True)
    body = client.get("/readyz").get_json()
    assert body["tak"] == {f"{mission.code} tak.example:8087": "connected"} and body["status"] == "ok"
    context.set_connected(db.session, ctx, "tak.example:8087", False, "connect failed: refused")
    assert client.get("/readyz").get_json()["tak"] == {f"{mission.code} tak.example:8087": "disconnected"}
    clock.freeze(clock.now() + timedelta(minutes=3))
    assert client.get("/readyz").get_json()["tak"] == {f"{mission.code} tak.example:8087": "silent"}


def test_the_seq_mark_only_moves_forward(app, mission):
    ctx = context.ensure_context(db.session, mission_code=mission.code)
    row = context.state(db.session, ctx, "s:1")
    start = row.last_seq
    context.save_seq(db.session, ctx, "s:1", start + 10)
    context.save_seq(db.session, ctx, "s:1", start + 5)  # a slower copy of the gateway
    assert context.state(db.session, ctx, "s:1").last_seq == start + 10


def test_one_pass_sends_its_sa_then_the_picture_and_records_the_connection(app, mission):
    """The connection loop itself, against a plain TCP listener standing in for the TAK server."""
    import socket
    import threading

    from casevac.tak.codec import reading, stream
    from casevac.tak.models import TakGatewayState
    from tests.casevac.fleet.factories import AssetFactory
    from tests.casevac.tak.test_service import ATAK

    ctx = context.ensure_context(db.session, mission_code=mission.code)
    inbound.handle(db.session, ctx, ATAK)
    AssetFactory(mission_id=mission.id, callsign="DUSTOFF-9")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    received = bytearray()

    def serve():
        conn, _ = listener.accept()
        with conn:
            while chunk := conn.recv(65536):
                received.extend(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    Gateway(app, url=f"tcp://127.0.0.1:{port}", mission_code=mission.code).run(once=True)
    thread.join(5)
    listener.close()
    events = [reading.classify(stream.parse(raw)) for raw in stream.StreamSplitter().feed(bytes(received))]
    assert events[0].uid == ctx.uid and events[0].element.find("detail/takv") is not None
    # The picture, then the log after the saved mark: the filing (not yet sequenced when the mark was set)
    # comes again, as the same marker (same uid, same time: ATAK shows it once).
    assert [e.type for e in events[1:]] == ["b-r-f-h-c", "a-f-A-M-H-H", "b-r-f-h-c"]
    assert (events[3].uid, events[3].time) == (events[1].uid, events[1].time)
    assert all(e.own for e in events)
    row = db.session.query(TakGatewayState).filter_by(server=f"127.0.0.1:{port}").one()
    db.session.refresh(row)
    assert row.connected is False and row.last_error == "stopped" and row.connected_at is not None


def test_a_refused_connection_is_recorded(app, mission):
    import socket

    from casevac.tak.models import TakGatewayState

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there
    with pytest.raises(ConnectionRefusedError):
        Gateway(app, url=f"tcp://127.0.0.1:{port}", mission_code=mission.code).run(once=True)
    row = db.session.query(TakGatewayState).filter_by(server=f"127.0.0.1:{port}").one()
    assert row.connected is False and row.last_error.startswith("connect failed")


def test_an_unknown_mission_or_a_disabled_gateway_user_stops_the_command_with_a_message(app, mission):
    gateway = Gateway(app, url="tcp://127.0.0.1:9", mission_code="NOSUCH")
    with pytest.raises(GatewayConfigError, match="no mission with code 'NOSUCH'"):
        gateway.run(once=True)
    ctx = context.ensure_context(db.session, mission_code=mission.code)
    from core.models import User

    db.session.get(User, ctx.user_id).active = False
    db.session.commit()
    from tests.casevac.tak.test_service import ATAK

    assert inbound.handle(db.session, ctx, ATAK) == "refused"  # a running gateway stops filing at once
    with pytest.raises(GatewayConfigError, match="is disabled"):
        Gateway(app, url="tcp://127.0.0.1:9", mission_code=mission.code).run(once=True)


def test_a_tls_connection_with_no_application_data_does_not_block_the_loop(tmp_path):
    """After a TLS 1.3 handshake the server sends session tickets: the socket is readable, but holds no
    application data. The gateway's read must return at once (it blocked for its 10 s socket timeout, then
    took the connection for lost and reconnected, dropping what TAK sent meanwhile)."""
    import socket
    import ssl
    import threading
    import time
    from types import SimpleNamespace

    from casevac.tak.codec import stream
    from casevac.tak.gateway import SOCKET_TIMEOUT_SECONDS, Gateway
    from tests.e2e.test_nginx import make_certificate

    certs = make_certificate(tmp_path / "tls")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(str(certs / "fullchain.pem"), str(certs / "privkey.pem"))
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve():
        conn, _ = listener.accept()
        with server_context.wrap_socket(conn, server_side=True):  # sends TLS 1.3 tickets, then nothing
            done.wait(30)

    threading.Thread(target=serve, daemon=True).start()
    client_context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    raw = socket.create_connection(listener.getsockname(), timeout=10)
    sock = client_context.wrap_socket(raw, server_hostname="127.0.0.1")
    sock.settimeout(SOCKET_TIMEOUT_SECONDS)  # as Gateway.connect leaves it
    try:
        assert sock.version() == "TLSv1.3"
        gateway = SimpleNamespace(sock=sock, ctx=None)
        started = time.monotonic()
        for _ in range(4):
            Gateway._drain(gateway, stream.StreamSplitter(), None, wait=0.25)
        assert time.monotonic() - started < 3
    finally:
        done.set()
        sock.close()
        listener.close()
