"""The web pages on the wire (issue 13): console load on an emulated slow link, filing-to-row latency beside
the Socket.IO event's own arrival, and the field app's first visit against a cached visit.

    PYTHONPATH=. .venv/bin/python bench/console_load.py [--filings 10] [--kbps 400] [--latency-ms 300]

Starts one server as `make run` does (bin/serve, SQLite, no Redis) and drives Debian's Chromium through
Playwright. Figures:
- console: bytes over the network (CDP encodedDataLength: headers + compressed bodies) and the time from
  navigation to the first queue row, on the emulated slow link (Chromium's CDP network throttling) and,
  as the baseline in the same run, unthrottled;
- live: for each filing (POST by the API), the time to the casevac.created event at a python-socketio
  client (the baseline) and to the row in the browser (a MutationObserver timestamps it in the page);
- field: bytes and requests of the first visit (shell cached by the service worker) and of a later visit
  that files lines 1-5, counted from the server's access log (what really crossed the wire, the service
  worker's own requests included).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import cpu_model, percentile  # noqa: E402
from tests.casevac.conftest import body  # noqa: E402
from tests.e2e.conftest import Listener, login, start_servers  # noqa: E402
from tests.web.conftest import CHROMIUM, LAUNCH_ARGS, SERVER_ENV  # noqa: E402

ACCESS = re.compile(r'"(GET|POST|PATCH|PUT|DELETE|HEAD) (\S+)" (\d{3}) (\d+|-) ')


def sign_in(page, username):
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("demo-password-123")
    page.get_by_role("button", name="Sign in").click()


def console_load(browser, server, *, throttle: dict | None) -> dict:
    """Sign in, then measure the console page load alone (a fresh navigation to /console)."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    sign_in(page, "demo-coordinator")
    page.wait_for_url("**/console")
    page.locator("#queue tbody tr").first.wait_for()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    # The HTTP cache off: a first visit, every byte over the (emulated) link.
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    if throttle:
        cdp.send("Network.emulateNetworkConditions", {"offline": False, **throttle})
    received = {"bytes": 0, "requests": 0, "ws": 0}
    cdp.on(
        "Network.loadingFinished",
        lambda e: received.update(bytes=received["bytes"] + e["encodedDataLength"], requests=received["requests"] + 1),
    )
    cdp.on(
        "Network.webSocketFrameReceived",
        lambda e: received.update(ws=received["ws"] + len(e["response"]["payloadData"])),
    )
    started = time.monotonic()
    page.goto("/console")
    page.locator("#queue tbody tr").first.wait_for(timeout=120000)
    first_row = time.monotonic() - started
    page.locator("#connection[data-state='live']").wait_for(timeout=120000)
    live = time.monotonic() - started
    page.wait_for_load_state("networkidle", timeout=120000)
    settled = time.monotonic() - started
    context.close()
    return {"first_row_s": first_row, "live_s": live, "settled_s": settled, **received}


def live_latency(browser, server, filings: int) -> dict:
    medic = login(server, "demo-medic")
    listener = Listener(server.url, login(server, "demo-coordinator"))
    context = browser.new_context(base_url=server.url, viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    sign_in(page, "demo-coordinator")
    page.wait_for_url("**/console")
    page.locator("#connection[data-state='live']").wait_for()
    page.evaluate("""() => { window.rowSeen = {};
        new MutationObserver(() => { for (const row of document.querySelectorAll('#queue tbody tr')) {
            const name = row.children[1] && row.children[1].textContent;
            if (name && !(name in window.rowSeen))
                window.rowSeen[name] = performance.timeOrigin + performance.now(); } })
        .observe(document.querySelector('#queue tbody'), {childList: true, subtree: true}); }""")
    event_ms, row_ms = [], []
    for n in range(filings):
        callsign = f"BENCH-{n}-{uuid.uuid4().hex[:4].upper()}"
        started = time.time()
        response = requests.post(
            f"{server.url}/api/v1/casevac/requests",
            timeout=15,
            json=body(client_ref=str(uuid.uuid4()), callsign=callsign),
            headers={"Authorization": f"Bearer {medic}"},
        )
        assert response.status_code == 201, response.text
        request_id = response.json()["id"]
        listener.wait_for(
            lambda envelopes, rid=request_id: any(
                e.get("type") == "casevac.created" and e["data"]["id"] == rid for e in envelopes
            )
        )
        event_at = time.time()
        page.wait_for_function("(name) => name in window.rowSeen", arg=callsign, timeout=10000)
        row_at = page.evaluate("(name) => window.rowSeen[name]", callsign) / 1000
        event_ms.append((event_at - started) * 1000)
        row_ms.append((row_at - started) * 1000)
        time.sleep(0.3)
    listener.close()
    context.close()
    return {"event_ms": event_ms, "row_ms": row_ms}


def access_log_since(server, offset: int) -> list[tuple[str, str, int, int]]:
    text = server.log_path.read_text(errors="replace")[offset:]
    return [(m[1], m[2], int(m[3]), 0 if m[4] == "-" else int(m[4])) for m in ACCESS.finditer(text)]


def field_visits(browser, server, throttle: dict) -> dict:
    context = browser.new_context(base_url=server.url, viewport={"width": 412, "height": 915}, is_mobile=True)
    page = context.new_page()
    # Signed in through the API (the sign-in page itself is not the field app's): the token put where the
    # sign-in page puts it, then the first visit of /field.
    login_body = requests.post(
        f"{server.url}/api/v1/auth/login", timeout=10, json={"username": "demo-medic", "password": "demo-password-123"}
    ).json()
    page.goto("/?signedout=1")
    page.evaluate(
        """(b) => sessionStorage.setItem('medevac.session', JSON.stringify({token: b.access_token,
        user: b.user, expires_at: Date.now() + b.expires_in * 1000}))""",
        login_body,
    )
    offset = len(server.log_path.read_text(errors="replace"))
    started = time.monotonic()
    page.goto("/field")
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=20000)
    page.locator("#connection[data-state='live']").wait_for()
    page.wait_for_load_state("networkidle")
    time.sleep(1.5)
    first = access_log_since(server, offset)
    first_s = time.monotonic() - started
    # A later visit on the slow link: open the app, file lines 1-5, see it sent.
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, **throttle})
    page.goto("about:blank")
    time.sleep(0.5)
    offset = len(server.log_path.read_text(errors="replace"))
    started = time.monotonic()
    page.goto("/field")
    page.get_by_role("button", name="Send lines 1-5").wait_for()
    opened_s = time.monotonic() - started
    page.get_by_label("Location").fill("34N BK 28633 82493")
    page.get_by_label("Frequency").fill("38.90")
    page.get_by_label("Callsign").fill("BENCH-FIELD")
    page.get_by_label("Urgent", exact=True).fill("1")
    page.get_by_label("Litter").fill("1")
    page.get_by_role("button", name="Send lines 1-5").click()
    page.get_by_role("list", name="Outbox").get_by_role("listitem").filter(has_text="sent").wait_for(timeout=60000)
    filed_s = time.monotonic() - started
    page.wait_for_load_state("networkidle")
    time.sleep(1.5)
    later = access_log_since(server, offset)
    context.close()
    return {"first": first, "first_s": first_s, "later": later, "opened_s": opened_s, "filed_s": filed_s}


