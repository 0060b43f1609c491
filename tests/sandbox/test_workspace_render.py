"""The sandbox page renders messages as Slack does, in Debian's Chromium: emoji, mrkdwn and
Block Kit text (never as HTML), ephemerals in time order, a shortcut's answer where the user
clicked, whole placeholders, no edit marks on an app's updates, and each channel's purpose.

The test plays the app through the real slack_sdk client against the workspace's Web API. One
test leaves a screenshot in build/screenshots/ (`SCREENSHOT_DIR=docs` puts it in docs/).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack_emoji import emoji_names
from sandbox.slack_workspace import WorkspaceConfig
from tests.sandbox.conftest import FakeBot, open_page, poll_until

Client = TestClient[Any, Any]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / os.environ.get("SCREENSHOT_DIR", "build/screenshots")

MRKDWN = "\n".join(
    [
        "*`/agent-status`* shows _what runs_ and ~what stopped~",
        "Ask <@U0ALICE> in <#C0GENERAL>, see <https://example.com/runs?a=1&amp;b=2|the runs>",
        "a &lt; b &amp;&amp; c &gt; d, not <javascript:alert(1)|a link>",
        "&gt; quoted *bold* line",
        "```",
        "<b>not bold</b> &lt;kept&gt;",
        "```",
    ]
)


@pytest.fixture
async def workspace_open(workspace: Client) -> Client:
    """The workspace with Slack's rate limits off: these tests post faster than Slack allows."""
    await workspace.post("/_sandbox/limits", json={"enabled": False})
    return workspace


@pytest.fixture
async def page(workspace_open: Client) -> AsyncIterator[Page]:
    async with open_page(workspace_open) as page:
        yield page


@pytest.fixture
def slack(workspace_open: Client, workspace_config: WorkspaceConfig) -> AsyncWebClient:
    """The app's Web API client."""
    base_url = str(workspace_open.make_url("/api/"))
    return AsyncWebClient(token=workspace_config.bot_token, base_url=base_url)


async def post_as(workspace: Client, user: str, text: str, thread_ts: str | None = None) -> str:
    """A person's message, as the page posts it; returns its ts."""
    body = {"channel": "C0GENERAL", "user": user, "text": text, "thread_ts": thread_ts}
    resp = await workspace.post("/_sandbox/messages", json=body)
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["ts"])


def row(page: Page, pane: str, text: str) -> Any:
    return page.locator(f"#{pane}-list .msg").filter(has_text=text)


def test_emoji_names_are_slacks_and_missing_data_leaves_none(tmp_path: Path) -> None:
    names = emoji_names()
    assert (names["large_green_circle"], names["+1"], names["thumbsup"]) == ("🟢", "👍", "👍")
    assert names["octagonal_sign"] == "🛑"
    assert emoji_names(tmp_path / "missing.json") == {}


async def test_emoji_shortcodes_show_as_slack_shows_them_in_text_and_reactions(
    page: Page, slack: AsyncWebClient
) -> None:
    posted = await slack.chat_postMessage(
        channel="C0GENERAL", text=":large_green_circle: *working* :no_such_emoji: at 10:30:45"
    )
    await slack.reactions_add(channel="C0GENERAL", timestamp=posted["ts"], name="eyes")
    await slack.reactions_add(channel="C0GENERAL", timestamp=posted["ts"], name="+1::skin-tone-2")
    message = row(page, "channel", "working")
    await expect(message.locator(".text")).to_have_text("🟢 working :no_such_emoji: at 10:30:45")
    await expect(message.locator(".text .emoji")).to_have_attribute("title", ":large_green_circle:")
    await expect(message.locator(".reaction")).to_have_text(["👀 1", "👍🏻 1"])


