"""The field app in a real browser (CONSOLE.md): installable, opens offline after the first visit, files
lines 1-5 while offline into the IndexedDB outbox, sends exactly once when the connection is back, and shows
sent, then acknowledged; lines 6-9 and a casualty follow as updates. /docs is browsable, vendored."""

from __future__ import annotations

import time

import pytest
import requests

from tests.e2e.conftest import login
from tests.web.conftest import screenshot, sign_in

pytestmark = pytest.mark.e2e

PHONE = {"viewport": {"width": 412, "height": 915}, "is_mobile": True, "has_touch": True}


def requests_by(server, token, callsign):
    response = requests.get(
        f"{server.url}/api/v1/casevac/requests?limit=500", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return [r for r in response.json()["items"] if r["callsign"] == callsign]


def eventually(page, script: str, timeout: float = 15.0) -> None:
    """Poll an async page function until it resolves true (wait_for_function does not await a promise)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {script}"
        time.sleep(0.1)


def test_medic_files_offline_then_exactly_one_request_is_sent_and_acknowledged(server, new_context):
    context, _ = new_context(
        **PHONE, geolocation={"latitude": 4.3612, "longitude": 18.5550}, permissions=["geolocation"]
    )
    page = context.new_page()
    sign_in(page, "demo-medic")
    page.wait_for_url("**/field")
    # Installable: a manifest, and a service worker that controls the page once the shell is cached.
    manifest = page.request.get("/field.webmanifest").json()
    assert manifest["start_url"] == "/field" and manifest["display"] == "standalone"
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    page.reload()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.get_by_role("status").filter(has_text="live").wait_for()

    context.set_offline(True)
    page.reload()  # opens from the service worker's cache
    page.get_by_role("button", name="Send lines 1-5").wait_for()
    page.get_by_role("button", name="Use GPS").click()
    page.locator("#location-echo").filter(has_text="MGRS 34N BK 28633 82493 (GPS").wait_for()
    page.get_by_label("Location").fill("4°21'40\"N 18°33'18\"E")  # DMS, echoed back as MGRS before sending
    page.locator("#location-echo").filter(has_text="MGRS 34N BK 28").wait_for()
    page.get_by_label("Location").fill("not a place")
    page.locator("#location-echo").filter(has_text="not a position").wait_for()
    page.get_by_label("Location").fill("34N BK 28633 82493")
    page.locator("#location-echo").filter(has_text="MGRS 34N BK 28633 82493").wait_for()
    page.get_by_label("Frequency").fill("38.90")
    page.get_by_label("Callsign").fill("OFFLINE-1")
    page.get_by_label("Urgent", exact=True).fill("1")
    page.get_by_label("Priority", exact=True).fill("1")
    page.get_by_label("Litter").fill("1")
    page.get_by_label("Ambulatory").fill("1")
    page.get_by_role("button", name="Send lines 1-5").click()
    outbox = page.get_by_role("list", name="Outbox")
    item = outbox.get_by_role("listitem").filter(has_text="OFFLINE-1")
    item.filter(has_text="queued").wait_for()
    # A reload while offline loses nothing: the outbox is in IndexedDB.
    page.reload()
    item.filter(has_text="queued").wait_for()
    screenshot(page, "field-app")
    ref = page.evaluate("window.fieldOutbox.all().then(items => items[0].client_ref)")
    assert ref

    context.set_offline(False)
    item.filter(has_text="sent").wait_for(timeout=20000)
    medic = login(server, "demo-medic")
    filed = requests_by(server, medic, "OFFLINE-1")
    assert len(filed) == 1, filed
    assert filed[0]["location"]["mgrs"].startswith("34NBK")

    # The retry of a filing whose answer was lost is answered from the same request (client_ref).
    again = page.evaluate(
        """async (ref) => {
        const item = await window.fieldOutbox.get(ref);
        const token = JSON.parse(sessionStorage.getItem('medevac.session')).token;
        const r = await fetch('/api/v1/casevac/requests', {method: 'POST', body: JSON.stringify(item.body),
            headers: {'Content-Type': 'application/json', Authorization: 'Bearer ' + token}});
        return r.status; }""",
        ref,
    )
    assert again == 200
    assert len(requests_by(server, medic, "OFFLINE-1")) == 1

    coordinator = login(server, "demo-coordinator")
    response = requests.post(
        f"{server.url}/api/v1/casevac/requests/{filed[0]['id']}/status",
        json={"status": "acknowledged"},
        headers={"Authorization": f"Bearer {coordinator}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    item.filter(has_text="acknowledged").wait_for(timeout=10000)

    # Lines 6-9 and a casualty as later updates.
    item.get_by_role("button", name="Update OFFLINE-1").click()
    page.get_by_label("Line 6: security").select_option("P")
    page.get_by_label("Line 7: marking").select_option("smoke")
    page.get_by_label("Line 8: nationality (UN military)").fill("2")
    page.get_by_label("Line 9: terrain").fill("open field")
    page.get_by_role("button", name="Send lines 6-9").click()
    page.get_by_label("ZAP number").fill("A-1")
    page.get_by_label("Pulse").fill("120")
    page.get_by_role("button", name="Add casualty").click()
    eventually(
        page,
        """() => window.fieldOutbox.all().then(items => items[0].ops.length === 2 &&
        items[0].ops.every(o => o.state === 'done'))""",
    )
    detail = requests.get(
        f"{server.url}/api/v1/casevac/requests/{filed[0]['id']}",
        timeout=10,
        headers={"Authorization": f"Bearer {medic}"},
    ).json()
    assert detail["lines_complete"] is True and detail["security"] == "P"
    assert [c["zap"] for c in detail["casualties"]] == ["A-1"], (
        detail["casualties"],
        page.evaluate("window.fieldOutbox.all().then(i => JSON.stringify(i[0].ops))"),
    )

    # Dispatched: the item shows the asset and an ETA.
    options = requests.get(
        f"{server.url}/api/v1/casevac/requests/{filed[0]['id']}/recommendations",
        timeout=10,
        headers={"Authorization": f"Bearer {coordinator}"},
    ).json()["options"]
    best = options[0]
    response = requests.post(
        f"{server.url}/api/v1/casevac/requests/{filed[0]['id']}/dispatch",
        timeout=10,
        json={"asset_id": best["asset_id"], "facility_id": best["facility_id"]},
        headers={"Authorization": f"Bearer {coordinator}"},
    )
    assert response.status_code == 200, response.text
    item.filter(has_text=f"dispatched: {best['callsign']}, ETA").wait_for(timeout=10000)


def test_docs_browse_the_openapi_document_with_no_other_origin(new_context):
    context, _ = new_context()
    page = context.new_page()
    page.goto("/docs")
    page.get_by_text("/api/v1/casevac/requests").first.wait_for(timeout=20000)
    screenshot(page, "api-docs")
    assert "script-src 'self'" in page.request.get("/docs").headers["content-security-policy"]
