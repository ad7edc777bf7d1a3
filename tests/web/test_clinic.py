"""The clinic page (/clinic) and the member's page (/me) in a real browser (CONSOLE.md): the day and week
view in the clinician's own zone, check-in state live, join, notes (psychotherapy notes for their author
only), the store-and-forward inbox with replies, the screening alert with its banner and tone; the member's
PHQ-9 with the crisis line, a self-referral with a booked slot, and the member's own access log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.e2e.conftest import login
from tests.web.conftest import open_clinic, screenshot, sign_in

pytestmark = pytest.mark.e2e


def call(server, token, method, path, **kwargs):
    response = requests.request(
        method, f"{server.url}/api/v1{path}", headers={"Authorization": f"Bearer {token}"}, timeout=15, **kwargs
    )
    return response


def profile_of(server, token, user_id) -> dict:
    page = call(server, token, "GET", "/telemed/clinicians?limit=100").json()
    return next(c for c in page["items"] if c["user_id"] == user_id)


def me(server, token) -> dict:
    return call(server, token, "GET", "/auth/me").json()


def open_all_day(server, token, clinician_id) -> None:
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    response = call(
        server,
        token,
        "PUT",
        f"/telemed/clinicians/{clinician_id}/availability",
        json={
            "weekly": [{"day": d, "start": "00:00", "end": "24:00"} for d in days],
            "overrides": [],
            "slot_minutes": 15,
            "buffer_minutes": 0,
            "min_notice_minutes": 0,
        },
    )
    assert response.status_code == 200, response.text


def minutes_from_now(minutes: int) -> datetime:
    """A start `minutes` from now (to the minute): the join window (from 15 minutes before) is open."""
    moment = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    return moment.replace(second=0, microsecond=0)


def book_mental_health_video(server, psychiatrist, member, *, reason: str, patient_user: bool = False) -> dict:
    """The psychiatrist's whole week opened, then a mental-health video consultation 5 minutes from now booked by
    the member (inside the join window): its answer. `patient_user`: the member is the patient as a user."""
    profile = profile_of(server, psychiatrist, me(server, psychiatrist)["id"])
    open_all_day(server, psychiatrist, profile["id"])
    patient = {"name": "Pte Ada Okafor"}
    if patient_user:
        patient["user_id"] = me(server, member)["id"]
    booked = call(
        server,
        member,
        "POST",
        "/telemed/consultations",
        json={
            "kind": "mental_health",
            "clinician_id": profile["id"],
            "start": minutes_from_now(5).isoformat(),
            "duration_minutes": 30,
            "modality": "video",
            "reason": reason,
            "patient": patient,
        },
    )
    assert booked.status_code == 201, booked.text
    return booked.json()


def test_clinic_day_view_alerts_notes_inbox_and_join(server, new_context):
    psychiatrist = login(server, "demo-psychiatrist")
    member = login(server, "demo-member")
    member_user = me(server, member)
    profile = profile_of(server, psychiatrist, me(server, psychiatrist)["id"])
    zone = ZoneInfo(profile["timezone"])
    consultation = book_mental_health_video(server, psychiatrist, member, reason="Nightmares since the convoy")
    soon = datetime.fromisoformat(consultation["start"])
    written = call(
        server,
        member,
        "POST",
        "/telemed/consultations",
        json={
            "kind": "mental_health",
            "clinician_id": profile["id"],
            "modality": "async",
            "reason": "Cannot sleep since the patrol",
            "patient": {"name": "Cpl Ben Mwangi"},
        },
    )
    assert written.status_code == 201, written.text
    screening = call(
        server,
        member,
        "POST",
        "/telemed/screenings",
        json={"instrument": "phq9", "answers": [1, 1, 1, 1, 1, 1, 1, 1, 2]},
    )
    assert screening.status_code == 201 and "suicidal_ideation" in screening.json()["flags"], screening.text

    page = open_clinic(new_context)
    page.get_by_text(f"times in {profile['timezone']}").wait_for()

    # Today, in the clinician's zone: the time shown is the local one, not the browser's or UTC.
    today = page.get_by_role("table", name="Today")
    row = today.get_by_role("row").filter(has_text="Pte Ada Okafor")
    local = soon.astimezone(zone)
    row.filter(has_text=local.strftime("%H:%M")).wait_for()
    assert "not checked in" in row.inner_text()
    page.get_by_role("table", name="This week").get_by_role("row").filter(has_text="Pte Ada Okafor").wait_for()

    # The screening alert: banner and tone until acknowledged.
    alert = page.get_by_role("alert").filter(has_text="Screening alert")
    alert.wait_for()
    assert "suicidal ideation" in alert.inner_text()
    assert page.locator("#alerts").get_attribute("data-tone") == "on"

    # The patient checks in: the page follows live.
    moved = call(
        server, member, "POST", f"/telemed/consultations/{consultation['id']}/status", json={"status": "checked_in"}
    )
    assert moved.status_code == 200, moved.text
    row.locator("td.checkin", has_text="checked in").filter(has_not_text="not").wait_for()

    # Notes: a clinical one and a psychotherapy one; the patient sees only the clinical one.
    row.get_by_role("button", name="Open Pte Ada Okafor").click()
    detail = page.get_by_role("region", name="Consultation")
    detail.get_by_text("Nightmares since the convoy").wait_for()
    detail.get_by_label("Note", exact=True).fill("Sleep hygiene discussed; review in two weeks.")
    detail.get_by_role("button", name="Save note").click()
    detail.get_by_role("list", name="Notes").get_by_text("Sleep hygiene discussed").wait_for()
    detail.get_by_label("Kind").select_option("psychotherapy")
    detail.get_by_label("Note", exact=True).fill("Process notes: guilt about the convoy.")
    detail.get_by_role("button", name="Save note").click()
    detail.get_by_text("Psychotherapy note (only you can see it)").wait_for()
    seen_by_patient = call(server, member, "GET", f"/telemed/consultations/{consultation['id']}/notes")
    assert [n["kind"] for n in seen_by_patient.json()["items"]] == ["clinical"]
    assert seen_by_patient.headers["Cache-Control"] == "no-store"
    notes_in_browser = page.request.get(
        f"/api/v1/telemed/consultations/{consultation['id']}/notes",
        headers={"Authorization": f"Bearer {psychiatrist}"},
    )
    assert notes_in_browser.headers["cache-control"] == "no-store"
    # The field app's service worker (the only one) never caches the API, notes included.
    # It answers only the shell's own paths, and /clinic registers no worker at all.
    worker = page.request.get("/field-sw.js").text()
    shell = json.loads(worker.split("const SHELL = ", 1)[1].split(";", 1)[0])
    assert shell and not any(url.startswith("/api") or url == "/clinic" for url in shell)
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then((r) => r.length)") == 0

    # Join: inside the window the room is open.
    row.get_by_role("button", name="Join Pte Ada Okafor").click()
    detail.get_by_text("Room open until").wait_for()

    assert page.get_by_role("table", name="Today").get_by_text("Cpl Ben Mwangi").count() == 0  # written: inbox
    screenshot(page, "clinic")

    # Acknowledge the alert: banner gone, tone off.
    alert.get_by_role("button", name="Acknowledge").click()
    alert.wait_for(state="detached")
    assert page.locator("#alerts").get_attribute("data-tone") == "off"
    state = call(server, psychiatrist, "GET", f"/telemed/screenings/{screening.json()['id']}").json()
    assert state["alert"]["acknowledged_at"] is not None

    # The store-and-forward inbox: open, reply, shown as replied.
    inbox = page.get_by_role("list", name="Inbox")
    inbox.get_by_text("Cannot sleep since the patrol").wait_for()
    inbox.get_by_role("button", name="Open Cpl Ben Mwangi").click()
    detail.get_by_text("Cannot sleep since the patrol").first.wait_for()
    detail.get_by_label("Reply").fill("Try the routine we use; book a call if it persists.")
    detail.get_by_role("button", name="Send reply").click()
    detail.get_by_role("list", name="Replies").get_by_text("Try the routine").wait_for()
    inbox.get_by_text("(replied)").wait_for()
    replies = call(server, member, "GET", f"/telemed/consultations/{written.json()['id']}/replies").json()
    assert [r["text"] for r in replies["items"]] == ["Try the routine we use; book a call if it persists."]
    assert member_user["role"] == "member"


def test_a_member_is_sent_from_the_clinic_to_their_own_page(server, new_context):
    context, _guard = new_context()
    page = context.new_page()
    sign_in(page, "demo-member")
    page.wait_for_url("**/me")
    page.goto("/clinic")
    page.get_by_role("alert").filter(has_text="the clinic is for clinicians").wait_for()