async def test_mrkdwn_styles_links_mentions_quotes_and_code_render_as_slack_does(
    page: Page, slack: AsyncWebClient
) -> None:
    await slack.chat_postMessage(channel="C0GENERAL", text=MRKDWN)
    text = row(page, "channel", "shows").locator(".text")
    await expect(text.locator("b > code")).to_have_text("/agent-status")
    await expect(text.locator("i")).to_have_text("what runs")
    await expect(text.locator("s")).to_have_text("what stopped")
    await expect(text.locator(".mention")).to_have_text(["@alice", "#general"])
    runs = text.get_by_role("link", name="the runs")
    await expect(runs).to_have_attribute("href", "https://example.com/runs?a=1&b=2")
    await expect(text).to_contain_text("a < b && c > d, not a link")
    await expect(text.locator("a")).to_have_count(1)
    await expect(text.locator("blockquote")).to_have_text("quoted bold line")
    await expect(text.locator("blockquote b")).to_have_text("bold")
    await expect(text.locator("pre")).to_have_text("<b>not bold</b> <kept>")
    await expect(text.locator("pre b")).to_have_count(0)


async def test_block_kit_sections_fields_and_context_render_their_mrkdwn(
    page: Page, slack: AsyncWebClient
) -> None:
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": ":x: *Session* is _idle_"}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Turns*\n3"},
                {"type": "plain_text", "text": "*not bold* :eyes:"},
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "by <@U0BOB> · `main`"}]},
    ]
    await slack.chat_postMessage(channel="C0GENERAL", text="status fallback", blocks=blocks)
    message = row(page, "channel", "Session")
    await expect(message.locator(".text").first).to_have_text("❌ Session is idle")
    await expect(message.locator(".fields > div")).to_have_text(["Turns3", "*not bold* 👀"])
    await expect(message.locator(".fields b")).to_have_text("Turns")
    await expect(message.locator(".block-context")).to_have_text("by @bob · main")
    await expect(message).not_to_contain_text("status fallback")


async def test_message_text_is_never_read_as_html(
    page: Page, workspace_open: Client, slack: AsyncWebClient
) -> None:
    attack = '<img src=x onerror="document.title=1"><script>document.title=2</script>'
    await page.fill("#channel-input", attack)
    await page.press("#channel-input", "Enter")
    await slack.chat_postMessage(channel="C0GENERAL", text=attack.replace("<", "&lt;"))
    await slack.chat_postMessage(channel="C0GENERAL", text='<x" onmouseover="alert(1)|*label*>')
    shown = page.locator("#channel-list .text").filter(has_text="onerror")
    await expect(shown).to_have_count(2)
    await expect(shown.first).to_have_text(attack)
    await expect(page.locator("#channel-list").get_by_text("*label*")).to_be_visible()
    await expect(page.locator("#channel-list img, #channel-list script")).to_have_count(0)
    assert await page.title() == "Sandbox Slack workspace (local stand-in)"


async def test_ephemerals_show_among_messages_in_the_order_they_were_posted(
    page: Page, slack: AsyncWebClient
) -> None:
    await slack.chat_postMessage(channel="C0GENERAL", text="first message")
    await slack.chat_postEphemeral(channel="C0GENERAL", user="U0ALICE", text="just for you")
    await slack.chat_postMessage(channel="C0GENERAL", text="second message")
    rows = page.locator("#channel-list .msg")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(1)).to_contain_text("just for you")
    await expect(rows.nth(1)).to_contain_text("Only visible to you")
    await expect(rows.nth(2)).to_contain_text("second message")


async def run_status_shortcut(
    page: Page, bot: FakeBot, slack: AsyncWebClient, on: str, answer: str
) -> None:
    """Run "Agent status" on a channel message from its ⋯ menu, and answer as the app does:
    an ephemeral to the user in the message's thread."""
    message = row(page, "channel", on)
    await message.hover()
    await message.locator("button.more").click()
    await page.get_by_role("menuitem", name="Agent status").click()
    form = await poll_until(lambda: [r for r in bot.received if b"message_action" in r.body])
    payload = json.loads(parse_qs(form[-1].body.decode())["payload"][0])
    shortcut = payload["message"]
    await slack.chat_postEphemeral(
        channel=payload["channel"]["id"],
        user=payload["user"]["id"],
        thread_ts=shortcut.get("thread_ts") or shortcut["ts"],
        text=answer,
    )


