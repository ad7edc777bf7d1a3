"""Security review, HTTP side: security headers on every kind of response, CORS closed by default (HTTP and
Socket.IO), the JWT algorithm pinned, login brute force limited per account and per address."""

from __future__ import annotations

import gzip
import json
import re

import jwt as pyjwt
import pytest

from core.http import SECURITY_HEADERS
from tests.factories import PASSWORD
from tests.helpers import assert_error

# Cache-Control is deliberately changed on ETag'd GETs and the OpenAPI document; the rest never change.
# HTTP behaviour, not storage: once, on SQLite (the login rate-limit tests alone cost ~40 argon2 hashes).
pytestmark = pytest.mark.parametrize("app", ["sqlite"], indirect=True)

FIXED_HEADERS = {k: v for k, v in SECURITY_HEADERS.items() if k != "Cache-Control"}
EVIL = "https://evil.example"


def _assert_security_headers(response, what):
    missing = {k: response.headers.get(k) for k, v in FIXED_HEADERS.items() if response.headers.get(k) != v}
    assert not missing, f"{what}: wrong or missing security headers {missing}"
    assert response.headers.get("Cache-Control"), what


def test_security_headers_on_success_and_on_every_error(client, make_user, headers, app):
    user = make_user("coordinator")
    big = app.extensions["settings"].MAX_BODY_KB * 1024 + 10
    responses = {
        "200 liveness": client.get("/healthz"),
        "200 authenticated": client.get("/api/v1/auth/me", headers=headers(user)),
        "200 openapi": client.get("/openapi.json"),
        "401": client.get("/api/v1/auth/me"),
        "403": client.get("/api/v1/users", headers=headers(user)),
        "404": client.get("/api/v1/nowhere"),
        "405": client.delete("/healthz"),
        "415": client.post("/api/v1/auth/login", data="a=b", content_type="application/x-www-form-urlencoded"),
        "422": client.post("/api/v1/auth/login", json={"username": ""}),
        "413": client.post(
            "/api/v1/auth/login", data=json.dumps({"username": "x" * big}), content_type="application/json"
        ),
        # Answered by the gzip middleware before Flask runs.
        "400 bad gzip": client.post(
            "/api/v1/auth/login",
            data=b"not gzip",
            content_type="application/json",
            headers={"Content-Encoding": "gzip"},
        ),
        "413 gzip bomb": client.post(
            "/api/v1/auth/login",
            content_type="application/json",
            data=gzip.compress(b"{" + b" " * big + b"}"),
            headers={"Content-Encoding": "gzip"},
        ),
    }
    for what, response in responses.items():
        assert str(response.status_code) == what.split()[0], (what, response.status_code)
        _assert_security_headers(response, what)
    # Responses carrying data must not be stored by shared caches.
    assert "no-store" in responses["401"].headers["Cache-Control"]
    assert "private" in responses["200 authenticated"].headers["Cache-Control"]


def test_cors_is_closed_by_default_for_http_and_preflight(client, make_user, headers):
    user = make_user("coordinator")
    for response in (
        client.get("/api/v1/auth/me", headers={**headers(user), "Origin": EVIL}),
        client.options(
            "/api/v1/auth/login",
            headers={
                "Origin": EVIL,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Content-Type",
            },
        ),
    ):
        assert not any(k.lower().startswith("access-control-allow") for k in response.headers.keys()), response.headers


def test_socketio_refuses_a_foreign_origin_by_default(client):
    # engine.io handshake over long-polling, as a browser on another site would start it.
    foreign = client.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": EVIL})
    assert foreign.status_code == 400
    assert "Access-Control-Allow-Origin" not in foreign.headers
    # Without an Origin header (native clients, python-socketio) the handshake works.
    native = client.get("/socket.io/?EIO=4&transport=polling")
    assert native.status_code == 200 and b'"sid"' in native.data


def _claims(user):
    return {
        "sub": user.id,
        "type": "access",
        "fresh": False,
        "jti": "j",
        "iat": 1,
        "nbf": 1,
        "exp": 4102444800,
        "role": user.role,
        "mission_id": user.mission_id,
    }


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_jwt_algorithm_is_pinned(client, make_user, app, algorithm):
    """A token signed with the right secret but another algorithm is refused: only HS256 is accepted."""
    user = make_user()
    secret = app.config["JWT_SECRET_KEY"]
    good = pyjwt.encode(_claims(user), secret, algorithm="HS256")
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    other = pyjwt.encode(_claims(user), secret, algorithm=algorithm)
    assert_error(client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {other}"}), 401)


def test_a_token_does_not_outlive_its_user(client, make_user, app):
    from config.extensions import db

    user = make_user("admin")
    token = pyjwt.encode(_claims(user), app.config["JWT_SECRET_KEY"], algorithm="HS256")
    user.active = False
    db.session.commit()
    assert_error(client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}), 401)


def _login(client, username, password="wrong-password", **kw):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password}, **kw)


def test_account_limit_ignores_the_spelling_of_the_username_and_blocks_the_right_password(client, make_user, app):
    user = make_user()
    limit = int(app.extensions["settings"].LOGIN_LIMIT_PER_ACCOUNT.split()[0])
    assert _login(client, user.username).status_code == 401  # one real wrong password
    for i in range(limit - 1):
        # Every attempt counts, even one refused before the password is checked (cheap: no argon2 here);
        # usernames are compared exactly, but the limiter counts every spelling against one account.
        spelling = user.username.upper() if i % 2 else user.username
        assert client.post("/api/v1/auth/login", json={"username": spelling}).status_code == 422
    blocked = _login(client, user.username, PASSWORD)
    assert_error(blocked, 429)
    assert int(blocked.headers["Retry-After"]) > 0
    assert "access_token" not in blocked.get_data(as_text=True)


def test_address_limit_cannot_be_bypassed_with_forwarded_headers(client, app):
    limit = int(app.extensions["settings"].LOGIN_LIMIT_PER_ADDRESS.split()[0])
    for i in range(limit):
        # Attempts refused before the password check count too (and cost no argon2 hash here).
        assert client.post("/api/v1/auth/login", json={"username": f"nobody-{i}"}).status_code == 422
    # The server trusts no client-supplied address header (no proxy is configured in front of it).
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
        value = "for=10.1.2.3" if header == "Forwarded" else "10.1.2.3"
        assert_error(_login(client, "nobody-else", headers={header: value}), 429)


def test_no_token_is_401_before_the_body_is_looked_at(client):
    """Found by the fuzzer: an anonymous caller with a bad body got 422 (validation ran first), which tells
    them about the endpoint. Now the missing token is answered first, on every protected endpoint."""
    from flask import current_app

    from tests.security.test_authz_matrix import MATRIX, ROLES, _url

    anon = ROLES.index("anon")
    for row in MATRIX:
        if row.own[anon] != 401 or (row.method, row.rule) not in _routes(current_app):
            continue
        url = _url(row.rule, {name: "x" for name in re.findall(r"<([^<>]+)>", row.rule)})
        response = client.open(url, method=row.method, json={"nonsense": ["\x00", -1, None]})
        assert response.status_code == 401, (row.method, row.rule, response.status_code)
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_an_undeclared_method_is_405_whatever_the_content_type(client):
    """Found by the fuzzer: PUT with a text body on a POST-only endpoint was 415, not 405."""
    response = client.put("/api/v1/auth/login", data="x", content_type="text/plain")
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]


def _routes(app):
    from tests.security.test_authz_matrix import route_table

    return route_table(app)
