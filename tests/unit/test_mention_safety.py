"""No text from a participant or from the model reaches Slack as a live mention, broadcast,
channel link or disguised link: every path the agent posts by (answers, progress, notices,
streamed text) neutralises Slack's `<…>` tokens, and the conversion never raises."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import example, given, settings
from hypothesis import strategies as st

from common.contract import TaskRequest
from common.slack_limiter import LimitedWebClient, make_limiter
from restate_app.mrkdwn import defuse_tokens, to_mrkdwn
from restate_app.slack_io import SlackPoster
from restate_app.task_slack import DONE_TEXT, StatusView, notice_text

INJECTIONS = [
    "<!here>",
    "<!channel>",
    "<!everyone>",
    "<!subteam^S0ADMINS>",
    "<!here|here>",
    "<@U0ADMIN>",
    "<@W0ADMIN|boss>",
    "<#C0GENERAL>",
    "<https://evil.example|https://good.example>",
    "<mailto:a@b.c|me>",
    "><",
    "|",
    "&lt;!here&gt;",
    "\x00",
    "\x000\x00",
    "\x007\x00",
    "\x01",
]
_MARKUP = ["[", "]", "(", ")", "`", "```", "**", "__", "*", "~~", "# ", "\n", "- ", " "]
_URLS = ["https://x.io/a", "http://x.io/", "https://x.io/a?b=1&c=2", "ftp://x.io"]

# Slack's special tokens: a broadcast or command, a user, a channel.
_SPECIAL = re.compile(r"<[!@#]")
# The one kind of token the code itself writes: a link whose target holds no `<`, `>`, `|`.
_SAFE_LINK = re.compile(r"<https?://[^<>|\s]+\|[^<>|]*>")


def _pieces() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(INJECTIONS), st.sampled_from(_MARKUP), st.sampled_from(_URLS), st.text()
    )


@st.composite
def _links(draw: st.DrawFn) -> str:
    """A Markdown link whose label and target may carry an injection."""
    label = draw(st.lists(_pieces(), min_size=1, max_size=3).map("".join))
    target = draw(st.sampled_from(_URLS)) + draw(st.lists(_pieces(), max_size=3).map("".join))
    return f"[{label}]({target})"


def markdownish() -> st.SearchStrategy[str]:
    """Arbitrary text, and Markdown (links, code, emphasis) laced with Slack tokens."""
    return st.one_of(
        st.text(),
        st.lists(st.one_of(_pieces(), _links()), max_size=12).map("".join),
    )


def assert_no_live_token(out: str) -> None:
    assert not _SPECIAL.search(out), out
    for match in re.finditer("<", out):
        assert _SAFE_LINK.match(out, match.start()), out


def assert_no_special_token(out: str) -> None:
    """For text cut to a size: a cut link may be left open, but no special token."""
    assert not _SPECIAL.search(out), out
    for match in re.finditer("<", out):
        assert out.startswith("<http", match.start()), out


# ------------------------------------------------------------------ posted as mrkdwn


@pytest.mark.parametrize(
    "markdown",
    [
        "[docs](https://x.io/a><!here>)",
        "[docs](https://x.io/a|<!channel>)",
        "[<!everyone>](https://x.io/a)",
        "[docs](https://x.io/<@U0ADMIN>)",
        "[docs](https://x.io/a)<!subteam^S1>",
        "<#C0GENERAL> and `<!here>` and ```\n<@U0ADMIN>\n```",
        "\x000\x00[docs](https://x.io/a)",
    ],
)
def test_a_markdown_link_cannot_make_slack_ping_anyone(markdown: str) -> None:
    assert_no_live_token(to_mrkdwn(markdown))


def test_a_link_with_an_unsafe_target_is_shown_as_plain_text() -> None:
    out = to_mrkdwn("see [docs](https://x.io/a><!here>) now")
    assert out == "see docs (https://x.io/a&gt;&lt;!here&gt;) now"


@settings(max_examples=400, deadline=None)
@given(markdownish())
@example("\x007\x00")
@example("[a](https://x.io)\x000\x00\x001\x00")
def test_converted_markdown_never_holds_a_live_slack_token(markdown: str) -> None:
    assert_no_live_token(to_mrkdwn(markdown))


@settings(max_examples=400, deadline=None)
@given(st.text())
@example("\x007\x00")
@example("\x00")
@example("\x000\x00")
@example("\x00999999999999999999999\x00")
def test_converting_any_text_never_raises(text: str) -> None:
    to_mrkdwn(text)


def test_the_models_own_placeholders_are_kept_as_text_not_links() -> None:
    out = to_mrkdwn("before \x000\x00 after [docs](https://x.io/a)")
    assert out.count("<https://x.io/a|docs>") == 1
    assert "\x00" not in out


@settings(max_examples=200, deadline=None)
@given(markdownish(), st.lists(markdownish(), max_size=3))
def test_cancellation_notices_hold_no_special_token(partial: str, killed: list[str]) -> None:
    assert_no_special_token(notice_text("Cancelled", partial, killed))


@settings(max_examples=200, deadline=None)
@given(markdownish())
def test_progress_shown_in_the_status_message_holds_no_special_token(text: str) -> None:
    view = StatusView(cast("SlackPoster", None), _request())
    view.state.show_text(text)  # what `render` shows is what chat.update sends
    assert_no_special_token(view.render())


# ------------------------------------------------------------------ streamed as Markdown


@settings(max_examples=400, deadline=None)
@given(markdownish())
def test_markdown_for_slacks_streaming_methods_holds_no_slack_token(markdown: str) -> None:
    out = defuse_tokens(markdown)
    assert "<" not in out
    assert_no_live_token(out)


@given(st.lists(markdownish(), max_size=6))
def test_streamed_chunks_defused_one_by_one_add_up_to_the_whole_defused(
    chunks: list[str],
) -> None:
    """Chunks are appended as the model writes them: defusing each is defusing the whole,
    so no token can form across a chunk boundary."""
    assert "".join(defuse_tokens(c) for c in chunks) == defuse_tokens("".join(chunks))


class FakeSlackApi:
    """Slack's Web API, just enough of it: records each call's JSON body, answers ok."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        self.calls.append((request.match_info["method"], body))
        ts = f"1700000000.{len(self.calls):06d}"
        return web.json_response({"ok": True, "channel": body.get("channel"), "ts": ts})

    def sent(self, field: str) -> str:
        return "".join(str(body[field]) for _, body in self.calls if field in body)