async def test_a_shortcut_answered_in_a_busy_thread_opens_that_thread(
    page: Page, workspace_open: Client, slack: AsyncWebClient, bot: FakeBot
) -> None:
    root = await post_as(workspace_open, "U0ALICE", "fix the flaky test")
    await slack.chat_postMessage(channel="C0GENERAL", thread_ts=root, text="on it")
    await expect(row(page, "channel", "fix the flaky")).to_contain_text("1 reply")
    await expect(page.locator("#thread-pane")).to_be_hidden()
    await run_status_shortcut(page, bot, slack, "fix the flaky", ":large_green_circle: working")
    await expect(page.locator("#thread-pane")).to_be_visible()
    answer = row(page, "thread", "working")
    await expect(answer).to_contain_text("Only visible to you")
    await expect(answer.locator(".text")).to_have_text("🟢 working")


async def test_a_shortcut_answered_on_a_message_without_replies_shows_in_the_channel(
    page: Page, workspace_open: Client, slack: AsyncWebClient, bot: FakeBot
) -> None:
    await post_as(workspace_open, "U0ALICE", "is anything running?")
    await post_as(workspace_open, "U0BOB", "a later message")
    await run_status_shortcut(page, bot, slack, "anything running", "No agent session yet")
    rows = page.locator("#channel-list .msg")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(2)).to_contain_text("No agent session yet")
    await expect(rows.nth(2)).to_contain_text("Only visible to you")
    await expect(page.locator("#thread-pane")).to_be_hidden()


async def placeholder_fits(page: Page, selector: str) -> bool:
    """Whether a box shows its whole placeholder on one line, measured in its own font."""
    return bool(
        await page.locator(selector).evaluate(
            """(box) => {
                const style = getComputedStyle(box);
                const pen = document.createElement("canvas").getContext("2d");
                pen.font = style.font;
                const room = box.clientWidth - parseFloat(style.paddingLeft)
                    - parseFloat(style.paddingRight);
                const line = box.clientHeight - parseFloat(style.paddingTop)
                    - parseFloat(style.paddingBottom);
                return pen.measureText(box.placeholder).width <= room
                    && line >= parseFloat(style.lineHeight);
            }"""
        )
    )


@pytest.mark.parametrize("width", [1280, 1024])
async def test_the_reply_and_message_boxes_show_their_whole_placeholders(
    workspace_open: Client, width: int
) -> None:
    await post_as(workspace_open, "U0ALICE", "a thread to reply in")
    async with open_page(workspace_open, width=width) as page:
        await row(page, "channel", "a thread to reply in").click()
        await expect(page.locator("#thread-input")).to_be_visible()
        assert await placeholder_fits(page, "#thread-input")
        assert await placeholder_fits(page, "#channel-input")
        await page.fill("#thread-input", "one\ntwo\nthree")
        await page.locator("#thread-input").dispatch_event("input")
        box = await page.locator("#thread-input").bounding_box()
        assert box is not None
        assert box["height"] >= 3 * 20


async def test_an_apps_streamed_and_updated_messages_show_no_edit_mark(
    page: Page, workspace_open: Client, slack: AsyncWebClient
) -> None:
    root = await post_as(workspace_open, "U0ALICE", "stream me an answer")
    stream = await slack.api_call(
        "chat.startStream", json={"channel": "C0GENERAL", "thread_ts": root, "markdown_text": "a"}
    )
    for chunk in ("b", "c"):
        await slack.api_call(
            "chat.appendStream",
            json={"channel": "C0GENERAL", "ts": stream["ts"], "markdown_text": chunk},
        )
    await slack.api_call("chat.stopStream", json={"channel": "C0GENERAL", "ts": stream["ts"]})
    progress = await slack.chat_postMessage(channel="C0GENERAL", text="step 1")
    for step in (2, 3):
        await slack.chat_update(channel="C0GENERAL", ts=progress["ts"], text=f"step {step}")
    await expect(row(page, "channel", "step 3")).to_be_visible()
    await row(page, "channel", "stream me").click()
    await expect(row(page, "thread", "abc")).to_be_visible()
    await expect(page.locator(".edited")).to_have_count(0)
    await expect(page.get_by_text("(edited", exact=False)).to_have_count(0)


