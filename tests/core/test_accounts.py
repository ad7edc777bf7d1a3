import pytest

from tests.factories import MissionFactory
from tests.helpers import assert_error

ROLES = ["admin", "coordinator", "medic", "clinician", "member"]


def new_user_body(mission_id, **kw):
    body = {"username": "new.user", "password": "long-enough-pw", "role": "medic", "mission_id": mission_id}
    body.update(kw)
    return body


@pytest.mark.parametrize("role", ROLES)
def test_only_admins_create_and_list_users(client, make_user, headers, mission, role):
    actor = make_user(role)
    created = client.post("/api/v1/users", json=new_user_body(mission.id), headers=headers(actor))
    listed = client.get("/api/v1/users", headers=headers(actor))
    if role == "admin":
        assert created.status_code == 201
        body = created.get_json()
        assert body["username"] == "new.user" and "password" not in body and "password_hash" not in body
        assert listed.status_code == 200
        assert "new.user" in [u["username"] for u in listed.get_json()["items"]]
    else:
        assert_error(created, 403)
        assert_error(listed, 403)


def test_admin_of_one_mission_cannot_touch_another(client, make_user, headers):
    admin_a = make_user("admin")
    mission_b = MissionFactory()
    user_b = make_user("medic", mission_b)
    response = client.post("/api/v1/users", json=new_user_body(mission_b.id), headers=headers(admin_a))
    assert_error(response, 422, ("mission_id",))
    listed = client.get(f"/api/v1/users?mission_id={mission_b.id}", headers=headers(admin_a)).get_json()
    assert listed["items"] == []
    listed_all = client.get("/api/v1/users", headers=headers(admin_a)).get_json()
    assert user_b.id not in [u["id"] for u in listed_all["items"]]
    assert_error(client.get(f"/api/v1/users/{user_b.id}", headers=headers(admin_a)), 404)
    assert_error(client.get(f"/api/v1/missions/{mission_b.id}", headers=headers(admin_a)), 404)


def test_superadmin_creates_missions_and_crosses_them(client, make_user, headers):
    superadmin = make_user("admin", superadmin=True)
    admin = make_user("admin")
    body = {"code": "MINUSCA-2", "name": "Second mission", "lat": 4.0, "lon": 18.0, "timezone": "Africa/Bangui"}
    assert_error(client.post("/api/v1/missions", json=body, headers=headers(admin)), 403)
    created = client.post("/api/v1/missions", json=body, headers=headers(superadmin))
    assert created.status_code == 201
    mission_id = created.get_json()["id"]
    duplicate = client.post("/api/v1/missions", json=body, headers=headers(superadmin))
    assert_error(duplicate, 409)
    bad_zone = client.post(
        "/api/v1/missions", json={**body, "code": "X-1", "timezone": "Mars/Olympus"}, headers=headers(superadmin)
    )
    assert_error(bad_zone, 422, ("timezone",))
    user = client.post("/api/v1/users", json=new_user_body(mission_id), headers=headers(superadmin))
    assert user.status_code == 201 and user.get_json()["mission_id"] == mission_id


def test_user_validation_names_fields(client, make_user, headers, mission):
    admin = make_user("admin")
    response = client.post(
        "/api/v1/users", json=new_user_body(mission.id, role="general", password="short"), headers=headers(admin)
    )
    body = assert_error(response, 422, ("role",))
    assert "password" in body["errors"]["json"]
    assert "admin" in body["errors"]["json"]["role"][0]  # the allowed values are named


def test_duplicate_username_is_409(client, make_user, headers, mission):
    admin = make_user("admin")
    assert client.post("/api/v1/users", json=new_user_body(mission.id), headers=headers(admin)).status_code == 201
    assert_error(client.post("/api/v1/users", json=new_user_body(mission.id), headers=headers(admin)), 409)


def test_audit_log_records_changes_for_admins_only(client, make_user, headers, mission):
    admin = make_user("admin")
    created = client.post("/api/v1/users", json=new_user_body(mission.id), headers=headers(admin)).get_json()
    audit = client.get(f"/api/v1/audit?subject_id={created['id']}", headers=headers(admin))
    assert audit.status_code == 200
    entries = audit.get_json()["items"]
    assert [e["action"] for e in entries] == ["user.create"]
    assert entries[0]["actor_id"] == admin.id and entries[0]["address"]
    assert_error(client.get("/api/v1/audit", headers=headers(make_user("coordinator"))), 403)
    other_admin = make_user("admin", MissionFactory())
    assert (
        client.get(f"/api/v1/audit?subject_id={created['id']}", headers=headers(other_admin)).get_json()["items"] == []
    )


def test_audit_log_is_append_only_in_the_database(app, make_user):
    import sqlalchemy as sa

    from config.extensions import db
    from core import audit

    actor = make_user("admin")
    audit.record(db.session, actor=actor, action="x", subject_type="t", subject_id="1")
    db.session.commit()
    with pytest.raises(sa.exc.DatabaseError):
        db.session.execute(sa.text("UPDATE audit_log SET action = 'y'"))
        db.session.commit()
    db.session.rollback()
    with pytest.raises(sa.exc.DatabaseError):
        db.session.execute(sa.text("DELETE FROM audit_log"))
        db.session.commit()
    db.session.rollback()


def test_pagination_walks_every_user_once(client, make_user, headers):
    admin = make_user("admin")
    for _ in range(7):
        make_user("medic")
    seen, cursor = [], None
    while True:
        url = "/api/v1/users?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=headers(admin)).get_json()
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 8
    assert_error(client.get("/api/v1/users?cursor=garbage", headers=headers(admin)), 422, ("cursor",), "query")
    assert_error(client.get("/api/v1/users?limit=501", headers=headers(admin)), 422, ("limit",), "query")
