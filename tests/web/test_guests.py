"""Guests in the in-browser call, through a real TURN server: a private coturn (Debian's turnserver, on a
free port, `use-auth-secret` with the app's TURN_SECRET) and a server with TURN_POLICY=relay, so every
browser sends its media through coturn with the REST-API credentials the app derived for it. The clinician
invites an interpreter from /clinic; clinician, patient and interpreter (three Chromium profiles with fake
media) meet after the waiting room in a three-party mesh, every path relayed; the interpreter is refused the
notes and attachments; revoked, they are removed from the call. coturn refuses a wrong and an expired
credential."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import shutil
import socket
import struct
import subprocess
import time

import pytest

from tests.conftest import CI
from tests.e2e.conftest import free_port, login, start_servers
from tests.web.conftest import SERVER_ENV, open_clinic, require_browser, screenshot, sign_in
from tests.web.test_clinic import book_mental_health_video, call, me
from tests.web.test_video import CONNECTED, browser, wait_bytes  # noqa: F401 - the fake-media browser fixture

pytestmark = pytest.mark.e2e

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
INTERPRETER = ("interp-sango", "Interprète Sango")


def _stun_ready(port: int, timeout: float = 10.0) -> None:
    """A STUN Binding request answered on the UDP port: coturn is up."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        while time.monotonic() < deadline:
            transaction = secrets.token_bytes(12)
            sock.sendto(struct.pack(">HHI", 0x0001, 0, 0x2112A442) + transaction, ("127.0.0.1", port))
            try:
                answer, _ = sock.recvfrom(2048)
            except OSError:
                continue
            if answer[:2] == b"\x01\x01" and answer[8:20] == transaction:
                return
    raise RuntimeError("turnserver did not answer STUN")


