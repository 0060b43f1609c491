"""Slack markup as people read it, for the model: names for ids, labels for links, specials
as Slack shows them, entities unescaped (examples from Slack's "Formatting text for app
surfaces": docs.slack.dev/messaging/formatting-message-text)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.events import to_incoming
from bot.markup import mentioned, readable
from common.contract import IncomingMessage
from tests.slack_fixtures import load

USERS = {"U0ALICE": "alice"}
CHANNELS = {"C0GENERAL": "#general"}


@pytest.mark.parametrize(
    ("slack", "read"),
    [
        ("ask <@U0ALICE> about it", "ask @alice about it"),
        ("ask <@U0NOBODY>", "ask @U0NOBODY"),
        ("ask <@U0BOB|bob>", "ask @bob"),
        ("see <#C0GENERAL>", "see #general"),
        ("see <#C0GENERAL|general>", "see #general"),
        ("see <#C0OTHER>", "see #C0OTHER"),
        (
            "read <https://example.com/a?b=1&amp;c=2|the docs>",
            "read the docs (https://example.com/a?b=1&c=2)",
        ),
        ("read <https://example.com>", "read https://example.com"),
        ("mail <mailto:a@example.com|a@example.com>", "mail a@example.com"),
        ("<!here> build is red", "@here build is red"),
        ("<!subteam^S0123|@backend> please", "@backend please"),
        ("due <!date^1392734382^{date_short}|Feb 18, 2014>", "due Feb 18, 2014"),
        ("if a &lt; b &amp;&amp; c &gt; d", "if a < b && c > d"),
        ("x &amp;lt; y", "x &lt; y"),
    ],
)
def test_slack_markup_reads_as_people_see_it(slack: str, read: str) -> None:
    assert readable(slack, USERS, CHANNELS) == read


def test_a_mentions_markup_reaches_the_model_as_people_read_it() -> None:
    """Slack's payload of a mention with a person, a channel, a labelled link and entities."""
    event = load("event_message_with_markup")["event"]
    msg = to_incoming(event, team_id="T0SANDBOX", bot_user_id="U0BOT", received_at=0.0)
    assert isinstance(msg, IncomingMessage)
    assert readable(msg.text, USERS, CHANNELS) == (
        "ask @alice in #general: is a < b && the docs (https://example.com/a?b=1&c=2) right?"
    )


def test_only_unlabelled_ids_need_a_name() -> None:
    assert mentioned("<@U0A> <@U0B|bee> <#C0X> <#C0Y|why> <!here>") == ({"U0A"}, {"C0X"})


@given(st.text())
def test_any_text_is_read_without_error_and_without_a_token_left(text: str) -> None:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # What a person typed comes back exactly as typed.
    assert readable(escaped) == text
