"""Texts pushed back to a medic who filed by SMS or satellite (casevac.links.outbound): queued with the status
move, sent once by the sweeper task to a real local HTTP server standing in for Twilio's REST API and
RockBLOCK's MT endpoint (what arrived is asserted), retried with backoff, refused ones failed; SMSSync end to
end through its task endpoints (GET ?task=send, POST ?task=sent)."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask import current_app

from casevac.links import outbound, sbd
from casevac.links.models import InboundMessage, MessageGateway, OutboundMessage
from config.extensions import db
from core import clock
from tests.casevac.fleet.factories import AssetFactory, FacilityFactory
from tests.casevac.links.test_intake import IMEI, LINES_1_5, PHONE, SMS, admin, gateway, medic  # noqa: F401
from tests.helpers import assert_error

TWILIO_SID, TWILIO_TOKEN = "AC" + "1" * 32, "twilio-auth-token-not-for-logs"
ROCK_USER, ROCK_PASSWORD = "rock-user", "rockblock-password-not-for-logs"


class Provider(ThreadingHTTPServer):
    """Twilio and RockBLOCK on one loopback port: records every request, answers from a script."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict] = []
        self.answers: list[tuple[int, str]] = []  # (status, body) per request, then the default

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        self.server.received.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "form": {k: v[0] for k, v in form.items()}}
        )
        if self.server.answers:
            status, body = self.server.answers.pop(0)
        elif self.path.endswith("/Messages.json"):
            status, body = 201, json.dumps({"sid": f"SM{len(self.server.received):032d}", "status": "queued"})
        else:
            status, body = 200, f"OK,{1000 + len(self.server.received)}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if body.startswith("{") else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def provider():
    server = Provider()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(provider):
    provider.received.clear()
    provider.answers.clear()
    return current_app.extensions["settings"].with_(
        TWILIO_API_BASE=provider.base,
        TWILIO_ACCOUNT_SID=TWILIO_SID,
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        TWILIO_FROM="+15005550006",
        ROCKBLOCK_API_BASE=provider.base,
        ROCKBLOCK_USERNAME=ROCK_USER,
        ROCKBLOCK_PASSWORD=ROCK_PASSWORD,
        OUTBOUND_MAX_ATTEMPTS=3,
    )


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator")


def move(client, headers, user, request_id, status, **extra):
    body = {"status": status, **({"note": "patient moved by road"} if status == "cancelled" else {}), **extra}
    response = client.post(f"/api/v1/casevac/requests/{request_id}/status", json=body, headers=headers(user))
    assert response.status_code == 200, response.get_json()


def sweep(settings, minutes: float = 0) -> int:
    return outbound.deliver_task(db.session, now=clock.now() + timedelta(minutes=minutes), settings=settings)


def rows(request_id) -> list[OutboundMessage]:
    db.session.expire_all()
    return (
        db.session.execute(
            db.select(OutboundMessage)
            .where(OutboundMessage.request_id == request_id)
            .order_by(OutboundMessage.created_at)
        )
        .scalars()
        .all()
    )


def test_twilio_medics_get_acknowledged_dispatched_picked_up_once(
    client, headers, gateway, medic, coordinator, settings, provider
):
    secret = gateway()["secret"]
    basic = {"Authorization": "Basic " + base64.b64encode(f"twilio:{secret}".encode()).decode()}
    form = {"MessageSid": "SM" + "a" * 32, "From": PHONE, "To": "+15005550006", "Body": LINES_1_5}
    assert client.post(SMS + "/twilio", data=form, headers=basic).status_code == 200
    assert db.session.execute(db.select(OutboundMessage)).first() is None  # the filing's reply is the answer
    request_id = db.session.execute(db.select(InboundMessage.request_id)).scalar_one()
    move(client, headers, coordinator, request_id, "acknowledged")
    assert sweep(settings) == 1 and sweep(settings) == 0  # exactly once
    [sent] = provider.received
    assert sent["path"] == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert sent["auth"] == "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    assert sent["form"]["To"] == PHONE and sent["form"]["From"] == "+15005550006"
    assert sent["form"]["Body"].startswith("CASEVAC ") and " ACKNOWLEDGED URGENT 2 PAX" in sent["form"]["Body"]

    asset = AssetFactory(mission_id=medic.mission_id, callsign="DUSTOFF-1", capabilities=["hoist", "night"])
    facility = FacilityFactory(mission_id=medic.mission_id)
    dispatched = client.post(
        f"/api/v1/casevac/requests/{request_id}/dispatch",
        json={"asset_id": asset.id, "facility_id": facility.id},
        headers=headers(coordinator),
    )
    assert dispatched.status_code == 200, dispatched.get_json()
    provider.answers.append((503, '{"code": 20500, "message": "unavailable"}'))  # Twilio down once
    assert sweep(settings) == 0
    [_, waiting] = rows(request_id)
    assert (waiting.state, waiting.attempts, waiting.last_error) == ("pending", 1, "Twilio answered 503")
    assert sweep(settings) == 0  # not due before its backoff
    assert sweep(settings, minutes=1) == 1
    body = provider.received[-1]["form"]["Body"]
    assert "DISPATCHED DUSTOFF-1 ETA " in body and body.endswith(" MIN)") and len(provider.received) == 3
    move(client, headers, coordinator, request_id, "at_pickup")
    assert sweep(settings) == 1 and "AT_PICKUP DUSTOFF-1" in provider.received[-1]["form"]["Body"]
    assert [(r.status, r.state) for r in rows(request_id)] == [
        ("acknowledged", "sent"),
        ("dispatched", "sent"),
        ("at_pickup", "sent"),
    ]
    assert all(r.provider_id.startswith("SM") for r in rows(request_id))


def test_rockblock_devices_get_the_text_as_hex_and_a_refusal_is_final(
    client, headers, gateway, medic, coordinator, settings, provider
):
    secret = gateway("sbd")["secret"]
    body = {
        "location": {"lat": 4.3612, "lon": 18.555},
        "frequency": "38.90",
        "callsign": "BRAVO26",
        "patients": {"urgent": 1, "urgent_surgical": 0, "priority": 0, "routine": 0, "convenience": 0},
        "equipment": [],
        "litter": 1,
        "ambulatory": 0,
    }
    filed = client.post(
        f"/api/v1/casevac/sbd?secret={secret}", data={"imei": IMEI, "momsn": "5", "data": sbd.encode(body).hex()}
    ).get_json()
    move(client, headers, coordinator, filed["request_id"], "acknowledged")
    assert sweep(settings) == 1
    [sent] = provider.received
    assert sent["path"] == "/rockblock/MT" and sent["auth"] is None
    assert (sent["form"]["imei"], sent["form"]["username"], sent["form"]["password"]) == (
        IMEI,
        ROCK_USER,
        ROCK_PASSWORD,
    )
    text = bytes.fromhex(sent["form"]["data"]).decode()
    assert text.startswith("CASEVAC ") and "ACKNOWLEDGED URGENT 1 PAX" in text
    assert rows(filed["request_id"])[0].provider_id == "1001"

    provider.answers.append((200, "FAILED,11,No RockBLOCK with this IMEI found on your account"))
    move(client, headers, coordinator, filed["request_id"], "cancelled")
    assert sweep(settings) == 0 and sweep(settings, minutes=60) == 0
    cancelled = rows(filed["request_id"])[-1]
    assert (cancelled.status, cancelled.state, cancelled.attempts) == ("cancelled", "failed", 1)
    assert cancelled.last_error == "RockBLOCK refused (code 11)"
    assert ROCK_PASSWORD not in (cancelled.last_error or "") and len(provider.received) == 2


def test_smssync_phone_pulls_and_sends_each_text_once(client, headers, gateway, medic, coordinator, settings):
    secret = gateway()["secret"]
    form = {"from": PHONE, "message": LINES_1_5, "message_id": "ss-1", "secret": secret}
    assert client.post(SMS + "/smssync", data=form).status_code == 200
    request_id = db.session.execute(db.select(InboundMessage.request_id)).scalar_one()
    empty = client.get(f"{SMS}/smssync?task=send&secret={secret}").get_json()
    assert empty == {"payload": {"task": "send", "secret": secret, "messages": []}}
    move(client, headers, coordinator, request_id, "acknowledged")
    assert sweep(settings) == 0  # SMSSync's texts are pulled, not swept

    task = client.get(f"{SMS}/smssync?task=send&secret={secret}")
    assert task.status_code == 200 and task.headers["Cache-Control"].startswith("no-store")
    [message] = task.get_json()["payload"]["messages"]
    assert message["to"] == PHONE and "ACKNOWLEDGED" in message["message"] and message["uuid"]
    assert client.get(f"{SMS}/smssync?task=send&secret={secret}").get_json()["payload"]["messages"] == []
    sent = client.post(f"{SMS}/smssync?task=sent", json={"queued_messages": [message["uuid"], "not-a-uuid"]})
    assert sent.status_code == 200 and sent.get_json() == {"message_uuids": [message["uuid"]]}
    again = client.post(f"{SMS}/smssync?task=sent", json={"queued_messages": [message["uuid"]]})
    assert again.get_json() == {"message_uuids": []}  # a second phone (or a retry) sends nothing
    assert [r.state for r in rows(request_id)] == ["sent"]

    # An offer the phone never confirmed is offered again after the claim expires, then given up.
    move(client, headers, coordinator, request_id, "cancelled")
    first = outbound.offer(db.session, gateway=_gateway_of(request_id), now=clock.now(), settings=settings)
    later = clock.now() + outbound.CLAIM_TIMEOUT + timedelta(seconds=1)
    assert [
        m.id for m in outbound.offer(db.session, gateway=_gateway_of(request_id), now=later, settings=settings)
    ] == [first[0].id]

    assert_error(client.get(f"{SMS}/smssync?task=send&secret=gw_nope"), 401)
    assert_error(client.get(f"{SMS}/smssync?task=send"), 401)
    assert_error(client.get(f"{SMS}/smssync?task=other&secret={secret}"), 422, ("task",), location="query")
    assert_error(client.post(f"{SMS}/smssync?task=sent", json={"queued_messages": "x"}), 422)


def _gateway_of(request_id):
    return db.session.get(MessageGateway, rows(request_id)[0].gateway_id)


def test_requests_filed_over_the_api_or_the_generic_gateway_push_nothing(
    client, headers, gateway, medic, coordinator, settings, provider
):
    secret = gateway()["secret"]
    client.post(
        SMS, json={"from": PHONE, "text": LINES_1_5, "message_id": "g-1"}, headers={"Authorization": f"Bearer {secret}"}
    )
    request_id = db.session.execute(db.select(InboundMessage.request_id)).scalar_one()
    move(client, headers, coordinator, request_id, "acknowledged")
    assert rows(request_id) == [] and sweep(settings) == 0 and provider.received == []


def test_a_claim_is_won_once(app, client, headers, gateway, medic, coordinator, settings):
    secret = gateway()["secret"]
    client.post(SMS + "/smssync", data={"from": PHONE, "message": LINES_1_5, "message_id": "c-1", "secret": secret})
    request_id = db.session.execute(db.select(InboundMessage.request_id)).scalar_one()
    move(client, headers, coordinator, request_id, "acknowledged")
    [row] = rows(request_id)
    now = clock.now()
    assert outbound._claim(db.session, row.id, now) is True
    assert outbound._claim(db.session, row.id, now) is False


def test_only_http_provider_bases_are_called():
    with pytest.raises(outbound.DeliveryError) as refused:
        outbound._post("file:///etc/passwd", {"imei": IMEI})
    assert refused.value.permanent