@pytest.fixture(scope="module")
def turn(tmp_path_factory):
    """A private coturn: its port, its secret; stopped by PID at the end."""
    require_browser()
    if not shutil.which(TURNSERVER):
        message = "no turnserver (apt-get install coturn)"
        if CI:
            pytest.fail(f"the TURN test is mandatory in CI: {message}", pytrace=False)
        pytest.skip(message)
    workdir = tmp_path_factory.mktemp("coturn")
    port, secret = free_port(), secrets.token_hex(16)
    relay = free_port()
    log = open(workdir / "turnserver.log", "wb")
    process = subprocess.Popen(
        [
            TURNSERVER,
            "-n",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            f"--min-port={relay}",
            f"--max-port={relay + 200}",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            "--realm=medevac.test",
            "--fingerprint",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--allow-loopback-peers",  # both browsers are on this machine: their relays are on 127.0.0.1
            f"--userdb={workdir / 'turndb'}",
            f"--pidfile={workdir / 'turnserver.pid'}",
            "--log-file=stdout",
            "--simple-log",
            "--verbose",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _stun_ready(port)
        yield {"port": port, "secret": secret, "url": f"turn:127.0.0.1:{port}?transport=udp", "log": workdir}
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, turn):
    """The app with TURN_URLS pointing at the private coturn, its secret, and relay-only ICE."""
    env = {**SERVER_ENV, "TURN_URLS": turn["url"], "TURN_SECRET": turn["secret"], "TURN_POLICY": "relay"}
    [server] = start_servers(tmp_path_factory.mktemp("web-turn"), 1, **env)
    yield server
    server.stop()


RELAYED = """() => Promise.all([...window.callState.peers.values()].map(async ({ pc }) => {
  const stats = await pc.getStats();
  let local = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      const pair = stats.get(s.selectedCandidatePairId);
      local = pair && stats.get(pair.localCandidateId);
    }
  });
  return local && local.candidateType;
}))"""

GATHER = """async (iceServers) => {
  const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' });
  const found = { relay: 0, errors: [] };
  pc.onicecandidate = (e) => { if (e.candidate && e.candidate.type === 'relay') found.relay += 1; };
  pc.onicecandidateerror = (e) => found.errors.push(e.errorCode);
  const done = new Promise((resolve) => {
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
    setTimeout(resolve, 10000);
  });
  pc.createDataChannel('probe');
  await pc.setLocalDescription(await pc.createOffer());
  await done;
  pc.close();
  return found;
}"""


def _credential(secret: str, username: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def _peers_connected(page, count: int) -> None:
    page.wait_for_function(
        f"""() => window.callState && window.callState.peers.size === {count} &&
             [...window.callState.peers.values()].every((p) => p.pc.connectionState === 'connected')""",
        timeout=30000,
    )


@pytest.fixture(scope="module")
def booked(server):
    """A mental-health video consultation in 5 minutes: the demo member its patient (consented), a clinical
    note in it, and a member of the mission who interprets Sango."""
    admin = login(server, "demo-admin")
    mission_id = me(server, admin)["mission_id"]
    made = call(
        server,
        admin,
        "POST",
        "/users",
        json={
            "username": INTERPRETER[0],
            "password": "demo-password-123",
            "role": "member",
            "mission_id": mission_id,
            "display_name": INTERPRETER[1],
        },
    )
    assert made.status_code == 201, made.text
    psychiatrist = login(server, "demo-psychiatrist")
    member = login(server, "demo-member")
    cid = book_mental_health_video(
        server, psychiatrist, member, reason="Sleep and nightmares since the ambush", patient_user=True
    )["id"]
    consent = call(server, member, "POST", "/telemed/consents", json={"kind": "mental_health", "version": "2026-12-01"})
    assert consent.status_code == 201, consent.text
    note = {"kind": "clinical", "text": "PHQ-9 of 14 reviewed with the patient"}
    assert call(server, psychiatrist, "POST", f"/telemed/consultations/{cid}/notes", json=note).status_code == 201

    return {"id": cid, "member": member, "psychiatrist": psychiatrist}


def test_clinician_invites_an_interpreter_and_three_meet_through_turn(booked, new_context):
    cid = booked["id"]
    # The clinician opens the consultation and invites the interpreter by username.
    clinic = open_clinic(new_context)
    clinic.get_by_role("table", name="Today").get_by_role("button", name="Open Pte Ada Okafor").click()
    form = clinic.get_by_role("form", name="Invite")
    form.get_by_label("Username").fill("nobody-here")
    form.get_by_label("Language").fill("sg")
    form.get_by_role("button", name="Invite").click()
    clinic.get_by_text("Not invited: invalid username").wait_for()
    form.get_by_label("Username").fill(INTERPRETER[0])
    form.get_by_role("button", name="Invite").click()
    invited = clinic.get_by_role("list", name="Invited participants")
    invited.get_by_text(f"{INTERPRETER[1]}: interpreter (sg)").wait_for()
    screenshot(clinic.get_by_role("region", name="Consultation"), "clinic-invite")

    clinic.get_by_role("table", name="Today").get_by_role("button", name="Join Pte Ada Okafor").click()
    clinic_call = clinic.get_by_role("region", name="Call")
    clinic_call.get_by_text("waiting for the patient").wait_for()

    # The patient and the interpreter join from /me and wait; the clinician admits both.
    pages = {}
    for username, button in (("demo-member", None), (INTERPRETER[0], "Join as interpreter")):
        context, _ = new_context(viewport={"width": 1280, "height": 1300})
        page = context.new_page()
        sign_in(page, username)
        page.wait_for_url("**/me")
        if button:
            page.get_by_role("list", name="My invitations").get_by_role("button", name=button).click()
        else:
            page.get_by_role("list", name="My consultations").get_by_role("button", name="Join").first.click()
        page.get_by_role("region", name="Call").get_by_text("You are in the waiting room").wait_for()
        pages[username] = page
    waiting_room = clinic_call.get_by_role("list", name="Waiting room")
    waiting_room.get_by_text(f"{INTERPRETER[1]} (interpreter)").wait_for()
    waiting_room.get_by_role("button", name="Admit Demo peacekeeper").click()
    waiting_room.get_by_role("button", name=f"Admit {INTERPRETER[1]}").click()
    waiting_room.get_by_text("nobody waiting").wait_for()

    # A mesh of three: everyone connected to both others, every path through coturn, media both ways.
    everyone = [clinic, *pages.values()]
    for page in everyone:
        _peers_connected(page, 2)
    for page in everyone:
        assert page.evaluate(RELAYED) == ["relay", "relay"]
        assert wait_bytes(page, "video") > 0 and wait_bytes(page, "audio") > 0
    interpreter = pages[INTERPRETER[0]]
    interpreter_call = interpreter.get_by_role("region", name="Call")
    interpreter_call.get_by_role("group", name="Participants").get_by_text("Demo psychiatrist").wait_for()
    interpreter_call.get_by_label("Message").fill("Mbi yeke ge: I interpret in Sango.")
    interpreter_call.get_by_role("button", name="Send message").click()
    clinic_call.get_by_role("list", name="Chat").get_by_text("I interpret in Sango.").wait_for()
    screenshot(clinic, "call-three-party")
    screenshot(interpreter, "me-interpreter-call")

    # The interpreter's own session is refused the notes and the attachments (403), not just hidden.
    codes = interpreter.evaluate(
        """async (id) => {
          const token = JSON.parse(sessionStorage.getItem('medevac.session')).token;
          const get = (path) => fetch(`/api/v1/telemed/consultations/${id}${path}`,
                                      { headers: { Authorization: 'Bearer ' + token } }).then((r) => r.status);
          return [await get(''), await get('/notes'), await get('/attachments'), await get('/participants')];
        }""",
        cid,
    )
    assert codes == [200, 403, 403, 200], codes

    # Revoked from /clinic: removed from the call at once; the two others carry on.
    invited.get_by_role("button", name=f"Revoke {INTERPRETER[1]}").click()
    invited.get_by_text("revoked").wait_for()
    interpreter_call.get_by_text("You were removed from the call").wait_for()
    for page in (clinic, pages["demo-member"]):
        _peers_connected(page, 1)
    assert interpreter.evaluate("window.callState.peers.size") == 0


def test_coturn_accepts_the_apps_credentials_and_refuses_wrong_or_expired_ones(server, turn, booked, new_context):
    ticket = call(server, booked["member"], "GET", f"/telemed/consultations/{booked['id']}/join").json()
    [ice] = ticket["ice_servers"]
    assert ticket["ice_transport_policy"] == "relay" and ice["urls"] == [turn["url"]]
    context, _ = new_context()
    page = context.new_page()
    page.goto("/")
    accepted = page.evaluate(GATHER, [ice])
    assert accepted["relay"] >= 1, accepted
    wrong = {**ice, "credential": _credential("not-the-secret", ice["username"])}
    past = f"{int(time.time()) - 60}:{ice['username'].split(':', 1)[1]}"
    expired = {**ice, "username": past, "credential": _credential(turn["secret"], past)}
    for refused in (wrong, expired):
        found = page.evaluate(GATHER, [refused])
        assert found["relay"] == 0 and 401 in found["errors"], found
