"""Real-browser tests: Playwright driving Debian's Chromium (no browser download) against a real server
started like `make run` (bin/serve). Any request to another origin fails the test, and so does any
Content-Security-Policy violation the page reports.

Without Chromium (or the playwright package) the tests skip with the reason; with CI=true they fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import CI
from tests.e2e.conftest import login, start_servers

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--metrics-recording-only",
    "--disable-default-apps",
    "--disable-domain-reliability",
]
# Logins per account are rate limited; the browser tests sign in often.
SERVER_ENV = {"LOGIN_LIMIT_PER_ACCOUNT": "1000 per minute", "LOGIN_LIMIT_PER_ADDRESS": "1000 per minute"}


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements-dev.txt)"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)"
    return None


def require_browser() -> None:
    missing = _browser_missing()
    if missing is None:
        return
    if CI:
        pytest.fail(f"browser tests are mandatory in CI: {missing}", pytrace=False)
    pytest.skip(f"browser tests skipped: {missing}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server per test module (as `make run` starts it: SQLite, no Redis)."""
    require_browser()
    [server] = start_servers(tmp_path_factory.mktemp("web"), 1, **SERVER_ENV)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield browser
        browser.close()


class Guard:
    """Records every request to another origin (and aborts it) and every CSP violation or page error."""

    def __init__(self, origin: str):
        self.origin = origin
        self.foreign: list[str] = []
        self.violations: list[str] = []

    def route(self, route):
        self.foreign.append(route.request.url)
        route.abort()

    def console(self, message):
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.violations.append(text)

    def page_error(self, error):
        self.violations.append(f"page error: {error}")

    def check(self):
        assert self.foreign == [], f"requests to another origin: {self.foreign}"
        assert self.violations == [], f"CSP violations or page errors: {self.violations}"


@pytest.fixture
def new_context(browser, server):
    """new_context(**options) -> (context, guard): a fresh browser profile; the guard is checked at teardown."""
    made = []

    def _new(**options):
        context = browser.new_context(
            base_url=server.url, viewport=options.pop("viewport", {"width": 1440, "height": 1000}), **options
        )
        guard = Guard(server.url)
        context.route(
            lambda url: not url.startswith(server.url) and not url.startswith("data:") and not url.startswith("blob:"),
            guard.route,
        )
        context.on("page", lambda page: (page.on("console", guard.console), page.on("pageerror", guard.page_error)))
        context.set_default_timeout(15000)
        made.append((context, guard))
        return context, guard

    yield _new
    for context, _guard in made:
        context.close()
    for _context, guard in made:
        guard.check()


def sign_in(page, username: str, password: str = "demo-password-123") -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def open_clinic(new_context, username: str = "demo-psychiatrist"):
    """A page in a fresh browser profile, signed in as the clinician, on /clinic with its live connection up."""
    context, _guard = new_context()
    page = context.new_page()
    sign_in(page, username)
    page.wait_for_url("**/clinic")
    page.get_by_role("status").filter(has_text="live").wait_for()
    return page


def screenshot_path(name: str) -> Path:
    """docs/screenshots/<name>.png when it is missing or UPDATE_SCREENSHOTS=1 (the README shows them), else a
    scratch file: the screenshot is always taken, but a test run does not rewrite committed images."""
    target = SCREENSHOTS / f"{name}.png"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1" or not target.exists():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return target
    scratch = Path(tempfile.gettempdir()) / "medevac-screenshots"
    scratch.mkdir(exist_ok=True)
    return scratch / f"{name}.png"


def screenshot(target, name: str) -> None:
    """A page or a locator (one region) into screenshot_path(name)."""
    target.screenshot(path=str(screenshot_path(name)))


__all__ = ["login", "sign_in", "screenshot", "require_browser", "SCREENSHOTS"]
