"""The in-browser consultation call (telemed/scheduling/video.py) in Chromium with fake media devices: the clinician
and the patient, in two browser profiles, connect over WebRTC signalled through the app's own Socket.IO
(RTCPeerConnection 'connected', inbound-rtp bytes > 0 on both sides); the patient who joins waits in the
waiting room until the clinician, who sees them there, admits them; audio-only and chat-only switches
during the call; a third connection without a valid token for this consultation is refused."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Listener, login
from tests.web.conftest import CHROMIUM, LAUNCH_ARGS, open_clinic, require_browser, screenshot, sign_in
from tests.web.test_clinic import book_mental_health_video, call

pytestmark = pytest.mark.e2e

MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        args = [a for a in LAUNCH_ARGS if not a.startswith("--disable-features=")]
        features = next(a for a in LAUNCH_ARGS if a.startswith("--disable-features="))
        # Host candidates as plain addresses (both profiles are on this machine; no mDNS responder needed).
        args.append(features + ",WebRtcHideLocalIpsWithMdns")
        args += MEDIA_ARGS
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        yield browser
        browser.close()


CONNECTED = (
    "() => window.callState && [...window.callState.peers.values()].some((p) => p.pc.connectionState === 'connected')"
)
INBOUND = """async (kind) => {
  let bytes = 0;
  for (const { pc } of window.callState.peers.values()) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === kind) bytes += s.bytesReceived;
    });
  }
  return bytes;
}"""


def wait_bytes(page, kind, above=0, timeout=20.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        got = page.evaluate(INBOUND, kind)
        if got > above:
            return got
        assert time.monotonic() < deadline, f"no {kind} received (bytes {got})"
        time.sleep(0.3)


def test_two_browsers_call_through_the_waiting_room_and_a_third_is_refused(server, new_context):
    psychiatrist = login(server, "demo-psychiatrist")
    member = login(server, "demo-member")
    consultation = book_mental_health_video(server, psychiatrist, member, reason="Follow-up call")

    # The clinician joins first and sees an empty waiting room.
    clinic = open_clinic(new_context)
    clinic.get_by_role("table", name="Today").get_by_role("button", name="Join Pte Ada Okafor").click()
    clinic_call = clinic.get_by_role("region", name="Call")
    clinic_call.get_by_text("waiting for the patient").wait_for()
    waiting_room = clinic_call.get_by_role("list", name="Waiting room")
    waiting_room.get_by_text("nobody waiting").wait_for()

    # The patient joins: the waiting room, no media exchanged, signalling refused until admitted.
    me_context, _ = new_context(viewport={"width": 1280, "height": 1300})
    mine = me_context.new_page()
    sign_in(mine, "demo-member")
    mine.wait_for_url("**/me")
    mine.get_by_role("list", name="My consultations").get_by_role("button", name="Join").first.click()
    # The first mental-health consultation: the consent text first (join is 409 without it), then the call.
    consent = mine.get_by_role("region", name="Consent")
    consent.get_by_text("confidential remote consultation").wait_for()
    consent.get_by_role("button", name="I agree").click()
    mine.get_by_role("list", name="My consents").get_by_text("mental health consultations, text version").wait_for()
    my_call = mine.get_by_role("region", name="Call")
    my_call.get_by_text("You are in the waiting room").wait_for()
    clinic_sid = clinic.evaluate("window.callState.sid")
    refused = mine.evaluate(
        """([id, to]) => window.callState.socket.emitWithAck('call.signal',
             {consultation_id: id, to, data: {description: {type: 'offer', sdp: 'x'}}})""",
        [consultation["id"], clinic_sid],
    )
    assert refused["code"] == 403, refused
    assert mine.evaluate("window.callState.peers.size") == 0

    # The clinician sees who is waiting and admits them; the call connects and media flows both ways.
    waiting_room.get_by_role("button", name="Admit Demo peacekeeper").click()
    waiting_room.get_by_text("nobody waiting").wait_for()
    clinic.wait_for_function(CONNECTED, timeout=30000)
    mine.wait_for_function(CONNECTED, timeout=30000)
    assert wait_bytes(clinic, "video") > 0 and wait_bytes(mine, "video") > 0
    assert wait_bytes(clinic, "audio") > 0 and wait_bytes(mine, "audio") > 0
    my_call.get_by_text("connected with").wait_for()
    screenshot(clinic, "clinic-call")

    # Audio only: the patient's camera is no longer sent; sound still flows.
    my_call.get_by_role("button", name="Audio only").click()
    clinic_call.get_by_role("list", name="Chat").get_by_text("switched to Audio only").wait_for()
    assert (
        mine.evaluate(
            "[...window.callState.peers.values()][0].pc.getSenders()"
            ".filter((s) => s.track && s.track.kind === 'video').length"
        )
        == 0
    )
    audio_now = wait_bytes(clinic, "audio")
    wait_bytes(clinic, "audio", above=audio_now)

    # Chat only, and a message across.
    my_call.get_by_role("button", name="Chat only").click()
    clinic_call.get_by_role("list", name="Chat").get_by_text("switched to Chat only").wait_for()
    assert mine.evaluate("[...window.callState.peers.values()][0].pc.getSenders().filter((s) => s.track).length") == 0
    my_call.get_by_label("Message").fill("The link is poor here, can we type?")
    my_call.get_by_role("button", name="Send message").click()
    clinic_call.get_by_role("list", name="Chat").get_by_text("The link is poor here, can we type?").wait_for()

    # A third connection, a clinician who is not a participant: refused without a token, with another
    # participant's token, and when signalling into the call it never joined.
    outsider = Listener(server.url, login(server, "demo-clinician"))
    try:
        member_ticket = call(server, member, "GET", f"/telemed/consultations/{consultation['id']}/join").json()
        assert member_ticket["ice_servers"] == []  # no TURN_URLS on this server
        no_token = outsider.client.call("call.join", {"consultation_id": consultation["id"], "token": ""}, timeout=10)
        assert no_token["code"] == 401, no_token
        forged = outsider.client.call(
            "call.join", {"consultation_id": consultation["id"], "token": "a.b.c"}, timeout=10
        )
        assert forged["code"] == 403, forged
        stolen = outsider.client.call(
            "call.join", {"consultation_id": consultation["id"], "token": member_ticket["token"]}, timeout=10
        )
        assert stolen["code"] == 403, stolen
        signal = outsider.client.call(
            "call.signal",
            {"consultation_id": consultation["id"], "to": clinic_sid, "data": {"candidate": {}}},
            timeout=10,
        )
        assert signal["code"] == 403, signal
        chat = outsider.client.call("call.chat", {"consultation_id": consultation["id"], "text": "hi"}, timeout=10)
        assert chat["code"] == 403, chat
        time.sleep(0.5)
        assert [e for e, _ in outsider.received if e.startswith("call.")] == []
    finally:
        outsider.close()
