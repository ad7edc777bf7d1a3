"""Field links on the real server (bin/serve): an admin registers a medic's phone and issues a gateway
secret; a Twilio form post and an SMSSync one file a text 9-line over HTTP, a retry answers the same, an
unknown number is refused and the server's log says so without the number in full."""

import xml.etree.ElementTree as ET

import pytest
import requests

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e

LINES_1_5 = "1 34NBK2863382493 2 38.90 BRAVO26 3 1A 1B 4 B 5 2L"


def test_sms_intake_on_the_real_server(start_server):
    server = start_server()
    admin = {"Authorization": f"Bearer {login(server, 'demo-admin')}"}
    medic_token = login(server, "demo-medic")
    me = requests.get(
        f"{server.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {medic_token}"}, timeout=10
    ).json()
    patched = requests.patch(
        f"{server.url}/api/v1/users/{me['id']}", json={"phone": "+236 70 12 34 56"}, headers=admin, timeout=10
    )
    assert patched.status_code == 200 and patched.json()["phone"] == "+23670123456"
    created = requests.post(
        f"{server.url}/api/v1/casevac/gateways", json={"name": "twilio", "kind": "sms"}, headers=admin, timeout=10
    )
    assert created.status_code == 201
    secret = created.json()["secret"]

    form = {
        "MessageSid": "SM0123456789abcdef0123456789abcdef",
        "From": "+23670123456",
        "To": "+15005550006",
        "Body": LINES_1_5,
    }
    answers = [
        requests.post(f"{server.url}/api/v1/casevac/sms/twilio", data=form, auth=("twilio", secret), timeout=10)
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].headers["Content-Type"].startswith("text/xml") and answers[0].text == answers[1].text
    reply = ET.fromstring(answers[0].content).find("Message").text
    assert reply.startswith("CASEVAC ") and "URGENT 2 PAX" in reply

    queue = requests.get(
        f"{server.url}/api/v1/casevac/requests?active=true",
        headers={"Authorization": f"Bearer {login(server, 'demo-coordinator')}"},
        timeout=10,
    ).json()
    mine = [r for r in queue["items"] if r["filed_by"] == me["id"] and r["callsign"] == "BRAVO26"]
    assert len(mine) == 1

    synced = requests.post(
        f"{server.url}/api/v1/casevac/sms/smssync",
        data={"from": "+23670123456", "message": "6 P 7 C", "message_id": "42", "secret": secret},
        timeout=10,
    ).json()["payload"]
    assert synced["success"] is True and "LINES 6,7 IN" in synced["messages"][0]["message"]

    stranger = requests.post(
        f"{server.url}/api/v1/casevac/sms",
        headers={"Authorization": f"Bearer {secret}"},
        json={"from": "+23699999999", "text": LINES_1_5, "message_id": "x"},
        timeout=10,
    )
    assert stranger.status_code == 403
    logs = server.logs()
    assert "unregistered sender +2369999****" in logs and "+23699999999" not in logs
    assert secret not in logs
