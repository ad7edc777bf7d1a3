from __future__ import annotations

from core.auth import issue_token


def auth_headers(user, expires_minutes: int = 60, **extra) -> dict:
    headers = {"Authorization": f"Bearer {issue_token(user, expires_minutes)}"}
    headers.update(extra)
    return headers


def assert_error(response, code: int, field_path: tuple[str, ...] | None = None, location: str = "json"):
    """The API.md error format; with field_path, the 422 names that field."""
    assert response.status_code == code, (response.status_code, response.get_data(as_text=True)[:500])
    body = response.get_json()
    assert body["code"] == code and isinstance(body["status"], str) and body["message"]
    if field_path:
        node = body["errors"][location]
        for part in field_path:
            assert part in node, (part, body["errors"])
            node = node[part]
    return body
