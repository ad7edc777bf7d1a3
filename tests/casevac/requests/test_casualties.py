"""MIST-AT casualties: vital signs append to a history (never overwrite), treatments with their times."""

from datetime import datetime, timedelta, timezone

from tests.casevac.conftest import CASUALTY
from tests.helpers import assert_error

T0 = datetime(2026, 11, 28, 9, 20, tzinfo=timezone.utc)


def test_signs_append_and_the_request_view_stays_compact(
    client, headers, medic, coordinator, file_request, frozen_clock
):
    frozen_clock(T0)
    filed = file_request(casualties=[CASUALTY])
    casualty_id = filed["casualties"][0]["id"]
    url = f"/api/v1/casevac/casualties/{casualty_id}"
    for minute, pulse in ((5, 120), (10, 110), (15, 100)):
        frozen_clock(T0 + timedelta(minutes=minute))
        response = client.patch(url, json={"signs": {"pulse": pulse, "spo2": 94}}, headers=headers(medic))
        assert response.status_code == 200, response.get_json()
    detail = client.get(url, headers=headers(coordinator)).get_json()
    assert [s["pulse"] for s in detail["signs_history"]] == [128, 120, 110, 100]  # first reading kept
    from config.extensions import db
    from core.models import AuditEntry

    reads = (
        db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "casevac.casualty.read")).scalars().all()
    )
    assert [(a.actor_id, a.subject_id) for a in reads] == [(coordinator.id, casualty_id)]
    assert detail["signs"]["pulse"] == 100 and detail["signs_count"] == 4 and detail["request_id"] == filed["id"]
    request_view = client.get(f"/api/v1/casevac/requests/{filed['id']}", headers=headers(coordinator)).get_json()
    casualty = request_view["casualties"][0]
    assert "signs_history" not in casualty and casualty["signs"]["pulse"] == 100 and casualty["signs_count"] == 4


def test_treatments_append_and_corrections_replace_fields(client, headers, medic, file_request, frozen_clock):
    frozen_clock(T0)
    filed = file_request(casualties=[CASUALTY])
    url = f"/api/v1/casevac/casualties/{filed['casualties'][0]['id']}"
    changed = client.patch(
        url,
        json={
            "treatments": [{"code": "txa", "at": "2026-11-28T09:18:00Z"}, {"code": "analgesia"}],
            "age": 28,
            "injuries": ["left leg amputation", "burns"],
        },
        headers=headers(medic),
    ).get_json()
    assert [t["code"] for t in changed["treatments"]] == ["tourniquet", "txa", "analgesia"]
    assert changed["treatments"][2]["at"] == T0.isoformat()  # no time given: the recording time
    assert changed["age"] == 28 and changed["injuries"] == ["left leg amputation", "burns"]
    assert_error(client.patch(url, json={"signs": {"pulse": 999}}, headers=headers(medic)), 422, ("signs", "pulse"))
    assert_error(
        client.patch(url, json={"treatments": [{"code": "magic"}]}, headers=headers(medic)),
        422,
        ("treatments", "0", "code"),
    )


def test_add_casualty_up_to_the_patient_count(client, headers, medic, coordinator, file_request):
    filed = file_request()  # two patients, no casualty yet
    url = f"/api/v1/casevac/requests/{filed['id']}/casualties"
    first = client.post(url, json={"zap": "B-7", "mechanism": "gunshot"}, headers=headers(medic))
    assert first.status_code == 201 and first.get_json()["precedence"] == "urgent"  # the request's by default
    second = client.post(url, json={"zap": "B-8", "precedence": "urgent_surgical"}, headers=headers(coordinator))
    assert second.status_code == 201 and second.get_json()["precedence"] == "urgent_surgical"
    assert_error(client.post(url, json={"zap": "B-9"}, headers=headers(medic)), 409)
    assert [
        c["zap"]
        for c in client.get(f"/api/v1/casevac/requests/{filed['id']}", headers=headers(medic)).get_json()["casualties"]
    ] == ["B-7", "B-8"]


def test_other_users_cannot_read_or_change_a_casualty(client, headers, medic, make_user, file_request):
    from tests.factories import MissionFactory

    filed = file_request(casualties=[CASUALTY])
    url = f"/api/v1/casevac/casualties/{filed['casualties'][0]['id']}"
    other_medic = make_user("medic")
    foreign_coordinator = make_user("coordinator", MissionFactory())
    for user in (other_medic, foreign_coordinator):
        assert_error(client.get(url, headers=headers(user)), 404)
        assert_error(client.patch(url, json={"age": 30}, headers=headers(user)), 404)
    assert_error(client.get(url, headers=headers(make_user("clinician"))), 403)
    assert_error(client.get("/api/v1/casevac/casualties/no-such-id", headers=headers(medic)), 404)
