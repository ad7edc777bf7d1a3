"""users.email: set at creation and by PATCH /api/v1/users/{id}, stored lower-case, one user per address (409
naming `email`), 422 naming `email` for anything else; never shown to another mission. The mail settings."""

import pytest

from config.settings import ConfigError, Settings
from tests.factories import MissionFactory
from tests.helpers import assert_error


def test_admin_sets_email_lower_cased_and_it_is_unique(client, make_user, headers, mission):
    admin, medic, other = make_user("admin"), make_user("medic"), make_user("medic")
    body = client.patch(
        f"/api/v1/users/{medic.id}", json={"email": "  Medic.Ndongo@Mission.Example "}, headers=headers(admin)
    ).get_json()
    assert body["email"] == "medic.ndongo@mission.example"
    assert client.get("/api/v1/auth/me", headers=headers(medic)).get_json()["email"] == "medic.ndongo@mission.example"
    taken = assert_error(
        client.patch(
            f"/api/v1/users/{other.id}", json={"email": "MEDIC.NDONGO@mission.example"}, headers=headers(admin)
        ),
        409,
    )
    assert taken["fields"] == ["email"]
    created = client.post(
        "/api/v1/users",
        json={
            "username": "clin-1",
            "password": "long-enough-pass",
            "role": "clinician",
            "mission_id": mission.id,
            "email": "Clin@Mission.Example",
        },
        headers=headers(admin),
    )
    assert created.status_code == 201 and created.get_json()["email"] == "clin@mission.example"
    again = {"username": "clin-2", "password": "long-enough-pass", "role": "clinician", "mission_id": mission.id}
    assert_error(
        client.post("/api/v1/users", json={**again, "email": "clin@mission.example"}, headers=headers(admin)), 409
    )
    assert (
        client.patch(f"/api/v1/users/{medic.id}", json={"email": None}, headers=headers(admin)).get_json()["email"]
        is None
    )
    # Another mission's admin sees neither the user nor the address.
    stranger = make_user("admin", MissionFactory())
    assert_error(client.get(f"/api/v1/users/{created.get_json()['id']}", headers=headers(stranger)), 404)
    listed = client.get("/api/v1/users", headers=headers(stranger)).get_json()["items"]
    assert "clin@mission.example" not in str(listed)


BAD = [
    "not-an-address",
    "a@b",
    "two@@mission.example",
    "dot.@mission.example",
    "é@mission.example",
    "a b@x.org",
    "x" * 65 + "@mission.example",
    "a@" + "d" * 250 + ".org",
    12345,
    "nul\x00@x.org",
]


def test_bad_email_is_422_naming_email(client, make_user, headers, mission):
    admin, medic = make_user("admin"), make_user("medic")
    body = {"username": "new-user", "password": "long-enough-pass", "role": "medic", "mission_id": mission.id}
    for value in BAD:
        patch = client.patch(f"/api/v1/users/{medic.id}", json={"email": value}, headers=headers(admin))
        assert_error(patch, 422, ("email",))
        assert_error(
            client.post("/api/v1/users", json={**body, "email": value}, headers=headers(admin)), 422, ("email",)
        )


def test_mail_settings():
    with pytest.raises(ConfigError, match="MAIL_FROM"):
        Settings.from_env(ENV="test", SMTP_HOST="smtp.mission.example")
    settings = Settings.from_env(
        ENV="test", SMTP_HOST="smtp.mission.example", MAIL_FROM="medevac@mission.example", SMTP_PASSWORD="pw-secret-1"
    )
    assert settings.SMTP_PORT == 587 and settings.SMTP_STARTTLS is True
    assert "SMTP_PASSWORD" not in settings.public() and "pw-secret-1" not in str(settings.public())
