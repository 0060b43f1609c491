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
    ],
)
def test_markdown_is_converted(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn
