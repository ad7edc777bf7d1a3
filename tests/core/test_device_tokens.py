"""Short device tokens (core.device_tokens): exchanged at login, 26 characters, and the JWT's security
properties: expiry, revocation, a disabled user, mission binding; sockets take them too."""

from datetime import timedelta

from config.extensions import db
from core import clock
from core.models import DeviceSession
from tests.factories import PASSWORD, MissionFactory
from tests.helpers import assert_error

LOGIN = "/api/v1/auth/login"


def device_login(client, user):
    response = client.post(LOGIN, json={"username": user.username, "password": PASSWORD, "device": True})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_login_issues_a_short_device_token_that_works_everywhere(client, make_user):
    medic = make_user("medic")
    answer = device_login(client, medic)
    token = answer["device_token"]
    assert token.startswith("d_") and len(token) == 26 and len(answer["access_token"]) > 400
    me = client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200 and me.get_json()["id"] == medic.id
    filed = client.post(
        "/api/v1/casevac/requests",
        headers=bearer(token),
        json={
            "location": {"lat": 4.36, "lon": 18.55},
            "callsign": "B26",
            "frequency": "38.90",
            "patients": {"urgent": 1},
            "litter": 1,
            "ambulatory": 0,
        },
    )
    assert filed.status_code == 201 and filed.get_json()["filed_by"] == medic.id
    # The role is the user's: a medic's device token is still a medic's.
    assert_error(client.get("/api/v1/users", headers=bearer(token)), 403)
    # Only its hash is stored.
    row = db.session.execute(db.select(DeviceSession)).scalar_one()
    assert row.token_hash != token and token not in repr(row)
    # Without device: true, no device token.
    plain = client.post(LOGIN, json={"username": medic.username, "password": PASSWORD}).get_json()
    assert "device_token" not in plain


def test_expiry(client, make_user, frozen_clock, app):
    medic = make_user("medic")
    token = device_login(client, medic)["device_token"]
    minutes = app.extensions["settings"].JWT_EXPIRES_MINUTES
    frozen_clock(clock.now() + timedelta(minutes=minutes) - timedelta(seconds=5))
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    frozen_clock(clock.now() + timedelta(seconds=10))
    response = client.get("/api/v1/auth/me", headers=bearer(token))
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_revocation_of_one_and_of_all(client, make_user, headers):
    medic = make_user("medic")
    first, second = device_login(client, medic)["device_token"], device_login(client, medic)["device_token"]
    assert client.delete("/api/v1/auth/device-token", headers=bearer(first)).status_code == 204
    assert_error(client.get("/api/v1/auth/me", headers=bearer(first)), 401)
    assert client.get("/api/v1/auth/me", headers=bearer(second)).status_code == 200
    # With the JWT: every device token of the user.
    assert client.delete("/api/v1/auth/device-token", headers=headers(medic)).status_code == 204
    assert_error(client.get("/api/v1/auth/me", headers=bearer(second)), 401)
    assert_error(client.delete("/api/v1/auth/device-token", headers=bearer(second)), 401)


def test_a_disabled_user_and_a_user_moved_to_another_mission_are_refused(client, make_user):
    medic, other = make_user("medic"), make_user("medic")
    token, other_token = device_login(client, medic)["device_token"], device_login(client, other)["device_token"]
    medic.active = False
    other.mission_id = MissionFactory().id
    db.session.commit()
    assert_error(client.get("/api/v1/auth/me", headers=bearer(token)), 401)
    assert_error(client.get("/api/v1/auth/me", headers=bearer(other_token)), 401)


def test_forged_and_unknown_tokens(client, make_user):
    device_login(client, make_user("medic"))
    for token in ("d_" + "A" * 24, "d_", "d_" + "x" * 100):
        assert_error(client.get("/api/v1/auth/me", headers=bearer(token)), 401)


def test_the_sweeper_drops_old_tokens(client, make_user, app):
    from core.device_tokens import purge_expired

    medic = make_user("medic")
    device_login(client, medic)
    settings = app.extensions["settings"]
    assert purge_expired(db.session, now=clock.now(), settings=settings) == 0
    later = clock.now() + timedelta(minutes=settings.JWT_EXPIRES_MINUTES, days=2)
    assert purge_expired(db.session, now=later, settings=settings) == 1


def test_socket_auth_takes_a_device_token(client, make_user):
    from core.auth import user_from_token

    medic = make_user("medic")
    token = device_login(client, medic)["device_token"]
    assert user_from_token(token).id == medic.id
    assert user_from_token("d_" + "B" * 24) is None
