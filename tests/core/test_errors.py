import gzip
import json

from tests.helpers import assert_error


def test_404_405_in_api_format(client):
    assert_error(client.get("/api/v1/does-not-exist"), 404)
    response = client.delete("/healthz")
    assert_error(response, 405)
    assert "GET" in response.headers["Allow"]


def test_malformed_json_and_wrong_content_type_are_4xx(client):
    response = client.post("/api/v1/auth/login", data="{not json", content_type="application/json")
    assert_error(response, 400)
    response = client.post("/api/v1/auth/login", data="username=a", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415)
    response = client.post("/api/v1/auth/login", data="[1, 2]", content_type="application/json")
    assert 400 <= response.status_code < 500


def test_body_too_large_is_413(client, app):
    limit = app.extensions["settings"].MAX_BODY_KB * 1024
    response = client.post(
        "/api/v1/auth/login", data=json.dumps({"username": "x" * (limit + 10)}), content_type="application/json"
    )
    assert_error(response, 413)


def test_gzip_body_is_accepted_and_gzip_bomb_refused(client, make_user, app):
    from tests.factories import PASSWORD

    user = make_user()
    body = gzip.compress(json.dumps({"username": user.username, "password": PASSWORD}).encode())
    response = client.post(
        "/api/v1/auth/login", data=body, content_type="application/json", headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 200
    bomb = gzip.compress(b"{" + b" " * (app.extensions["settings"].MAX_BODY_KB * 1024 + 100) + b"}")
    response = client.post(
        "/api/v1/auth/login", data=bomb, content_type="application/json", headers={"Content-Encoding": "gzip"}
    )
    assert_error(response, 413)
    response = client.post(
        "/api/v1/auth/login", data=b"not gzip", content_type="application/json", headers={"Content-Encoding": "gzip"}
    )
    assert_error(response, 400)


def test_unexpected_exception_is_500_without_internals(client, make_user, headers, monkeypatch, caplog):
    from core import service

    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(service, "list_missions", boom)
    response = client.get("/api/v1/missions", headers=headers(make_user()))
    body = assert_error(response, 500)
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert body["request_id"]
    assert any(
        getattr(r, "request_id", None) == body["request_id"] or body["request_id"] in r.getMessage() or r.exc_info
        for r in caplog.records
    )


def test_security_headers_and_etag(client, make_user, headers):
    user = make_user()
    response = client.get("/api/v1/auth/me", headers=headers(user))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    etag = response.headers["ETag"]
    again = client.get("/api/v1/auth/me", headers={**headers(user), "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


def test_cors_closed_by_default(client):
    response = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_health_readiness_and_openapi(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ok", "database": "ok", "redis": "disabled"}
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/auth/login" in spec["paths"]


def test_nul_or_lone_surrogate_in_path_or_query_is_4xx_never_500(client, make_user, headers):
    user = make_user("admin")
    assert_error(client.get("/api/v1/users/%00abc", headers=headers(user)), 404)
    assert_error(client.get("/api/v1/casevac/requests/%00", headers=headers(user)), 404)
    body = assert_error(client.get("/api/v1/users?role=%00", headers=headers(user)), 422, ("role",), "query")
    assert "NUL" in body["errors"]["query"]["role"][0]
