"""Converts the model's Markdown into Slack mrkdwn, escaping what Slack would read as markup,
and defuses Slack's tokens in Markdown that Slack is sent as it is (the streamed answer).

Text from people and from the model must never reach Slack as a live `<!here>`, `<@U…>`,
`<#C…>` or `<url|label>`: the only tokens in what the agent posts are the ones its code writes.
"""

from __future__ import annotations

import re

from common.slack_text import escape

_FENCE = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
# A `<`, `>` or `|` in a link's target would end the link early and let the rest be read as
# markup (`<!channel>`): such a link is shown as plain text instead.
_UNSAFE_TARGET = re.compile(r"[<>|]")
# The conversion's own markers: the input's are replaced first, so none of them can collide
# with a placeholder (a model writing `\x007\x00` once made the conversion raise).
_MARKERS = re.compile("[\x00\x01]")
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.MULTILINE)


_escape = escape


def defuse_tokens(markdown: str) -> str:
    """Markdown for Slack's streaming methods (`markdown_text`) with no Slack token live in it.

    Slack reads its `<…>` tokens in Markdown too, and shows `&lt;` as `<` without reading it
    as one. Only `<` is replaced: no token starts without it, a leading `>` stays a block
    quote, and `&` stays as written (Slack does not decode it in a link target, where `&amp;`
    would break the query string). Character by character, so chunks defused one at a time
    add up to the whole text defused: no token can form across an append."""
    return markdown.replace("<", "&lt;")


def _convert_prose(text: str) -> str:
    links: list[str] = []

    def keep_link(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        if _UNSAFE_TARGET.search(target):
            return f"{label} ({target})"  # plain text, escaped below with the rest
        links.append(f"<{target}|{_escape(label).replace('|', '¦')}>")
        return f"\x00{len(links) - 1}\x00"

    text = _LINK.sub(keep_link, text)
    text = _escape(text)
    text = _HEADING.sub(lambda m: f"\x01{m.group(1)}\x01", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _BOLD.sub(lambda m: f"\x01{m.group(2)}\x01", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    text = text.replace("\x01", "*")
    return _PLACEHOLDER.sub(lambda m: links[int(m.group(1))], text)


def to_mrkdwn(markdown: str) -> str:
    """Slack mrkdwn for `markdown`: bold, italics, strikes, links, headings, lists, code kept.

    Never raises: it runs outside any durable step, where an error would retry the whole run."""
    markdown = _MARKERS.sub("\ufffd", markdown)
    out: list[str] = []
    pos = 0
    for match in _FENCE.finditer(markdown):
        out.append(_convert_inline_code(markdown[pos : match.start()]))
        body = match.group(0)
        # Slack shows ```lang as part of the block: drop the language tag.
        body = re.sub(r"^```[\w+-]*\n", "```\n", body)
        out.append(_escape(body))
        pos = match.end()
    out.append(_convert_inline_code(markdown[pos:]))
    return "".join(out)


def _convert_inline_code(text: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _INLINE_CODE.finditer(text):
        out.append(_convert_prose(text[pos : match.start()]))
        out.append(_escape(match.group(0)))
        pos = match.end()
    out.append(_convert_prose(text[pos:]))
    return "".join(out)
