"""No 500 from input (issue 17, items 4 and 5), on SQLite and PostgreSQL: deep JSON, NUL bytes and lone
surrogates, times that overflow in UTC, forged cursors, `sync` since beyond 2^63, chunked and gzip bodies,
unknown content encodings."""

from __future__ import annotations

import base64
import gzip
import io
import json
from urllib.parse import quote

import pytest

from tests.casevac.conftest import body as casevac_body
from tests.casevac.fleet.factories import AssetFactory
from tests.helpers import assert_error
from tests.realtime.conftest import token_of

OVERFLOWING = [
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59+00:00",
]


def _deep(depth: int):
    return "[" * depth + "]" * depth


def _login_raw(client, data: bytes, **headers):
    return client.post("/api/v1/auth/login", data=data, headers={"Content-Type": "application/json", **headers})


# -- nesting ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deeply_nested_json_is_a_400_everywhere(app, client, make_user, headers, depth):
    assert_error(_login_raw(client, _deep(depth).encode()), 400)
    admin = make_user("admin")
    nested = '{"code": "AB", "name": ' + _deep(depth) + "}"
    assert_error(
        client.post("/api/v1/missions", data=nested, headers={**headers(admin), "Content-Type": "application/json"}),
        400,
    )


def test_deep_login_bodies_are_still_rate_limited(app, client):
    # LOGIN_LIMIT_PER_ACCOUNT is 10 per minute: an unparsable body counts like any other attempt.
    answers = [_login_raw(client, _deep(1000).encode()).status_code for _ in range(12)]
    assert answers[:10] == [400] * 10 and answers[10:] == [429, 429], answers


def test_nesting_within_the_limit_is_judged_by_the_schema(app, client):
    assert_error(_login_raw(client, _deep(32).encode()), 422)


# -- NUL and lone surrogates -------------------------------------------------------------------------------------

BAD_TEXT = ["a\x00b", "\ud800", "x\udfffy"]


def _raw_json(document) -> bytes:
    # json.dumps escapes a lone surrogate as \\udXXX, which is what a client sends on the wire.
    return json.dumps(document).encode()


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_login_username_and_password_with_nul_or_surrogate_are_422(app, client, bad):
    for field in ("username", "password"):
        document = {"username": "demo-admin", "password": "secret-password", field: bad}
        assert_error(_login_raw(client, _raw_json(document)), 422, (field,))


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_users_and_missions_with_nul_or_surrogate_are_422(app, client, mission, make_user, headers, bad):
    superadmin = make_user("admin", superadmin=True)
    auth = {**headers(superadmin), "Content-Type": "application/json"}
    user = {"username": "new-user", "password": "long-enough-password", "role": "medic", "mission_id": mission.id}
    for field in ("display_name", "mission_id", "username"):
        response = client.post("/api/v1/users", data=_raw_json({**user, field: bad}), headers=auth)
        assert_error(response, 422, (field,))
    for field in ("name", "code", "timezone"):
        document = {"code": "NEWM", "name": "New mission", field: bad}
        assert_error(client.post("/api/v1/missions", data=_raw_json(document), headers=auth), 422, (field,))
    # A key too, nested anywhere, in any domain's body.
    medic = make_user("medic")
    filing = casevac_body()
    filing["casualties"] = [{"zap": "A-1", bad: 1}]
    response = client.post(
        "/api/v1/casevac/requests",
        data=_raw_json(filing),
        headers={**headers(medic), "Content-Type": "application/json"},
    )
    assert_error(response, 422, ("casualties", "0"))


# -- times that overflow in UTC ----------------------------------------------------------------------------------


@pytest.mark.parametrize("moment", OVERFLOWING)
def test_times_that_overflow_in_utc_are_422_in_every_time_field(app, client, make_user, headers, moment):
    medic, coordinator = make_user("medic"), make_user("coordinator")
    filing = casevac_body(casualties=[{"zap": "A-1", "time_of_injury": moment}])
    assert_error(
        client.post("/api/v1/casevac/requests", json=filing, headers=headers(medic)),
        422,
        ("casualties", "0", "time_of_injury"),
    )
    for name in ("from", "to"):
        assert_error(
            client.get(f"/api/v1/casevac/metrics?{name}={quote(moment)}", headers=headers(coordinator)),
            422,
            (name,),
            location="query",
        )
    asset = AssetFactory(mission_id=coordinator.mission_id)
    response = client.post(
        f"/api/v1/assets/{asset.id}/positions",
        json={"lat": 4.36, "lon": 18.55, "reported_at": moment},
        headers=headers(coordinator),
    )
    assert_error(response, 422, ("reported_at",))
    response = client.post(
        f"/api/v1/assets/{asset.id}/positions",
        json={"fixes": [{"lat": 4.36, "lon": 18.55, "reported_at": moment}]},
        headers=headers(coordinator),
    )
    assert_error(response, 422, ("fixes",))
    assert_error(
        client.get(f"/api/v1/assets/{asset.id}/positions?since={quote(moment)}", headers=headers(coordinator)),
        422,
        ("since",),
        location="query",
    )


