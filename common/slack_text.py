"""Text for Slack that Slack shows as it is, for every process that posts.

What people and the model write must never reach Slack as a live token (`<!here>`, `<@U…>`,
`<#C…>`, `<url|label>`): the only tokens in what the product posts are the ones its code writes.
"""

from __future__ import annotations

import re

# A Slack token in text Slack sent us: `<@U…>`, `<#C…|name>`, `<!here>`, `<url|label>`. Slack
# sends a literal `<`, `>` or `&` escaped, so every raw `<` starts one.
_TOKEN = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`1 interruption`, `2 interruptions` (thousands separated): a count with its noun."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def escape(text: str) -> str:
    """Text Slack shows as it is: no mentions, links or channel pings made of it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _readable(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if label:
        return label
    if target[:1] in "@#":
        return target
    if target.startswith("!"):
        return "@" + target[1:].split("^")[-1]
    return target


def plain(slack_text: str) -> str:
    """Text as Slack sent it (mrkdwn) as a reader sees it, with no token left: mentions and
    links become their names, what is left of `<`, `>` and `|` is dropped. For quoting a
    message inside the product's own markup (a link's label), where a token would break it."""
    text = _TOKEN.sub(_readable, slack_text)
    return re.sub(r"[<>|]", "", text)


def snippet(slack_text: str, chars: int) -> str:
    """The start of a message, plain, cut at `chars` with an ellipsis."""
    text = " ".join(plain(slack_text).split())
    return (text[:chars].rstrip() + "…") if len(text) > chars else text
