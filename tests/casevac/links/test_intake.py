"""SMS and satellite intake over HTTP: gateway secrets (issue, revoke), the generic JSON form, Twilio's and
SMSSync's form posts answered in their own formats, RockBLOCK's web hook; unknown senders refused and
logged, duplicates answered the same, wrong lines answered with the parser's error."""

import base64
import logging
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest

from casevac.links import sbd
from casevac.links.models import InboundMessage
from casevac.requests.models import CasevacRequest
from config.extensions import db
from core.models import AuditEntry
from realtime.models import Event
from tests.helpers import assert_error

SMS = "/api/v1/casevac/sms"
LINES_1_5 = "1 34NBK2863382493 2 38.90 BRAVO26 3 1A 1B 4 B 5 2L"
PHONE = "+23670123456"
IMEI = "300234010753370"

BANGUI_NOON = datetime(2026, 11, 28, 10, 45, tzinfo=timezone.utc)


@pytest.fixture
def admin(make_user):
    return make_user("admin")


@pytest.fixture
def medic(make_user):
    return make_user("medic", phone=PHONE, imei=IMEI)


@pytest.fixture
def gateway(client, headers, admin):
    def _make(kind="sms", name=None):
        response = client.post(
            "/api/v1/casevac/gateways", json={"name": name or f"{kind}-gw", "kind": kind}, headers=headers(admin)
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return _make


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


def requests_in_db():
    return db.session.execute(db.select(CasevacRequest)).scalars().all()


def test_a_text_9_line_is_filed_as_the_medic_and_completed_later(client, headers, gateway, medic):
    secret = gateway()["secret"]
    first = client.post(SMS, json={"from": PHONE, "text": LINES_1_5, "message_id": "m-1"}, headers=bearer(secret))
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    request_id = body["request_id"]
    assert body["reply"].startswith("CASEVAC ") and "REQUESTED URGENT 2 PAX. SEND 6 7 8 9" in body["reply"]
    assert len(body["reply"]) <= 160
    filed = client.get(f"/api/v1/casevac/requests/{request_id}", headers=headers(medic)).get_json()
    assert filed["filed_by"] == medic.id and filed["equipment"] == ["hoist"] and filed["location"]["source"] == "mgrs"
    assert filed["client_ref"].startswith("sms-")
    # First-class: the coordinators' event went out like for any filing.
    assert db.session.execute(db.select(Event).where(Event.type == "casevac.created")).scalars().all()
    later = client.post(
        SMS, json={"from": PHONE, "text": "6 P 7 C 8 2A 9 NONE", "message_id": "m-2"}, headers=bearer(secret)
    ).get_json()
    assert later["request_id"] == request_id and "LINES 6,7,8,9 IN" in later["reply"] and "SEND" not in later["reply"]
    done = client.get(f"/api/v1/casevac/requests/{request_id}", headers=headers(medic)).get_json()
    assert done["lines_complete"] and done["security"] == "P" and done["nationality"] == {"un_military": 2}
    actions = [a.action for a in db.session.execute(db.select(AuditEntry).order_by(AuditEntry.id)).scalars()]
    assert "casevac.link.filed" in actions and "casevac.link.completed" in actions
    link_audit = db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "casevac.link.filed")).scalar_one()
    assert link_audit.detail["channel"] == "sms" and link_audit.subject_id == request_id


def test_the_same_message_id_changes_nothing_and_answers_the_same(client, gateway, medic):
    secret = gateway()["secret"]
    message = {"from": PHONE, "text": LINES_1_5, "message_id": "dup-1"}
    answers = [client.post(SMS, json=message, headers=bearer(secret)).get_json() for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    assert len(requests_in_db()) == 1
    assert db.session.execute(db.select(db.func.count()).select_from(InboundMessage)).scalar() == 1
    # Another message id with the same text is another request (a second casualty event).
    other = client.post(SMS, json={**message, "message_id": "dup-2"}, headers=bearer(secret)).get_json()
    assert other["request_id"] != answers[0]["request_id"] and len(requests_in_db()) == 2


def test_a_wrong_line_answers_the_parsers_error_and_files_nothing(client, gateway, medic):
    secret = gateway()["secret"]
    wrong = LINES_1_5.replace("3 1A 1B", "3 1A 1Q")
    answer = client.post(SMS, json={"from": PHONE, "text": wrong, "message_id": "w-1"}, headers=bearer(secret))
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["request_id"] is None and body["reply"].startswith("NOT FILED: line 3: '1Q' is not a count and code")
    assert requests_in_db() == []
    totals = client.post(
        SMS,
        json={"from": PHONE, "text": LINES_1_5.replace("5 2L", "5 1L"), "message_id": "w-2"},
        headers=bearer(secret),
    ).get_json()
    assert totals["reply"].startswith("NOT FILED: line 5:") and "line 3 counts 2" in totals["reply"]
    orphan = client.post(
        SMS, json={"from": PHONE, "text": "6 N", "message_id": "w-3"}, headers=bearer(secret)
    ).get_json()
    assert orphan["reply"] == "NOT FILED: no open request to complete: send lines 1-5 first"


def test_an_unknown_sender_is_refused_logged_and_never_filed(client, gateway, medic, make_user, caplog):
    secret = gateway()["secret"]
    caplog.set_level(logging.WARNING, logger="casevac.links.service")
    for sender in ("+23699999999", "070123456"):
        response = client.post(
            SMS, json={"from": sender, "text": LINES_1_5, "message_id": f"u-{sender}"}, headers=bearer(secret)
        )
        assert_error(response, 403)
    assert requests_in_db() == []
    assert "refused a sms message from the unregistered sender +2369999****" in caplog.text
    assert "+23699999999" not in caplog.text
    refused = (
        db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "casevac.link.refused")).scalars().all()
    )
    assert len(refused) == 2 and refused[0].detail == {"channel": "sms", "sender": "+2369999****"}
    # A registered phone of a user who may not file (a clinician), or of a disabled medic: refused too.
    make_user("clinician", phone="+23670000077")
    assert_error(
        client.post(SMS, json={"from": "+23670000077", "text": LINES_1_5, "message_id": "u-c"}, headers=bearer(secret)),
        403,
    )
    medic.active = False
    db.session.commit()
    assert_error(
        client.post(SMS, json={"from": PHONE, "text": LINES_1_5, "message_id": "u-d"}, headers=bearer(secret)), 403
    )
    assert requests_in_db() == []


def test_a_phone_of_another_mission_is_unknown_to_this_missions_gateway(client, gateway, make_user):
    from tests.factories import MissionFactory

    make_user("medic", MissionFactory(), phone=PHONE)
    secret = gateway()["secret"]
    assert_error(
        client.post(SMS, json={"from": PHONE, "text": LINES_1_5, "message_id": "x-1"}, headers=bearer(secret)), 403
    )


def test_gateway_secrets_authenticate_and_revoke(client, headers, gateway, admin, medic, make_user):
    created = gateway()
    assert created["kind"] == "sms" and created["secret"].startswith("gw_") and len(created["secret"]) < 64
    message = {"from": PHONE, "text": LINES_1_5, "message_id": "a-1"}
    assert_error(client.post(SMS, json=message), 401)
    assert_error(client.post(SMS, json=message, headers=bearer("gw_wrong")), 401)
    user_token = headers(medic)
    assert_error(client.post(SMS, json=message, headers=user_token), 401)
    sbd_secret = gateway("sbd")["secret"]
    assert_error(client.post(SMS, json=message, headers=bearer(sbd_secret)), 401)
    # Bad bodies are 422 only once authenticated.
    assert_error(client.post(SMS, json={"from": PHONE}, headers=bearer(created["secret"])), 422, ("text",))
    listed = client.get("/api/v1/casevac/gateways", headers=headers(admin)).get_json()["items"]
    assert {g["kind"] for g in listed} == {"sms", "sbd"} and all("secret" not in g for g in listed)
    assert "secret_hash" not in str(listed)
    for role in ("coordinator", "medic"):
        assert_error(
            client.post(
                "/api/v1/casevac/gateways", json={"name": "x", "kind": "sms"}, headers=headers(make_user(role))
            ),
            403,
        )
        assert_error(client.delete(f"/api/v1/casevac/gateways/{created['id']}", headers=headers(make_user(role))), 403)
    assert_error(
        client.post("/api/v1/casevac/gateways", json={"name": "sms-gw", "kind": "sms"}, headers=headers(admin)), 409
    )
    assert_error(
        client.post("/api/v1/casevac/gateways", json={"name": "x", "kind": "fax"}, headers=headers(admin)),
        422,
        ("kind",),
    )
    assert client.delete(f"/api/v1/casevac/gateways/{created['id']}", headers=headers(admin)).status_code == 204
    assert_error(client.post(SMS, json=message, headers=bearer(created["secret"])), 401)
    assert client.delete(f"/api/v1/casevac/gateways/{created['id']}", headers=headers(admin)).status_code == 204
    assert_error(client.delete("/api/v1/casevac/gateways/nope", headers=headers(admin)), 404)
    # The name is free again for the replacement.
    assert gateway()["name"] == "sms-gw"
    assert created["secret"] not in str(db.session.execute(db.select(AuditEntry.detail)).scalars().all())


