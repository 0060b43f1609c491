"""Markdown from the model becomes Slack mrkdwn."""

from __future__ import annotations

import pytest

from restate_app.mrkdwn import to_mrkdwn


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __also__", "*bold* and *also*"),
        ("an *italic* word", "an _italic_ word"),
        ("~~gone~~", "~gone~"),
        ("[docs](https://example.com/a?b=1)", "<https://example.com/a?b=1|docs>"),
        ("## Plan", "*Plan*"),
        ("- one\n* two", "• one\n• two"),
        ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
        ("`**not bold**`", "`**not bold**`"),
        ("```python\nx = a**2 < 3\n```", "```\nx = a**2 &lt; 3\n```"),
        ("<@U123> <!channel>", "&lt;@U123&gt; &lt;!channel&gt;"),
        ("> quoted <b>\n> - item\n>> nested", "> quoted &lt;b&gt;\n> • item\n> nested"),
        ("a > b\n`x` > y", "a &gt; b\n`x` &gt; y"),
        ("## **Plan** now", "*Plan now*"),
        ("1. first\n2. **second**", "1. first\n2. *second*"),
        ("````\nhas ``` inside\n````", "```\nhas `\u200b`\u200b` inside\n```"),
    ],
)
def test_markdown_is_converted(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn


def test_a_link_cannot_smuggle_a_channel_ping_into_slack() -> None:
    out = to_mrkdwn("[docs](http://a.io/x><!channel>) and <!here> and <@U123>")
    assert "<!channel>" not in out
    assert "<!here>" not in out
    assert "<@U123>" not in out


def test_tool_lines_and_file_names_shown_in_slack_are_escaped() -> None:
    from common.contract import ChangeSummary
    from restate_app.task_slack import change_line, notice_text

    line = change_line(ChangeSummary(files=["<!channel>.py"], added=1, removed=0))
    assert "<!channel>" not in line
    notice = notice_text("Cancelled", "", ["Running `echo <!here>` (killed after 1.0 s)"])
    assert "<!here>" not in notice


def test_a_block_quote_marker_is_the_only_greater_than_slack_gets_raw() -> None:
    """Slack reads a raw `>` opening a line as a quote and nothing else as markup: everywhere
    else it is escaped, and a quoted mention stays text."""
    out = to_mrkdwn("> <!here> said `a > b`\nthen x > y")
    assert out == "> &lt;!here&gt; said `a &gt; b`\nthen x &gt; y"


def test_a_code_block_still_streaming_is_shown_as_one() -> None:
    assert to_mrkdwn("Fix:\n```python\nx = 1") == "Fix:\n```\nx = 1```"
