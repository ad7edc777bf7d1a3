"""PATCH /api/v1/users/{id}: display name, SMS phone (E.164, unique), satellite IMEI (unique), by an admin of
the user's mission, audited."""

import pytest

from config.extensions import db
from core.models import AuditEntry
from tests.factories import MissionFactory
from tests.helpers import assert_error


def url(user):
    return f"/api/v1/users/{user.id}"


def test_admin_registers_phone_and_imei(client, make_user, headers):
    admin, medic = make_user("admin"), make_user("medic")
    response = client.patch(
        url(medic),
        json={"phone": "+236 70 12-34.56", "imei": "300234010753370", "display_name": "Cpl. Ndongo"},
        headers=headers(admin),
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["phone"], body["imei"], body["display_name"]) == ("+23670123456", "300234010753370", "Cpl. Ndongo")
    assert client.get(url(medic), headers=headers(medic)).get_json()["phone"] == "+23670123456"
    entries = db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "user.update")).scalars().all()
    assert [e.detail for e in entries] == [{"fields": ["display_name", "imei", "phone"]}]
    assert "+236" not in str(entries[0].detail)
    cleared = client.patch(url(medic), json={"phone": None}, headers=headers(admin)).get_json()
    assert cleared["phone"] is None and cleared["imei"] == "300234010753370"


def test_phone_and_imei_are_unique(client, make_user, headers):
    admin, first, second = make_user("admin"), make_user("medic"), make_user("medic")
    assert (
        client.patch(
            url(first), json={"phone": "+23670000001", "imei": "300234010753370"}, headers=headers(admin)
        ).status_code
        == 200
    )
    body = assert_error(client.patch(url(second), json={"phone": "0023670000001"}, headers=headers(admin)), 409)
    assert body["fields"] == ["phone"]
    assert_error(client.patch(url(second), json={"imei": "300234010753370"}, headers=headers(admin)), 409)
    # The same value again on the same user changes nothing.
    assert client.patch(url(first), json={"phone": "+23670000001"}, headers=headers(admin)).status_code == 200


@pytest.mark.parametrize(
    "field,value",
    [
        ("phone", "070123456"),
        ("phone", "+0123456789"),
        ("phone", "+12"),
        ("phone", "+1234567890123456"),
        ("imei", "30023401075337"),
        ("imei", "30023401075337x"),
        ("phone", 12345678),
        ("display_name", "x" * 201),
        ("display_name", "nul\x00"),
        ("phone", "+2367\x0001"),
    ],
)
def test_bad_values_are_422_naming_the_field(client, make_user, headers, field, value):
    admin, medic = make_user("admin"), make_user("medic")
    assert_error(client.patch(url(medic), json={field: value}, headers=headers(admin)), 422, (field,))


@pytest.mark.parametrize("role", ["coordinator", "medic", "clinician", "member"])
def test_only_admins(client, make_user, headers, role):
    actor, medic = make_user(role), make_user("medic")
    assert_error(client.patch(url(medic), json={"phone": "+23670000009"}, headers=headers(actor)), 403)
    assert_error(client.patch(url(actor), json={"phone": "+23670000009"}, headers=headers(actor)), 403)


def test_another_missions_user_is_unknown(client, make_user, headers):
    admin = make_user("admin")
    stranger = make_user("medic", MissionFactory())
    assert_error(client.patch(url(stranger), json={"phone": "+23670000009"}, headers=headers(admin)), 404)
    assert_error(client.patch("/api/v1/users/nope", json={"phone": "+23670000009"}, headers=headers(admin)), 404)
    assert_error(client.patch(url(stranger), json={"phone": "+23670000009"}), 401)