def summarise(entries):
    http = [e for e in entries if not e[1].startswith("/socket.io")]
    sock = [e for e in entries if e[1].startswith("/socket.io")]
    return {
        "requests": len(http),
        "bytes": sum(e[3] for e in http),
        "socket_requests": len(sock),
        "socket_bytes": sum(e[3] for e in sock),
        "paths": [f"{e[0]} {e[1].split('?')[0]} {e[2]} {e[3]}" for e in http],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--filings", type=int, default=10)
    parser.add_argument("--kbps", type=int, default=400, help="slow link, down (up is a third of it)")
    parser.add_argument("--latency-ms", type=int, default=300)
    args = parser.parse_args()
    throttle = {
        "latency": args.latency_ms,
        "downloadThroughput": args.kbps * 1000 / 8,
        "uploadThroughput": args.kbps * 1000 / 8 / 3,
    }
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        [server] = start_servers(Path(tmp), 1, **SERVER_ENV)
        try:
            medic = login(server, "demo-medic")
            for n in range(5):  # a queue to load
                requests.post(
                    f"{server.url}/api/v1/casevac/requests",
                    timeout=15,
                    json=body(client_ref=str(uuid.uuid4()), callsign=f"QUEUE-{n}"),
                    headers={"Authorization": f"Bearer {medic}"},
                ).raise_for_status()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
                fast = console_load(browser, server, throttle=None)
                slow = console_load(browser, server, throttle=throttle)
                live = live_latency(browser, server, args.filings)
                field = field_visits(browser, server, throttle)
                browser.close()
        finally:
            server.stop()

    print(f"machine: {cpu_model()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"slow link: {args.kbps} kbit/s down, {args.kbps // 3} kbit/s up, {args.latency_ms} ms latency")
    for name, run in (("console, unthrottled (baseline)", fast), ("console, slow link", slow)):
        print(
            f"{name}: first queue row {run['first_row_s']:.2f} s, live {run['live_s']:.2f} s, settled "
            f"{run['settled_s']:.2f} s; {run['bytes'] / 1024:.1f} KiB in {run['requests']} responses "
            f"(+ {run['ws'] / 1024:.1f} KiB websocket frames)"
        )
    print(f"slow / unthrottled, first row: {slow['first_row_s'] / fast['first_row_s']:.1f}x")
    ev, row = live["event_ms"], live["row_ms"]
    print(
        f"filing -> casevac.created at a socket client (baseline): p50 {statistics.median(ev):.0f} ms, "
        f"p90 {percentile(ev, 90):.0f} ms"
    )
    print(
        f"filing -> row in the console: p50 {statistics.median(row):.0f} ms, p90 {percentile(row, 90):.0f} ms "
        f"(ratio p50 {statistics.median(row) / statistics.median(ev):.2f}x)"
    )
    first, later = summarise(field["first"]), summarise(field["later"])
    print(
        f"field first visit: {first['requests']} HTTP requests, {first['bytes'] / 1024:.1f} KiB bodies "
        f"(+ socket {first['socket_requests']} requests, {first['socket_bytes']} B), {field['first_s']:.2f} s"
    )
    print(
        f"field later visit + filing lines 1-5 on the slow link: {later['requests']} HTTP requests, "
        f"{later['bytes']} B bodies (+ socket {later['socket_requests']} requests, {later['socket_bytes']} B); "
        f"opened in {field['opened_s']:.2f} s, sent in {field['filed_s']:.2f} s"
    )
    print("  " + "\n  ".join(later["paths"]))
    print(f"cached / first visit bytes: {later['bytes'] / max(1, first['bytes']):.3f}")


if __name__ == "__main__":
    main()