@pytest.fixture
async def slack_api() -> AsyncIterator[tuple[FakeSlackApi, SlackPoster]]:
    fake = FakeSlackApi()
    app = web.Application()
    app.router.add_post("/api/{method}", fake.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    session = aiohttp.ClientSession()
    client = LimitedWebClient(
        token="xoxb-test",
        base_url=str(server.make_url("/api/")),
        session=session,
        limiter=make_limiter(1.0, for_bot=False),
    )
    try:
        yield fake, SlackPoster(client)
    finally:
        await session.close()
        await server.close()


def _request() -> TaskRequest:
    return TaskRequest(
        thread_key="T0:C0GENERAL:1.000001",
        channel_id="C0GENERAL",
        thread_ts="1.000001",
        trigger_ts="1.000001",
        trigger_user="U0ALICE",
        turns=[],
    )


async def test_a_streamed_answer_reaches_slack_without_a_live_token(
    slack_api: tuple[FakeSlackApi, SlackPoster],
) -> None:
    """`SLACK_STREAMING`: the model's text goes to chat.startStream/appendStream/stopStream
    as it is written; a ping in it reaches Slack defused, the rest of it as written."""
    fake, poster = slack_api
    view = StatusView(poster, _request(), streaming=True)
    status_ts = await view.post_status()
    first = "Done. Ping <!here> and <@U0ADMIN>"
    await view.show_text(first)
    whole = first + " via [docs](https://x.io/a><!channel>) and <#C0GENERAL>. **Bold** & `a<b`"
    await view.show_text(whole)
    await view.finish(status_ts, DONE_TEXT, "completed")

    methods = [method for method, _ in fake.calls]
    assert methods[:2] == ["chat.postMessage", "chat.startStream"]
    assert "chat.stopStream" in methods
    streamed = fake.sent("markdown_text")
    assert "<" not in streamed
    assert streamed == whole.replace("<", "&lt;")
    assert not _SPECIAL.search(fake.sent("text"))
