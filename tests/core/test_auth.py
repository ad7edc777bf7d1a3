import jwt as pyjwt

from tests.factories import PASSWORD
from tests.helpers import assert_error


def login(client, username, password=PASSWORD, **kw):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password}, **kw)


def test_login_returns_token_and_user_without_hash(client, make_user):
    user = make_user("coordinator")
    response = login(client, user.username)
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["user"] == {
        **body["user"],
        "id": user.id,
        "username": user.username,
        "role": "coordinator",
        "mission_id": user.mission_id,
    }
    assert "password" not in response.get_data(as_text=True) and "argon2" not in response.get_data(as_text=True)
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.get_json()["id"] == user.id


def test_unknown_user_and_wrong_password_get_the_same_401(client, make_user):
    user = make_user()
    wrong = login(client, user.username, "not-the-password")
    unknown = login(client, "nobody-here")
    assert_error(wrong, 401)
    assert_error(unknown, 401)
    assert wrong.get_json()["message"] == unknown.get_json()["message"]


def test_disabled_user_cannot_log_in(client, make_user):
    user = make_user(active=False)
    assert_error(login(client, user.username), 401)


def test_missing_malformed_tampered_and_expired_tokens_are_401(client, make_user, app):
    user = make_user()
    assert_error(client.get("/api/v1/auth/me"), 401)
    assert_error(client.get("/api/v1/auth/me", headers={"Authorization": "Bearer nonsense"}), 401)
    token = login(client, user.username).get_json()["access_token"]
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}AAAA"
    assert_error(client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tampered}"}), 401)
    # Signed with another key.
    forged = pyjwt.encode(
        {"sub": user.id, "type": "access", "fresh": False, "jti": "x", "iat": 1, "nbf": 1, "exp": 4102444800},
        "another-key" * 4,
        algorithm="HS256",
    )
    assert_error(client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}), 401)
    # The "none" algorithm is refused (the algorithm is pinned).
    unsigned = pyjwt.encode(
        {"sub": user.id, "type": "access", "fresh": False, "jti": "x", "iat": 1, "nbf": 1, "exp": 4102444800},
        None,
        algorithm="none",
    )
    assert_error(client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {unsigned}"}), 401)
    # Expired.
    from core.auth import issue_token

    expired = issue_token(user, expires_minutes=-1)
    body = assert_error(client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {expired}"}), 401)
    assert "expired" in body["message"]


def test_login_rate_limited_per_account(client, make_user, app):
    user = make_user()
    limit = int(app.extensions["settings"].LOGIN_LIMIT_PER_ACCOUNT.split()[0])
    for _ in range(limit):
        assert login(client, user.username, "wrong-password").status_code == 401
    limited = login(client, user.username)
    assert_error(limited, 429)
    # Another account from the same address is not blocked by this account's limit.
    other = make_user()
    assert login(client, other.username).status_code == 200


def test_login_rate_limited_per_address(client, make_user, app):
    limit = int(app.extensions["settings"].LOGIN_LIMIT_PER_ADDRESS.split()[0])
    for i in range(limit):
        assert login(client, f"someone-{i}", "x").status_code == 401
    assert_error(login(client, "someone-else", "x"), 429)
    # Another address is not blocked.
    response = login(client, "someone-else", "x", environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert response.status_code == 401


def test_token_lifetime_is_jwt_expires_minutes(client, make_user):
    user = make_user()
    token = login(client, user.username).get_json()["access_token"]
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 12 * 60 * 60


def test_a_bad_bearer_token_is_401_before_the_body_is_validated(client, make_user):
    admin = make_user("admin")
    invalid_body = {"username": ""}
    assert_error(client.post("/api/v1/users", json=invalid_body, headers={"Authorization": "Bearer nonsense"}), 401)
    token = login(client, admin.username).get_json()["access_token"]
    assert_error(client.post("/api/v1/users", json=invalid_body, headers={"Authorization": f"Bearer {token}"}), 422)
