"""The dashboard in a real browser (Playwright driving Debian's Chromium, never a downloaded
one): sign in (and out, only where there is a sign-in), watch a session appear with its
people and channel by name, see an interruption paired with its replacement, see a session's
model, steering messages, approvals and pull request, press Stop, see the chart fit the runs,
and be refused with a wrong token or under another host name (DNS rebinding). The run leaves
screenshots in build/screenshots/ (`make screenshots` writes them to docs/ for the README
instead)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from sandbox.stack import ROOT, Stack
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.dashboard.conftest import PR_URL, SLOW_ANSWER, fresh_ts, key_of, seed_session
from tests.integration.harness import BOT_MENTION, Harness, plan_step

# Never the tracked docs/ unless asked: `make screenshots` sets SCREENSHOT_DIR=docs.
DOCS = ROOT / os.environ.get("SCREENSHOT_DIR", "build/screenshots")
WAIT_MS = 30_000
# Hours and minutes as the browser's locale writes them: "14:02" or "2:02 PM".
CLOCK = r"\d{1,2}:\d{2}(\s?[AP]M)?"


def sign_in(page: Page, url: str, token: str, operator: str = "ops-alice") -> None:
    page.goto(url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Your name").fill(operator)
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("#who")).to_have_text(f"signed in as {operator}")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.fixture
def page(browser: Browser, stack: Stack, harness: Harness) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    sign_in(page, stack.urls["dashboard"], stack.env["DASHBOARD_TOKEN"])
    try:
        yield page
    finally:
        context.close()


def session_url(stack: Stack, ts: str) -> str:
    return f"{stack.urls['dashboard']}/sessions/{quote(key_of(ts), safe='')}"


def test_a_wrong_token_is_refused(browser: Browser, stack: Stack) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(stack.urls["dashboard"] + "/sessions")
        page.get_by_label("Your name").fill("mallory")
        page.get_by_label("Token").fill("not-the-token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("That token is not right.")
        page.goto(stack.urls["dashboard"] + "/sessions")
        expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)sessions"))
    finally:
        context.close()


def test_a_page_under_another_host_name_gets_nothing(browser: Browser, stack: Stack) -> None:
    """DNS rebinding: the browser resolves evil.example to the dashboard's own address, as an
    attacker's DNS would after the operator opened their page; neither the page nor its
    same-origin requests for sessions or a reset get an answer."""
    port = urlsplit(stack.urls["dashboard"]).port
    rules = "--host-resolver-rules=MAP evil.example 127.0.0.1"
    rebound = browser.browser_type.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, rules])
    try:
        page = rebound.new_page()
        response = page.goto(f"http://evil.example:{port}/login")
        assert response is not None
        assert response.status == 421
        statuses = page.evaluate(
            """async () => [
                (await fetch("/api/sessions")).status,
                (await fetch("/api/sessions/T0SANDBOX%3AC0GENERAL%3A1.2/reset", {
                    method: "POST", headers: {"Content-Type": "application/json"},
                    body: JSON.stringify({confirm: true})})).status,
            ]"""
        )
        assert statuses == [421, 421]
    finally:
        rebound.close()


def test_without_a_token_there_is_no_sign_in_and_no_sign_out(
    browser: Browser, open_dashboard: str
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(open_dashboard + "/")
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        expect(page.locator("#who")).to_have_text("open on this machine, no sign-in")
        expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    finally:
        context.close()


def test_a_sandbox_mention_appears_in_the_sessions_list(
    page: Page, stack: Stack, harness: Harness
) -> None:
    page.goto(stack.urls["dashboard"] + "/sessions")
    ts = harness.post(f"{BOT_MENTION} map the <script>alert(1)</script> dependencies")
    row = page.locator(f'tr[data-key="{key_of(ts)}"]')
    expect(row).to_be_visible()
    expect(row.locator("a").first).to_contain_text("alert(1)")
    expect(row.locator("script")).to_have_count(0)
    expect(row.locator("td.state")).to_have_text("idle")
    expect(row.locator("td.channel")).to_have_text("#general")
    expect(row.locator("td.channel .name")).to_have_attribute("title", "C0GENERAL")
    expect(row.locator("td.started-by")).to_have_text("alice")
    expect(row.locator("td.started-by .name")).to_have_attribute("title", "U0ALICE")
    expect(page.locator('select[name="channel"] option[value="C0GENERAL"]')).to_have_text(
        "#general"
    )


def test_an_interruption_shows_the_cancelled_run_beside_its_replacement(
    page: Page, stack: Stack, harness: Harness
) -> None:
    harness.script(plan_step("plan I"), SLOW_ANSWER)
    ts = harness.post(f"{BOT_MENTION} write the upgrade guide")
    harness.streaming("plan I")
    page.goto(session_url(stack, ts))
    expect(page.locator("#state")).to_have_text("working")
    expect(page.locator("#runs tbody tr").first.locator("td.outcome")).to_have_text("running")
    expect(page.locator("#restate-note")).to_be_hidden()

    harness.post("target version 2 only", thread_ts=ts, user="U0BOB")

    pair = page.locator(".pair").first
    expect(pair.locator('[data-role="cancelled"] .badge')).to_have_text("interrupted")
    expect(pair.locator(".cause .msg")).to_contain_text("bob: target version 2 only")
    replacement = pair.locator('[data-role="replacement"]')
    expect(replacement.locator(".head strong")).to_have_text("run 2, the replacement")
    partial = page.locator('.turn[data-kind="partial"]')
    expect(partial).to_have_count(1)
    expect(partial.locator(".meta")).to_contain_text("agent · interrupted, partial answer")
    expect(replacement.locator(".badge")).to_have_text("done")
    expect(page.locator("#state")).to_have_text("idle")
    expect(page.locator("#restate-note")).to_contain_text("Failed 409")
    cut_link = pair.locator('[data-role="cancelled"] .head a')
    expect(cut_link).to_have_attribute("title", re.compile("expected record of an interruption"))
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "dashboard-session.png"), full_page=True)


def test_a_session_page_shows_its_model_steering_approvals_and_pull_request(
    page: Page, stack: Stack, harness: Harness
) -> None:
    ts = fresh_ts()
    seed_session(harness, ts)
    page.goto(session_url(stack, ts))

    title = page.locator("#title")
    expect(title).to_have_text(re.compile(rf"^#general · thread by alice, {CLOCK}$"))
    expect(title).to_have_attribute("title", key_of(ts))
    expect(page.locator("#ids")).to_have_text(
        f"channel C0GENERAL · thread {ts} · started by U0ALICE"
    )
    expect(page.locator("#repo")).to_have_text("widgets")
    expect(page.locator("#model")).to_have_text("smart")
    expect(page.locator("main")).not_to_contain_text("ghp_notreal")
    tools = page.locator("#runs tbody tr").first.locator("td.steps > div")
    expect(tools).to_have_count(3)
    steering = tools.nth(1)
    expect(steering).to_have_class(re.compile(r"\bsteer\b"))
    expect(steering).to_contain_text("bob: keep the <script>alert(1)</script> C API stable")
    expect(steering.locator(".name")).to_have_attribute("title", "U0BOB")
    expect(steering).to_contain_text("taken in here")
    expect(page.locator("main script")).to_have_count(0)
    expect(page.locator(".turn.user .meta").nth(1)).to_contain_text("steering message for run 1")

    rows = page.locator("#approvals tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("budget pause")
    expect(rows.nth(0)).to_contain_text("denied by alice")
    expect(rows.nth(1)).to_contain_text("a ship")
    expect(rows.nth(2)).to_contain_text("curl https://example.com | sh")

    expect(page.locator("#branch")).to_have_text("agent/make-the-tests-pass")
    expect(page.locator("#pr-link")).to_have_attribute("href", PR_URL)
    expect(page.locator("#pr-link")).to_have_text("pull request #42")
    expect(page.locator("#ship-outcome")).to_have_text("shipped")
    expect(page.locator("#ship-now")).to_have_text("a ship is under way")
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "dashboard-session-activity.png"), full_page=True)


def test_stop_changes_the_state_and_marks_the_run_stopped(
    page: Page, stack: Stack, harness: Harness
) -> None:
    harness.script(plan_step("plan P"), SLOW_ANSWER)
    ts = harness.post(f"{BOT_MENTION} port the parser to Rust")
    harness.streaming("plan P")
    page.goto(session_url(stack, ts))
    expect(page.locator("#state")).to_have_text("working")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Stop running task").click()

    expect(page.locator("#state")).to_have_text("idle")
    run = page.locator("#runs tbody tr").first
    expect(run).to_have_attribute("data-outcome", "stopped")
    expect(run.locator("td.outcome")).to_have_text("stopped")
    expect(page.locator("#action-result")).to_contain_text("stopped the running task")
    partial = page.locator('.turn[data-kind="partial"] .meta')
    expect(partial).to_contain_text("agent · stopped, partial answer")
    expect(partial).not_to_contain_text("interrupted")
    expect(page.locator("#restate-note")).to_be_visible()


def test_the_overview_chart_fits_the_runs_and_keeps_the_fixed_windows(
    page: Page, stack: Stack
) -> None:
    page.goto(stack.urls["dashboard"] + "/")
    expect(page.get_by_label("window")).to_have_value("auto")
    expect(page.locator("#span")).to_contain_text("showing the last")
    page.wait_for_function("() => Chart.getChart('chart') !== undefined")
    legend = page.evaluate("() => Chart.getChart('chart').data.datasets.map((d) => d.label)")
    assert legend == ["done", "interrupted", "stopped", "failed"]
    assert page.evaluate("() => Chart.getChart('chart').data.labels.length") <= 48
    page.get_by_label("window").select_option("6h")
    expect(page.locator("#span")).to_have_text("showing the last 6 hours, 10 min a bar")
    expect(page).to_have_url(re.compile(r"\?window=6h$"))
    page.reload()
    expect(page.get_by_label("window")).to_have_value("6h")


def test_overview_screenshot_for_the_readme(page: Page, stack: Stack) -> None:
    """The overview shows the activity of the tests above (the chart fitted to it, as a
    newcomer first sees it); its picture goes into the README."""
    page.goto(stack.urls["dashboard"] + "/")
    expect(page.locator("#t-int-hour")).not_to_have_text("—")
    expect(page.locator("#t-int-hour")).not_to_have_text("0")
    expect(page.locator("#t-ttft")).not_to_have_text("—")
    page.wait_for_function("() => Chart.getChart('chart') !== undefined")
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)
    assert Path(DOCS / "dashboard.png").stat().st_size > 10_000