# -- forged cursors ----------------------------------------------------------------------------------------------


def _cursor(values) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


FORGED = [
    _cursor(["M0001", 2**70]),
    _cursor([2**70]),
    _cursor(["a\u0000b", "x"]),
    _cursor(["\ud800", "x"]),
    _cursor([{"t": "0001-01-01T00:00:00+05:00"}, "x"]),
    _cursor([{"t": "9999-12-31T23:59:59-05:00"}]),
    _cursor([True, "x"]),
    _cursor([1e400, "x"]),
    _cursor(["x"] * 3),
    _cursor([]),
    _cursor({"a": 1}),
    _cursor([{"t": "2026-12-01T10:00:00"}, "x"]),
    _cursor([{"t": "2026-12-01T10:00:00"}]),
    _cursor([[1], "x"]),
    base64.urlsafe_b64encode(_deep(5000).encode()).decode(),
    "A" * 5000,
    "%%%",
    "\u00e9t\u00e9",
]


@pytest.mark.parametrize("cursor", FORGED)
def test_forged_cursors_are_422_on_every_kind_of_sort_key(app, client, make_user, headers, cursor):
    admin, coordinator = make_user("admin"), make_user("coordinator")
    for path, user in [
        ("/api/v1/missions", admin),
        ("/api/v1/users", admin),
        ("/api/v1/audit", admin),
        ("/api/v1/casevac/requests", coordinator),
        ("/api/v1/assets", coordinator),
        ("/api/v1/telemed/slots", coordinator),
        ("/api/v1/telemed/consultations", coordinator),
    ]:
        response = client.get(path, query_string={"cursor": cursor}, headers=headers(user))
        assert_error(response, 422, ("cursor",), location="query")


# -- sync since beyond 2^63 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("since", [2**63, 2**64, 10**30])
def test_sync_since_beyond_bigint_is_an_error_acknowledgement(app, make_user, since):
    from config.extensions import socketio

    sock = socketio.test_client(app, auth={"token": token_of(make_user("coordinator"))})
    ack = sock.emit("sync", {"since": since}, callback=True)
    assert ack["code"] == 422 and "since" in ack["errors"]
    assert sock.emit("sync", {"since": 2**63 - 1}, callback=True)["events"] == []
    sock.disconnect()


# -- body limits by the back door --------------------------------------------------------------------------------


def _chunked(client, data: bytes, **headers):
    """A login POST without Content-Length, as a server hands a chunked body to the app (the stream ends at the
    body's end: wsgi.input_terminated). tests/e2e/test_nginx.py sends real chunked bodies to gunicorn."""
    return client.post(
        "/api/v1/auth/login",
        input_stream=io.BytesIO(data),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked", **headers},
        environ_overrides={"wsgi.input_terminated": True},
    )


def _padded_login(kb: int) -> bytes:
    return json.dumps({"username": "nobody", "password": "x", "pad": "p" * (kb * 1024)}).encode()


@pytest.mark.parametrize("kb", [600, 4 * 1024, 9 * 1024])
def test_a_chunked_json_body_above_the_cap_is_413(app, client, kb):
    assert_error(_chunked(client, _padded_login(kb)), 413)


def test_a_chunked_json_body_within_the_cap_is_read(app, client, make_user):
    from tests.factories import PASSWORD

    user = make_user("medic")
    data = json.dumps({"username": user.username, "password": PASSWORD}).encode()
    response = _chunked(client, data)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_gzip_body_sent_chunked_is_read_not_taken_as_empty(app, client, make_user):
    from tests.factories import PASSWORD

    user = make_user("medic")
    data = gzip.compress(json.dumps({"username": user.username, "password": PASSWORD}).encode())
    response = _chunked(client, data, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize("chunked", [False, True])
def test_gzip_bombs_above_the_cap_are_413(app, client, chunked):
    bomb = gzip.compress(_padded_login(2 * 1024))  # 2 MB of JSON in a few KB
    assert len(bomb) < 64 * 1024
    if chunked:
        response = _chunked(client, bomb, **{"Content-Encoding": "gzip"})
    else:
        response = client.post(
            "/api/v1/auth/login", data=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )
    assert_error(response, 413)
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("encoding", ["br", "compress", "gzip, br", "zstd"])
def test_an_unknown_content_encoding_is_415(app, client, encoding):
    response = client.post(
        "/api/v1/auth/login",
        data=b'{"username": "a", "password": "b"}',
        headers={"Content-Type": "application/json", "Content-Encoding": encoding},
    )
    body = assert_error(response, 415)
    assert "Content-Encoding" in body["message"]
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