async def test_the_channel_header_shows_the_channels_purpose(
    page: Page, workspace_open: Client
) -> None:
    channels = (await (await workspace_open.get("/_sandbox/channels")).json())["channels"]
    by_id = {c["id"]: c for c in channels}
    purpose = by_id["C0GENERAL"]["purpose"]["value"]
    await expect(page.locator("#channel-title")).to_have_text("#general")
    await expect(page.locator("#channel-purpose")).to_have_text(purpose)
    await page.locator("nav button.chan", has_text="DM").click()
    await expect(page.locator("#channel-purpose")).to_have_text("")
    await page.locator("nav button.chan", has_text="#general").click()
    await expect(page.locator("#channel-purpose")).to_have_text(purpose)


ANSWER = "\n".join(
    [
        "*Fixed* the daylight-saving bug in `dates.py` :tada:",
        "• `add_days` now counts calendar days in the zone, with `zoneinfo` as <@U0BOB> asked",
        "• `test_add_days_across_dst` passes, and so do the other tests:",
        "```",
        "Ran 4 tests in 0.004s",
        "OK",
        "```",
        "> Reply in this thread to change anything; say _ship_ to open a pull request.",
    ]
)
STATUS = "\n".join(
    [
        ":white_check_mark: Answered below.",
        "✓ Reading `tests/test_dates.py`",
        "✓ Editing `dates.py`",
        "✓ Running `python -m unittest` (exit 0)",
        "_repo `demo` · model `demo-agent`_",
    ]
)


async def screenshot_with_emoji(page: Page, path: Path) -> None:
    """A screenshot once the emoji font's slices for every emoji shown have loaded."""
    drawn = await page.evaluate(
        """async () => {
            const emoji = [...document.querySelectorAll(".emoji")].map((e) => e.textContent);
            const font = '16px "Noto Color Emoji"';
            await document.fonts.load(font, emoji.join(""));
            await document.fonts.ready;
            return emoji.length > 10 && document.fonts.check(font, emoji.join(""));
        }"""
    )
    assert drawn
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path))


async def test_a_thread_with_the_agents_status_answer_and_reactions_for_the_screenshot(
    workspace_open: Client, slack: AsyncWebClient
) -> None:
    """The README's picture of the page: a run interrupted by a reply, its replacement's status
    and mrkdwn answer, the reactions on the triggers, and a status shortcut's answer; every
    emoji in colour from the page's own web font (its load waited for)."""
    earlier = await post_as(
        workspace_open, "U0BOB", "<@U0BOT> which formats does `parse_date` accept? :thinking_face:"
    )
    await slack.reactions_add(channel="C0GENERAL", timestamp=earlier, name="white_check_mark")
    await slack.chat_postMessage(
        channel="C0GENERAL", thread_ts=earlier, text="ISO 8601 dates, with or without a time."
    )
    await post_as(workspace_open, "U0ALICE", "standup in 5 minutes :coffee:")
    root = await post_as(
        workspace_open, "U0ALICE", "<@U0BOT> `test_dates` fails since the clocks changed :cry:"
    )
    await slack.reactions_add(channel="C0GENERAL", timestamp=root, name="leftwards_arrow_with_hook")
    reply = await post_as(workspace_open, "U0BOB", "use zoneinfo instead :pray:", thread_ts=root)
    await slack.chat_postMessage(
        channel="C0GENERAL",
        thread_ts=root,
        text=":leftwards_arrow_with_hook: Cancelled, restarting with the new message…",
    )
    await slack.reactions_add(channel="C0GENERAL", timestamp=reply, name="white_check_mark")
    await slack.chat_postMessage(channel="C0GENERAL", thread_ts=root, text=STATUS)
    answer = await slack.chat_postMessage(channel="C0GENERAL", thread_ts=root, text=ANSWER)
    await slack.reactions_add(channel="C0GENERAL", timestamp=answer["ts"], name="+1::skin-tone-3")
    await slack.chat_postEphemeral(
        channel="C0GENERAL",
        user="U0ALICE",
        thread_ts=root,
        text=":white_circle: *Session* in <#C0GENERAL>: *idle* · 2 runs, 1 interrupted",
    )
    async with open_page(workspace_open, width=1400, height=1000) as page:
        await row(page, "channel", "clocks changed").click()
        await expect(row(page, "thread", "Session")).to_be_visible()
        await expect(row(page, "thread", "Fixed").locator(".reaction")).to_have_text(["👍🏼 1"])
        await page.mouse.move(0, 0)
        await screenshot_with_emoji(page, SCREENSHOTS / "sandbox-workspace.png")
