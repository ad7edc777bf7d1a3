"""Privilege by self-edit (issue 17, item 2), on SQLite and PostgreSQL: every credential of a clinician profile
that only an admin grants (a mental-health specialty, the mental_health kind, `active`) is refused to the
clinician themself on every path that sets it (POST and PATCH /telemed/clinicians), and granted by an admin."""

from __future__ import annotations

import pytest

from config.extensions import db
from telemed.scheduling.models import Clinician
from tests.helpers import assert_error
from tests.telemed.conftest import make_clinician  # noqa: F401 - fixture

C = "/api/v1/telemed/clinicians"


def _profile(clinician_id: str) -> Clinician:
    db.session.expire_all()
    return db.session.get(Clinician, clinician_id)


@pytest.mark.parametrize(
    "change",
    [
        {"kinds": ["diagnostic", "mental_health"]},
        {"kinds": ["mental_health"]},
        {"specialties": ["general_medicine", "psychiatry"]},
        {"specialties": ["psychology"]},
        {"specialties": ["general_medicine", "psychology"], "kinds": ["diagnostic", "mental_health"]},
        {"active": False},
        {"active": True},
    ],
)
def test_a_clinician_cannot_grant_themself_an_admin_only_credential_by_patch(
    app, client, headers, make_clinician, change
):
    general = make_clinician(specialties=("general_medicine",))
    before = (list(general.specialties), list(general.kinds), general.active)
    response = client.patch(f"{C}/{general.id}", json=change, headers=headers(general.user))
    assert_error(response, 403)
    after = _profile(general.id)
    assert (after.specialties, after.kinds, after.active) == before


@pytest.mark.parametrize(
    "extra",
    [
        {"kinds": ["mental_health"]},
        {"kinds": ["diagnostic", "mental_health"]},
        {"specialties": ["psychiatry"]},
        {"specialties": ["general_medicine", "psychology"]},
    ],
)
def test_a_clinician_cannot_create_their_profile_with_an_admin_only_credential(app, client, headers, make_user, extra):
    user = make_user("clinician")
    body = {"user_id": user.id, "specialties": ["general_medicine"], "languages": ["en"], "timezone": "UTC", **extra}
    assert_error(client.post(C, json=body, headers=headers(user)), 403)
    assert db.session.execute(db.select(Clinician).where(Clinician.user_id == user.id)).first() is None


def test_what_a_clinician_may_edit_themself_and_what_an_admin_grants(app, client, headers, make_user, make_clinician):
    general = make_clinician(specialties=("general_medicine",))
    psychiatrist = make_clinician(specialties=("psychiatry",))
    admin = make_user("admin")
    # Own languages, or keeping a credential already held: allowed.
    assert (
        client.patch(f"{C}/{general.id}", json={"languages": ["en", "fr"]}, headers=headers(general.user)).status_code
        == 200
    )
    assert (
        client.patch(
            f"{C}/{psychiatrist.id}",
            json={"kinds": ["mental_health"], "languages": ["fr"]},
            headers=headers(psychiatrist.user),
        ).status_code
        == 200
    )
    # Giving one up: allowed.
    assert (
        client.patch(
            f"{C}/{psychiatrist.id}",
            json={"specialties": ["general_medicine"], "kinds": ["diagnostic"]},
            headers=headers(psychiatrist.user),
        ).status_code
        == 200
    )
    # The admin grants.
    response = client.patch(
        f"{C}/{general.id}",
        json={"specialties": ["general_medicine", "psychiatry"], "kinds": ["diagnostic", "mental_health"]},
        headers=headers(admin),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert _profile(general.id).kinds == ["diagnostic", "mental_health"]
    user = make_user("clinician")
    created = client.post(
        C,
        json={
            "user_id": user.id,
            "specialties": ["psychology"],
            "languages": ["en"],
            "timezone": "UTC",
            "kinds": ["mental_health"],
        },
        headers=headers(admin),
    )
    assert created.status_code == 201, created.get_data(as_text=True)


def test_the_refused_self_grant_leaves_mental_health_bookings_out_of_reach(
    app, client, headers, make_user, make_clinician
):
    general = make_clinician(specialties=("general_medicine",))
    member = make_user("member")
    assert_error(
        client.patch(
            f"{C}/{general.id}", json={"kinds": ["diagnostic", "mental_health"]}, headers=headers(general.user)
        ),
        403,
    )
    slots = client.get("/api/v1/telemed/slots", query_string={"kind": "mental_health"}, headers=headers(member))
    assert slots.status_code == 200 and all(s["clinician_id"] != general.id for s in slots.get_json()["items"])
