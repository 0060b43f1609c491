"""The sandbox page as a person uses it: the answer streams, reactions show, Stop works, the
status shortcut answers where it was run, a log attached on the page reaches the model."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.integration.harness import BOT_MENTION, Harness, eventually, plan_step


def test_a_person_can_watch_the_answer_and_stop_it_from_the_page(
    browser: Browser, harness: Harness
) -> None:
    harness.script(
        plan_step("plan"),
        {"text": " ".join(f"token{i}" for i in range(400)), "chunk_delay": 0.05},
        when="summarise the incident from the page",
    )
    context = browser.new_context(viewport={"width": 1300, "height": 850})
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(harness.workspace + "/")
        expect(page.locator("#conn")).to_have_text("live")
        page.fill("#channel-input", "@agent summarise the incident from the page")
        page.press("#channel-input", "Enter")
        page.locator("#channel-list").get_by_text("summarise the incident").first.click()
        thread = page.locator("#thread-list")
        # Live progress goes as often as Slack's limits allow (every ~1.6 s for one run).
        expect(thread.get_by_text("token5", exact=False)).to_be_visible(timeout=30_000)
        thread.get_by_role("button", name="Stop").click()
        expect(thread.get_by_text("Stopped", exact=False)).to_be_visible(timeout=30_000)
        # Reactions wait behind every other Slack call: their limits are the tightest.
        expect(thread.get_by_text("🛑").first).to_be_visible(timeout=90_000)
        expect(thread.locator(".reaction").first).to_be_visible()
    finally:
        context.close()


def test_the_status_shortcut_from_the_page_opens_the_thread_with_its_answer(
    browser: Browser, harness: Harness
) -> None:
    """The real bot answers "Agent status" with an ephemeral in the session's thread; the page
    shows it where the user clicked, opening that thread, with its emoji and mrkdwn rendered."""
    harness.script(plan_step("plan"), {"text": "Renamed."})
    ts = harness.post(f"{BOT_MENTION} rename the status flag")
    harness.idle_after(ts, tasks=1)
    context = browser.new_context(viewport={"width": 1300, "height": 850})
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(harness.workspace + "/")
        expect(page.locator("#conn")).to_have_text("live")
        root = page.locator("#channel-list .msg").filter(has_text="rename the status flag")
        root.hover()
        root.locator("button.more").click()
        page.get_by_role("menuitem", name="Agent status").click()
        answer = page.locator("#thread-list .msg.eph")
        expect(answer).to_contain_text("Only visible to you")
        expect(answer.locator(".text b").first).to_have_text("Session")
        expect(answer).not_to_contain_text(":white_circle:")
        expect(answer).not_to_contain_text("*Session*")
    finally:
        context.close()


def test_a_log_attached_on_the_page_is_read_into_the_agents_model_request(
    browser: Browser, harness: Harness
) -> None:
    """The page's attach button posts the file with the mention; the real bot downloads it and
    its text reaches the model."""
    marker = "explain the log attached from the page"
    harness.script(plan_step("read the log"), {"text": "It divides by zero."}, when=marker)
    context = browser.new_context(viewport={"width": 1300, "height": 850})
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(harness.workspace + "/")
        expect(page.locator("#conn")).to_have_text("live")
        log = b"Traceback (most recent call last):\nZeroDivisionError: page-upload-5521\n"
        files = page.locator("#channel-form input[type=file]")
        files.set_input_files({"name": "crash.log", "mimeType": "text/plain", "buffer": log})
        expect(page.locator("#channel-form .chip .file-name")).to_have_text("crash.log")
        page.fill("#channel-input", f"@agent {marker}")
        page.press("#channel-input", "Enter")
        root = page.locator("#channel-list .msg").filter(has_text=marker)
        expect(root.locator(".file-name")).to_have_text("crash.log")
        request = eventually(
            lambda: next(iter(harness.requests_mentioning("page-upload-5521")), None),
            what="a model request with the attached log's text",
        )
        assert "crash.log (text/plain" in str(request["messages"])
        root.get_by_text(marker).click()  # the file card keeps its own clicks
        expect(page.locator("#thread-list").get_by_text("It divides by zero.")).to_be_visible()
    finally:
        context.close()
