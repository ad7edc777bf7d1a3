"""The operations console in a real browser (CONSOLE.md): sign-in by role, the live queue with the alert,
Acknowledge and Dispatch from the page, the map, a server restart survived, a medic refused."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.casevac.conftest import body
from tests.e2e.conftest import Server, login, server_env, start_servers
from tests.web.conftest import SERVER_ENV, require_browser, screenshot, sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """This module's server escalates an unacknowledged urgent request after 3 s (the default is 120 s)."""
    require_browser()
    [server] = start_servers(
        tmp_path_factory.mktemp("console"), 1, ESCALATE_AFTER_SECONDS="3", SWEEPER_INTERVAL_SECONDS="1", **SERVER_ENV
    )
    yield server
    server.stop()


def file_request(server, token, **overrides) -> dict:
    response = requests.post(
        f"{server.url}/api/v1/casevac/requests",
        json=body(client_ref=str(uuid.uuid4()), **overrides),
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )
    assert response.status_code == 201, response.text
    return response.json()


def casualty(zap, minutes_ago, precedence, **extra):
    injured = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    return {
        "zap": zap,
        "age": 27,
        "time_of_injury": injured.isoformat(),
        "mechanism": "blast",
        "injuries": ["left leg amputation"],
        "precedence": precedence,
        "signs": {"pulse": 128, "resp_rate": 26, "spo2": 91, "sbp": 85, "avpu": "V"},
        **extra,
    }


def open_console(new_context):
    context, guard = new_context()
    page = context.new_page()
    sign_in(page, "demo-coordinator")
    page.wait_for_url("**/console")
    page.locator("#connection[data-state='live']").wait_for()  # connected and synced
    page.get_by_role("status").filter(has_text="live").wait_for()
    return context, page


