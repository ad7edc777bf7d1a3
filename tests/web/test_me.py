"""The member's page (/me) in a real browser: PHQ-9 with a positive item 9 shows the result kindly with the
deployment's crisis line, a GAD-7 without it, a confidential self-referral with an offered slot booked,
and the member's own access log naming a clinician who read the screening."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import login, start_servers
from tests.web.conftest import SERVER_ENV, require_browser, screenshot, sign_in
from tests.web.test_clinic import call, me, open_all_day, profile_of

pytestmark = pytest.mark.e2e

CRISIS_LINE = "+236 72 00 11 22 (staff counsellor, 24 h)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    [server] = start_servers(tmp_path_factory.mktemp("me"), 1, CRISIS_LINE=CRISIS_LINE, **SERVER_ENV)
    yield server
    server.stop()


def answer(page, answers):
    for index, value in enumerate(answers):
        page.locator(f'input[name="item-{index}"][value="{value}"]').check()


def test_member_screening_crisis_line_self_referral_and_access_log(server, new_context):
    psychiatrist = login(server, "demo-psychiatrist")
    open_all_day(server, psychiatrist, profile_of(server, psychiatrist, me(server, psychiatrist)["id"])["id"])

    context, _guard = new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    sign_in(page, "demo-member")
    page.wait_for_url("**/me")
    choice = page.get_by_role("group", name="Questionnaire")
    for label in ("PHQ-9", "GAD-7", "PCL-5", "AUDIT-C"):
        choice.get_by_role("button", name=label).wait_for()

    # An unanswered question is named, nothing is sent.
    choice.get_by_role("button", name="PHQ-9").click()
    page.get_by_text("Thoughts that you would be better off dead").wait_for()
    answer(page, [1, 1, 1, 1, 1, 1, 1, 1])
    page.get_by_role("button", name="See my result").click()
    page.get_by_role("alert").filter(has_text="Please answer question 9").wait_for()

    answer(page, [1, 1, 1, 1, 1, 1, 1, 1, 1])
    page.get_by_role("button", name="See my result").click()
    result = page.get_by_role("region", name="Your result")
    result.get_by_text("Your score is 9 out of 27, in the mild range.").wait_for()
    crisis = result.get_by_role("alert")
    assert CRISIS_LINE in crisis.inner_text()
    assert "You do not have to face this alone" in crisis.inner_text()
    result.get_by_text("assess your safety today").wait_for()
    screenshot(page, "me-screening")

    # A GAD-7 without item 9: no crisis line.
    choice.get_by_role("button", name="GAD-7").click()
    answer(page, [0, 1, 0, 1, 0, 0, 0])
    page.get_by_role("button", name="See my result").click()
    result.get_by_text("Your score is 2 out of 21").wait_for()
    assert result.get_by_role("alert").count() == 0
    result.get_by_text("No action is needed now").wait_for()

    # A confidential self-referral, then one of the offered times booked.
    page.get_by_label("Reason").fill("I keep reliving the ambush")
    page.get_by_label("Preferred language").select_option("fr")
    page.get_by_role("button", name="Send self-referral").click()
    page.get_by_text("Your request was sent in confidence").wait_for()
    offered = page.get_by_role("list", name="Offered times").last
    offered.get_by_role("button", name="Book").first.click()
    page.get_by_role("status").filter(has_text="Booked:").wait_for()
    page.get_by_role("list", name="My consultations").get_by_text("mental health, video, booked").wait_for()
    referrals = call(server, login(server, "demo-member"), "GET", "/telemed/self-referrals").json()["items"]
    assert [r["status"] for r in referrals if r["reason"] == "I keep reliving the ambush"] == ["booked"]

    # The clinician reads the first screening; the member's access log says so.
    screenings = call(server, psychiatrist, "GET", "/telemed/screenings?instrument=phq9").json()["items"]
    assert call(server, psychiatrist, "GET", f"/telemed/screenings/{screenings[0]['id']}").status_code == 200
    page.reload()
    log = page.get_by_role("table", name="Access log")
    log.get_by_role("row").filter(has_text="(clinician)").filter(has_text="read a screening").first.wait_for()
    log.get_by_role("row").filter(has_text="you").filter(has_text="saved a screening").first.wait_for()
