"""End to end against a real TAK server (taky from PyPI): a scripted ATAK client, the web server, the
gateway process. A 9-line sent three times is filed once; the acknowledgement comes back as GeoChat;
dispatch updates the marker; the gateway killed mid-stream and the TAK server restarted lose nothing and
duplicate nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from casevac.tak.codec import vocabulary
from tests.casevac.tak import taky_server
from tests.casevac.tak.atak_client import AtakClient, chat_id, medevac_event
from tests.e2e.conftest import ROOT, listen, login, start_server  # noqa: F401 - the fixtures

API = "/api/v1/casevac"


@pytest.fixture(scope="module")
def taky_binary():
    try:
        return taky_server.install()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"taky {taky_server.TAKY_VERSION} could not be installed from PyPI: {exc}")


class GatewayProcess:
    def __init__(self, env: dict, log: Path):
        self.env, self.log_path = env, log
        self.process = None

    def start(self) -> "GatewayProcess":
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "python"), "-m", "flask", "--app", "wsgi", "tak-gateway"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self.log.close()


def wait_until(check, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s")


def test_atak_medic_is_filed_once_answered_and_followed_through_restarts(taky_binary, start_server, listen, tmp_path):
    taky = taky_server.Taky(tmp_path).start()
    server = start_server()
    env = {
        **server.env,
        "TAK_URL": f"tcp://127.0.0.1:{taky.port}",
        "TAK_MISSION": "DEMO",
        "TAK_RECONNECT_MAX_SECONDS": "1",
        "PYTHONPATH": str(ROOT),
    }
    gateway = GatewayProcess(env, tmp_path / "gateway.log").start()
    client = AtakClient(taky.port)
    try:
        client.connect()
        # The gateway is on the network once its own SA reaches the client (and taky knows it).
        client.wait_for(lambda e: e.uid == "medevac-gateway-demo", timeout=60, what="the gateway's SA")
        token = login(server, "demo-coordinator")
        auth = {"Authorization": f"Bearer {token}"}

        def tak_requests():
            items = requests.get(
                f"{server.url}{API}/requests", params={"active": "true", "limit": 500}, headers=auth, timeout=10
            ).json()["items"]
            return [r for r in items if r["callsign"] == "BRAVO-2-6"]

        # 1. The same 9-line three times: one request.
        event_uid = str(uuid.uuid4())
        nine_line = medevac_event(event_uid, client.uid)
        for _ in range(3):
            client.send(nine_line)
        filed = wait_until(tak_requests, what="the filed request")
        time.sleep(2)
        assert len(tak_requests()) == 1
        request = filed[0]
        assert request["patients"]["urgent"] == 2 and request["litter"] == 2 and request["ambulatory"] == 1
        detail = requests.get(f"{server.url}{API}/requests/{request['id']}", headers=auth, timeout=10).json()
        assert len(detail["casualties"]) == 2 and detail["filed_by"] != ""

        # 1b. An emergency beacon reaches the coordinators live (Socket.IO), once, and its cancellation;
        # an ATAK device with an asset's callsign moves that asset.
        coordinator = listen(server, token)
        now = vocabulary.cot_time(datetime.now(timezone.utc))
        beacon = (
            f'<event version="2.0" uid="{client.uid}-9-1-1" type="b-a-o-tbl" how="h-e" time="{now}" '
            f'start="{now}" stale="{now[:2]}99{now[4:]}">'
            f'<point lat="4.37" lon="18.56" hae="0" ce="10" le="10"/><detail>'
            f'<link uid="{client.uid}" relation="p-p" type="a-f-G-U-C"/>'
            '<contact callsign="BRAVO-2-6-Alert"/><emergency type="911 Alert">BRAVO-2-6</emergency></detail>'
            "</event>"
        ).encode()
        client.send(beacon + beacon)
        coordinator.wait_for(lambda envs: any(e["type"] == "emergency" for e in envs), timeout=30)
        client.send(beacon.replace(b"b-a-o-tbl", b"b-a-o-can").replace(b'type="911 Alert"', b'cancel="true"'))
        coordinator.wait_for(lambda envs: any(e["type"] == "emergency.cancelled" for e in envs), timeout=30)
        alerts = [e for e in coordinator.events() if e["type"] == "emergency"]
        assert len(alerts) == 1 and alerts[0]["data"]["kind"] == "911" and alerts[0]["data"]["callsign"] == "BRAVO-2-6"
        assets = requests.get(f"{server.url}/api/v1/assets", params={"limit": 500}, headers=auth, timeout=10).json()
        ambulance = next(a for a in assets["items"] if a["callsign"] == "AMB-BOUAR-1")
        crew = AtakClient(taky.port, uid="ANDROID-amb-bouar", callsign="AMB-BOUAR-1").connect()
        crew.send_sa(lat=5.95, lon=15.61)

        def moved():
            position = requests.get(f"{server.url}/api/v1/assets/{ambulance['id']}", headers=auth, timeout=10).json()[
                "position"
            ]
            return position if position and position["lat"] == 5.95 else None

        assert wait_until(moved, what="the ambulance's position from TAK")["lon"] == 15.61
        crew.close()

        # 2. The coordinator acknowledges: GeoChat to the medic's device.
        ack = requests.post(
            f"{server.url}{API}/requests/{request['id']}/status",
            json={"status": "acknowledged"},
            headers=auth,
            timeout=10,
        )
        assert ack.status_code == 200, ack.text
        chat = client.wait_for(
            lambda e: e.kind == "chat" and chat_id(e) == f"medevac-{request['id']}-acknowledged",
            what="the acknowledgement GeoChat",
        )
        assert chat.element.find("detail/__chat").get("id") == client.uid
        assert "acknowledged" in chat.element.find("detail/remarks").text

        # 3. Dispatch: the medic's own marker (same uid) now says so, with the asset; and a GeoChat.
        options = requests.get(
            f"{server.url}{API}/requests/{request['id']}/recommendations", headers=auth, timeout=10
        ).json()["options"]
        best = options[0]
        dispatched = requests.post(
            f"{server.url}{API}/requests/{request['id']}/dispatch",
            json={"asset_id": best["asset_id"], "facility_id": best["facility_id"]},
            headers=auth,
            timeout=10,
        )
        assert dispatched.status_code == 200, dispatched.text
        asset = requests.get(f"{server.url}/api/v1/assets/{best['asset_id']}", headers=auth, timeout=10).json()
        marker = client.wait_for(
            lambda e: e.uid == event_uid
            and e.kind == "medevac"
            and "DISPATCHED" in (e.element.findtext("detail/remarks") or ""),
            what="the dispatched marker",
        )
        assert asset["callsign"] in marker.element.findtext("detail/remarks")
        chat = client.wait_for(lambda e: chat_id(e) == f"medevac-{request['id']}-dispatched", what="dispatch GeoChat")
        assert asset["callsign"] in chat.element.findtext("detail/remarks")
        assert "pickup ETA" in chat.element.findtext("detail/remarks")

        # 4. The gateway killed mid-stream; a change while it is down arrives after its restart.
        gateway.kill()
        at_pickup = requests.post(
            f"{server.url}{API}/requests/{request['id']}/status", json={"status": "at_pickup"}, headers=auth, timeout=10
        )
        assert at_pickup.status_code == 200
        gateway = GatewayProcess(env, tmp_path / "gateway-2.log").start()
        client.wait_for(
            lambda e: chat_id(e) == f"medevac-{request['id']}-at_pickup",
            timeout=60,
            what="the at-pickup GeoChat after the gateway restart",
        )

        # 5. The TAK server restarted: the gateway reconnects; a change made meanwhile is delivered.
        client.close()
        taky.stop()
        moved = requests.post(
            f"{server.url}{API}/requests/{request['id']}/status",
            json={"status": "in_transit"},
            headers=auth,
            timeout=10,
        )
        assert moved.status_code == 200
        taky = taky_server.Taky(tmp_path, port=taky.port).start()
        old_events = client.events
        client = AtakClient(taky.port)
        client.events = old_events  # one record of everything the medic's device received
        client.connect()
        client.wait_for(lambda e: e.uid == "medevac-gateway-demo", timeout=60, what="the gateway back on TAK")
        client.wait_for(
            lambda e: e.uid == event_uid and "IN TRANSIT" in (e.element.findtext("detail/remarks") or ""),
            timeout=60,
            what="the in-transit marker sent while TAK was down",
        )
        delivered = requests.post(
            f"{server.url}{API}/requests/{request['id']}/status", json={"status": "delivered"}, headers=auth, timeout=10
        )
        assert delivered.status_code == 200
        client.wait_for(lambda e: chat_id(e) == f"medevac-{request['id']}-delivered", what="the delivered GeoChat")
        client.wait_for(lambda e: e.kind == "delete" and e.target_uid == event_uid, what="the marker removed")

        # Nothing lost, nothing that ATAK would show twice: each GeoChat message once (a re-send after a
        # crash would be the same uid and time, which ATAK shows once).
        chats = client.seen(lambda e: e.kind == "chat")
        by_message: dict = {}
        for e in chats:
            by_message.setdefault(chat_id(e), set()).add((e.uid, e.element.get("time")))
        assert sorted(by_message) == sorted(
            f"medevac-{request['id']}-{s}" for s in ("acknowledged", "dispatched", "at_pickup", "delivered")
        )
        assert all(len(versions) == 1 for versions in by_message.values()), by_message
        readyz = requests.get(f"{server.url}/readyz", timeout=10).json()
        assert readyz["tak"] == {f"DEMO 127.0.0.1:{taky.port}": "connected"}
    finally:
        client.close()
        gateway.stop()
        taky.stop()


def test_tls_with_client_certificates(taky_binary, start_server, tmp_path):
    """tls://: the gateway and the ATAK client present certificates from the TAK server's CA (8089-style)."""
    import ssl

    certs = taky_server.make_certs(tmp_path / "certs", "gateway", "medic")
    taky = taky_server.Taky(tmp_path, certs=certs).start()
    server = start_server()
    env = {
        **server.env,
        "TAK_URL": f"tls://127.0.0.1:{taky.port}",
        "TAK_MISSION": "DEMO",
        "TAK_CERT": str(certs / "gateway.pem"),
        "TAK_KEY": str(certs / "gateway.key"),
        "TAK_CA": str(certs / "ca.pem"),
        "TAK_RECONNECT_MAX_SECONDS": "1",
        "PYTHONPATH": str(ROOT),
    }
    gateway = GatewayProcess(env, tmp_path / "gateway.log").start()
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    context.load_cert_chain(str(certs / "medic.pem"), str(certs / "medic.key"))
    client = AtakClient(taky.port, uid="ANDROID-tls-0002", tls=context)
    try:
        client.connect()
        client.wait_for(lambda e: e.uid == "medevac-gateway-demo", timeout=60, what="the gateway's SA over TLS")
        auth = {"Authorization": f"Bearer {login(server, 'demo-coordinator')}"}
        event_uid = str(uuid.uuid4())
        client.send(medevac_event(event_uid, client.uid))

        def filed():
            items = requests.get(
                f"{server.url}{API}/requests", params={"active": "true"}, headers=auth, timeout=10
            ).json()["items"]
            return [r for r in items if r["callsign"] == "BRAVO-2-6"]

        request = wait_until(filed, what="the request filed over TLS")[0]
        assert (
            requests.post(
                f"{server.url}{API}/requests/{request['id']}/status",
                json={"status": "acknowledged"},
                headers=auth,
                timeout=10,
            ).status_code
            == 200
        )
        client.wait_for(lambda e: chat_id(e) == f"medevac-{request['id']}-acknowledged", what="GeoChat over TLS")
        # The same server refuses a client without a certificate: the channel really is mutual TLS.
        anonymous = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        refused = False
        try:
            with anonymous.wrap_socket(
                socket.create_connection(("127.0.0.1", taky.port), timeout=5), server_hostname="127.0.0.1"
            ) as sock:
                sock.sendall(b"<event uid='x' type='t-x-c-t'/>")
                refused = sock.recv(1024) == b""
        except (ssl.SSLError, OSError):
            refused = True
        assert refused
    finally:
        client.close()
        gateway.stop()
        taky.stop()