def test_twilio_form_post_answers_twiml(client, gateway, medic):
    secret = gateway()["secret"]
    basic = {"Authorization": "Basic " + base64.b64encode(f"twilio:{secret}".encode()).decode()}
    form = {
        "MessageSid": "SM" + "a" * 32,
        "AccountSid": "AC" + "b" * 32,
        "From": PHONE,
        "To": "+15005550006",
        "Body": LINES_1_5,
        "NumMedia": "0",
        "FromCountry": "CF",
    }
    response = client.post(SMS + "/twilio", data=form, headers=basic)
    assert response.status_code == 200 and response.mimetype == "text/xml"
    message = ET.fromstring(response.data).find("Message")
    assert message.text.startswith("CASEVAC ") and "URGENT 2 PAX" in message.text
    again = client.post(SMS + "/twilio", data=form, headers=basic)
    assert again.data == response.data and len(requests_in_db()) == 1
    bad = client.post(SMS + "/twilio", data={**form, "MessageSid": "SM2", "Body": "1 nowhere"}, headers=basic)
    assert ET.fromstring(bad.data).find("Message").text.startswith("NOT FILED: line")
    stranger = client.post(SMS + "/twilio", data={**form, "MessageSid": "SM3", "From": "+23699999999"}, headers=basic)
    assert stranger.status_code == 200 and ET.fromstring(stranger.data).find("Message") is None
    assert_error(client.post(SMS + "/twilio", data=form), 401)


def test_smssync_form_post_answers_smssync_json(client, gateway, medic):
    secret = gateway()["secret"]
    form = {
        "from": PHONE,
        "message": LINES_1_5,
        "message_id": "abc-1",
        "sent_to": "+23670999999",
        "secret": secret,
        "device_id": "1",
        "sent_timestamp": "1764590000000",
    }
    response = client.post(SMS + "/smssync", data=form)
    assert response.status_code == 200
    payload = response.get_json()["payload"]
    assert payload["success"] is True and payload["error"] is None and payload["task"] == "send"
    [reply] = payload["messages"]
    assert reply["to"] == PHONE and reply["message"].startswith("CASEVAC ") and reply["uuid"]
    assert client.post(SMS + "/smssync", data=form).get_json() == response.get_json()
    stranger = client.post(SMS + "/smssync", data={**form, "from": "+23699999999", "message_id": "abc-2"}).get_json()
    assert stranger == {"payload": {"success": True, "error": None}}
    assert_error(client.post(SMS + "/smssync", data={**form, "secret": "gw_nope"}), 401)