def test_sign_in_sends_each_role_to_its_page_and_sign_out_clears_the_token(new_context):
    context, _ = new_context()
    page = context.new_page()
    page.goto("/")
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
    response = page.request.get("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "connect-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("Username").fill("demo-coordinator")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("invalid username or password").wait_for()
    for username, path in (
        ("demo-medic", "/field"),
        ("demo-clinician", "/clinic"),
        ("demo-member", "/me"),
        ("demo-admin", "/console"),
        ("demo-coordinator", "/console"),
    ):
        page.evaluate("sessionStorage.clear()")
        sign_in(page, username)
        page.wait_for_url(f"**{path}")
        assert page.evaluate("JSON.parse(sessionStorage.getItem('medevac.session')).user.username") == username
        assert page.evaluate("document.cookie") == ""
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(lambda url: url.endswith("/?signedout=1"))
    assert page.evaluate("sessionStorage.getItem('medevac.session')") is None
    # An expired (here: forged) token: the first API call answers 401 and the page returns to sign-in.
    page.evaluate("""sessionStorage.setItem('medevac.session', JSON.stringify({token: 'not.a.token',
        user: {id: 'x', username: 'demo-coordinator', role: 'coordinator'}, expires_at: Date.now() + 3600e3}))""")
    page.goto("/console")
    page.wait_for_url(lambda url: "/?expired=" in url)
    page.get_by_text("Your session has expired").wait_for()


def test_a_filed_request_appears_live_with_the_alert_then_acknowledge_and_dispatch_from_the_page(server, new_context):
    medic = login(server, "demo-medic")
    # Two requests already in the queue when the console opens (one with lines 6-9 complete).
    coordinator = login(server, "demo-coordinator")
    kilo = file_request(
        server,
        medic,
        callsign="KILO-3-1",
        location={"lat": 5.7612, "lon": 20.6390},
        patients={"urgent": 0, "urgent_surgical": 0, "priority": 2, "routine": 0, "convenience": 0},
        equipment=[],
        litter=1,
        ambulatory=1,
        security="N",
        marking="panels",
        nationality={"un_military": 2},
        terrain="dirt road",
        casualties=[casualty("K-1", 50, "priority"), casualty("K-2", 50, "priority")],
    )
    echo = file_request(
        server,
        medic,
        callsign="ECHO-7",
        location={"lat": 5.9612, "lon": 15.6390},
        patients={"urgent": 0, "urgent_surgical": 0, "priority": 0, "routine": 1, "convenience": 0},
        equipment=[],
        litter=0,
        ambulatory=1,
    )
    for filed_before in (kilo, echo):
        assert (
            requests.post(
                f"{server.url}/api/v1/casevac/requests/{filed_before['id']}/status",
                timeout=10,
                json={"status": "acknowledged"},
                headers={"Authorization": f"Bearer {coordinator}"},
            ).status_code
            == 200
        )
    context, page = open_console(new_context)
    page.get_by_role("table", name="Queue").get_by_role("row").filter(has_text="KILO-3-1").wait_for()
    # The socket upgraded to a websocket under the page's CSP (connect-src 'self' covers same-origin ws:).
    page.locator("#connection[data-transport='websocket']").wait_for(timeout=10000)
    callsign = f"WEB-{uuid.uuid4().hex[:4].upper()}"
    started = time.monotonic()
    filed = file_request(
        server,
        medic,
        callsign=callsign,
        casualties=[
            casualty(
                "A-1",
                4,
                "urgent_surgical",
                treatments=[{"code": "tourniquet", "at": datetime.now(timezone.utc).isoformat()}],
            ),
            casualty("A-2", 4, "urgent"),
        ],
    )
    queue = page.get_by_role("table", name="Queue")
    row = queue.get_by_role("row").filter(has_text=callsign)
    row.wait_for(timeout=2000)
    alert = page.get_by_role("alert").filter(has_text=callsign)
    alert.wait_for(timeout=2000)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"the row took {elapsed:.2f} s"
    assert page.locator("#alerts").get_attribute("data-tone") == "on"
    assert filed["location"]["mgrs"][:3] in row.inner_text().replace(" ", "")
    assert "missing" in row.inner_text()  # lines 6-9 not sent yet
    row.locator(".countdown").wait_for()  # the next 10-1-2 leg due, counting down
    first_count = row.locator(".countdown").inner_text()
    page.wait_for_function(
        """([id, text]) => document.querySelector(`tr[data-id="${id}"] .countdown`).textContent !== text""",
        arg=[filed["id"], first_count],
        timeout=3000,
    )
    screenshot(page, "console")

    row.get_by_role("button", name=callsign).click()
    detail = page.get_by_role("region", name="Request detail")
    detail.get_by_role("heading", name=f"Request detail: {callsign}").wait_for()
    detail.get_by_role("button", name="Acknowledge").click()
    detail.locator("#detail-message").filter(has_text="Now acknowledged.").wait_for()
    assert (
        requests.get(
            f"{server.url}/api/v1/casevac/requests/{filed['id']}",
            timeout=10,
            headers={"Authorization": f"Bearer {medic}"},
        ).json()["status"]
        == "acknowledged"
    )
    page.get_by_role("alert").filter(has_text=callsign).wait_for(state="detached")
    assert page.locator("#alerts").get_attribute("data-tone") == "off"

    recommendations = detail.get_by_role("region", name="Recommendations")
    recommendations.get_by_role("button", name="Dispatch").first.wait_for()
    first = recommendations.get_by_role("listitem").first
    assert "ETA" in first.inner_text()
    screenshot(page, "request-detail")
    first.get_by_role("button", name="Dispatch").click()
    detail.locator("#detail-message").filter(has_text="Dispatched").wait_for()
    after = requests.get(
        f"{server.url}/api/v1/casevac/requests/{filed['id']}", timeout=10, headers={"Authorization": f"Bearer {medic}"}
    ).json()
    assert after["status"] == "dispatched" and after["asset_id"]
    row.locator(".status-dispatched").wait_for()
    detail.get_by_role("button", name="At pickup").wait_for()

    map_region = page.get_by_role("region", name="Map")
    map_region.locator("path.leaflet-interactive").first.wait_for()
    assert page.locator("#map").get_attribute("data-basemap") == "world outline"
    screenshot(map_region, "map")


def test_a_medic_cannot_open_the_console_data(server, new_context):
    medic = login(server, "demo-medic")
    refused = requests.get(
        f"{server.url}/api/v1/casevac/metrics", headers={"Authorization": f"Bearer {medic}"}, timeout=10
    )
    assert refused.status_code == 403
    assert (
        requests.post(
            f"{server.url}/api/v1/casevac/plan", json={}, timeout=10, headers={"Authorization": f"Bearer {medic}"}
        ).status_code
        == 403
    )
    context, _ = new_context()
    page = context.new_page()
    sign_in(page, "demo-medic")
    page.wait_for_url("**/field")
    page.goto("/console")
    page.get_by_role("alert").filter(has_text="for coordinators and admins").wait_for()
    assert page.get_by_role("table", name="Queue").is_hidden()


def test_an_unacknowledged_urgent_request_escalates_the_alert_rings_until_silenced_and_clears_on_acknowledge(
    server, new_context
):
    context, page = open_console(new_context)
    callsign = f"ESC-{uuid.uuid4().hex[:4].upper()}"
    filed = file_request(server, login(server, "demo-medic"), callsign=callsign)
    escalated = (
        page.get_by_role("alert").filter(has_text="Escalated: not acknowledged in time").filter(has_text=callsign)
    )
    escalated.wait_for(timeout=20000)  # ESCALATE_AFTER_SECONDS=3, the sweeper every second
    for alert in page.get_by_role("alert").filter(has_text=callsign).all():
        alert.get_by_role("button", name="Silence").click()
    assert page.locator("#alerts").get_attribute("data-tone") == "off"
    escalated.get_by_role("button", name="Dismiss").wait_for()  # silenced, still shown until acknowledged
    coordinator = login(server, "demo-coordinator")
    assert (
        requests.post(
            f"{server.url}/api/v1/casevac/requests/{filed['id']}/status",
            json={"status": "acknowledged"},
            headers={"Authorization": f"Bearer {coordinator}"},
            timeout=10,
        ).status_code
        == 200
    )
    page.get_by_role("alert").filter(has_text=callsign).first.wait_for(state="detached")
    assert page.get_by_role("alert").filter(has_text=callsign).count() == 0


def test_the_mass_casualty_plan_is_run_and_its_accepted_assignments_dispatched(server, new_context):
    medic = login(server, "demo-medic")
    callsigns = [f"MASCAL-{n}-{uuid.uuid4().hex[:3].upper()}" for n in range(2)]
    filed = [
        file_request(
            server,
            medic,
            callsign=c,
            equipment=[],
            location={"lat": 4.40 + n / 100, "lon": 18.52},
            patients={"urgent": 0, "urgent_surgical": 0, "priority": 1, "routine": 0, "convenience": 0},
            litter=1,
            ambulatory=0,
        )
        for n, c in enumerate(callsigns)
    ]
    context, page = open_console(new_context)
    plan = page.get_by_role("region", name="Mass casualty plan")
    plan.get_by_role("button", name="Run plan").click()
    assignments = plan.get_by_role("table", name="Assignments")
    assignments.get_by_role("row").filter(has_text=callsigns[0]).wait_for()
    plan.get_by_role("button", name="Dispatch accepted").click()
    coordinator = login(server, "demo-coordinator")
    for request, callsign in zip(filed, callsigns, strict=False):
        row = assignments.get_by_role("row").filter(has_text=callsign)
        if row.count():
            row.get_by_role("cell", name="dispatched", exact=True).wait_for()
            status = requests.get(
                f"{server.url}/api/v1/casevac/requests/{request['id']}",
                timeout=10,
                headers={"Authorization": f"Bearer {coordinator}"},
            ).json()["status"]
            assert status == "dispatched"
        else:
            plan.get_by_role("list", name="Unserved").get_by_text(callsign).wait_for()


def test_a_fresh_console_finds_the_watermark_then_shows_new_requests_emergencies_and_live_positions(
    server, new_context
):
    from sqlalchemy import create_engine, insert, text

    from core import clock
    from realtime.models import Event

    engine = create_engine(server.env["DATABASE_URL"])
    with engine.begin() as conn:
        mission_id = conn.execute(text("SELECT mission_id FROM users WHERE username = 'demo-coordinator'")).scalar()
        rooms = [[f"mission:{mission_id}:role:coordinator"], ["user:someone-else"]]
        conn.execute(
            insert(Event.__table__),
            [
                {
                    "type": "test.noise",
                    "rooms": rooms[n % 5 == 0],
                    "data": {"n": n},
                    "mission_id": mission_id,
                    "at": clock.now(),
                }
                for n in range(3000)
            ],
        )
    deadline = time.monotonic() + 60
    while True:  # the server's relay sequences them
        with engine.connect() as conn:
            unsequenced, watermark = conn.execute(text("SELECT count(*) - count(seq), max(seq) FROM events")).one()
        if unsequenced == 0:
            break
        assert time.monotonic() < deadline, "the relay did not sequence the events"
        time.sleep(0.2)
    engine.dispose()
    context, page = open_console(new_context)
    page.wait_for_function("() => window.consoleState.live && window.consoleState.live.syncs === 1")
    assert page.evaluate("window.consoleState.live.lastSeq") == watermark
    calls = page.evaluate("window.consoleState.live.calls")
    assert calls <= 2 * 12 + 2, calls  # one page, then about 2 log2(watermark) probes; never 3 pages of 1,000
    callsign = f"AFTER-{uuid.uuid4().hex[:4].upper()}"
    file_request(server, login(server, "demo-medic"), callsign=callsign)
    page.get_by_role("table", name="Queue").get_by_role("row").filter(has_text=callsign).wait_for(timeout=5000)
    page.get_by_role("alert").filter(has_text=callsign).first.wait_for()

    # An emergency beacon (TAK's `emergency` event, written to the log by the gateway): the banner rings.
    engine = create_engine(server.env["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(
            insert(Event.__table__).values(
                type="emergency",
                rooms=[f"mission:{mission_id}:role:coordinator"],
                mission_id=mission_id,
                data={"kind": "911", "callsign": "TAK-ALPHA", "lat": 4.3612, "lon": 18.555},
                at=clock.now(),
            )
        )
    engine.dispose()
    emergency = page.get_by_role("alert").filter(has_text="EMERGENCY 911 from TAK-ALPHA at 34N BK")
    emergency.wait_for(timeout=10000)
    assert page.locator("#alerts").get_attribute("data-tone") == "on"
    with engine.begin() as conn:  # the beacon is cancelled: its banner goes
        conn.execute(
            insert(Event.__table__).values(
                type="emergency.cancelled",
                rooms=[f"mission:{mission_id}:role:coordinator"],
                mission_id=mission_id,
                data={"kind": "911", "callsign": "TAK-ALPHA", "lat": 4.3612, "lon": 18.555},
                at=clock.now(),
            )
        )
    engine.dispose()
    emergency.wait_for(state="detached", timeout=10000)

    # A live position moves the asset on the map (asset.position, live only).
    coordinator = login(server, "demo-coordinator")
    assets = requests.get(
        f"{server.url}/api/v1/assets", headers={"Authorization": f"Bearer {coordinator}"}, timeout=10
    ).json()["items"]
    asset = next(a for a in assets if a["callsign"] == "MEDEVAC-2")
    response = requests.post(
        f"{server.url}/api/v1/assets/{asset['id']}/positions",
        timeout=10,
        json={"lat": 5.5, "lon": 20.1, "heading": 90, "speed_kmh": 200},
        headers={"Authorization": f"Bearer {coordinator}"},
    )
    assert response.status_code in (200, 201, 202), response.text
    page.wait_for_function(
        "(id) => { const a = window.consoleState.assets.get(id); return a && a.position && a.position.lat === 5.5; }",
        arg=asset["id"],
        timeout=10000,
    )


def test_the_console_survives_a_server_restart_and_shows_what_it_missed(server, new_context, tmp_path):
    context, page = open_console(new_context)
    medic = login(server, "demo-medic")
    server.stop()
    page.locator("#connection").filter(has_text="reconnecting").or_(
        page.locator("#connection").filter(has_text="offline")
    ).wait_for(timeout=20000)
    # While the console's server is down, a request is filed through another process of the same deployment
    # (same database): the console can only learn of it by `sync` when its server is back.
    other = Server(
        server_env(
            tmp_path,
            DATABASE_URL=server.env["DATABASE_URL"],
            MIGRATE="0",
            SEED_DEMO="0",
            **{k: v for k, v in server.env.items() if k.startswith("LOGIN_LIMIT")},
        ),
        tmp_path / "other.log",
    ).start()
    try:
        callsign = f"MISSED-{uuid.uuid4().hex[:4].upper()}"
        missed = file_request(other, login(other, "demo-medic"), callsign=callsign)
    finally:
        other.stop()
    server.start()
    page.locator("#connection").filter(has_text="live").wait_for(timeout=30000)
    page.get_by_role("table", name="Queue").get_by_role("row").filter(has_text=callsign).wait_for(timeout=10000)
    page.get_by_role("alert").filter(has_text=f"New Urgent request {callsign}").wait_for()
    # Shown once: the replay and any live copy of the same event are one row and one alert.
    assert page.get_by_role("table", name="Queue").get_by_role("row").filter(has_text=callsign).count() == 1
    assert page.get_by_role("alert").filter(has_text=f"New Urgent request {callsign}").count() == 1
    # A reload shows the same queue.
    page.reload()
    page.get_by_role("table", name="Queue").get_by_role("row").filter(has_text=callsign).wait_for()
    assert missed["status"] == "requested"
    del medic