def test_rockblock_web_hook_files_a_binary_9_line(client, headers, gateway, medic):
    secret = gateway("sbd")["secret"]
    body = {
        "location": {"lat": 4.3612, "lon": 18.555},
        "frequency": "38.90",
        "callsign": "BRAVO26",
        "patients": {"urgent": 1, "urgent_surgical": 1, "priority": 0, "routine": 0, "convenience": 0},
        "equipment": ["hoist"],
        "litter": 2,
        "ambulatory": 0,
        "security": "N",
        "casualties": [{"zap": "A-1", "mechanism": "blast", "signs": {"pulse": 128}}],
    }
    data = sbd.encode(body).hex()
    form = {
        "imei": IMEI,
        "serial": "12345",
        "momsn": "17",
        "transmit_time": "26-12-01 10:41:50",
        "iridium_latitude": "4.36",
        "iridium_longitude": "18.55",
        "iridium_cep": "8",
        "data": data,
    }
    url = f"/api/v1/casevac/sbd?secret={secret}"
    response = client.post(url, data=form)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    filed = client.get(f"/api/v1/casevac/requests/{answer['request_id']}", headers=headers(medic)).get_json()
    assert filed["client_ref"] == f"sbd-{IMEI}-17" and filed["security"] == "N"
    assert filed["casualties"][0]["zap"] == "A-1" and filed["casualties"][0]["signs"]["pulse"] == 128
    assert client.post(url, data=form).get_json() == answer and len(requests_in_db()) == 1
    # RockBLOCK's JSON delivery works the same; a completion message fills lines 7-9.
    completion = sbd.encode({"marking": "smoke", "nationality": {"un_military": 2}, "cbrn": []}, kind=sbd.KIND_COMPLETE)
    done = client.post(
        "/api/v1/casevac/sbd", json={"imei": IMEI, "momsn": 18, "data": completion.hex()}, headers=bearer(secret)
    ).get_json()
    assert done["request_id"] == answer["request_id"] and "LINES 7,8,9 IN" in done["reply"]
    broken = client.post(url, data={**form, "momsn": "19", "data": "9101ff"}).get_json()
    assert broken["request_id"] is None and broken["reply"].startswith("NOT FILED: line 1:")
    assert_error(client.post(url, data={**form, "momsn": "20", "data": "zz"}), 422, ("data",), location="form")
    stranger = client.post(url, data={**form, "imei": "300234010000000", "momsn": "1"})
    assert stranger.status_code == 200 and stranger.get_json() == {"reply": None, "request_id": None}
    assert len(requests_in_db()) == 1
    assert_error(client.post("/api/v1/casevac/sbd", data=form), 401)
    sms_secret = gateway("sms")["secret"]
    assert_error(client.post(f"/api/v1/casevac/sbd?secret={sms_secret}", data=form), 401)


def test_status_and_the_dispatched_reply_name_the_asset_and_eta(
    client, headers, gateway, medic, make_user, frozen_clock
):
    frozen_clock(BANGUI_NOON)  # a daylight dispatch: at night the asset would need the night capability
    from tests.casevac.fleet.factories import AssetFactory, FacilityFactory

    secret = gateway()["secret"]
    filed = client.post(
        SMS, json={"from": PHONE, "text": LINES_1_5, "message_id": "s-1"}, headers=bearer(secret)
    ).get_json()
    coordinator = make_user("coordinator")
    asset = AssetFactory(mission_id=medic.mission_id, callsign="DUSTOFF-1", capabilities=["hoist", "medical_crew"])
    facility = FacilityFactory(mission_id=medic.mission_id)
    dispatched = client.post(
        f"/api/v1/casevac/requests/{filed['request_id']}/dispatch",
        json={"asset_id": asset.id, "facility_id": facility.id},
        headers=headers(coordinator),
    )
    assert dispatched.status_code == 200, dispatched.get_json()
    status = client.post(
        SMS, json={"from": PHONE, "text": "status", "message_id": "s-2"}, headers=bearer(secret)
    ).get_json()
    assert "DISPATCHED DUSTOFF-1 ETA " in status["reply"] and status["reply"].endswith(" MIN)")
    late = client.post(SMS, json={"from": PHONE, "text": "6 P", "message_id": "s-3"}, headers=bearer(secret)).get_json()
    assert late["reply"].startswith("NOT CHANGED: the request is dispatched") and "DUSTOFF-1 ETA" in late["reply"]
