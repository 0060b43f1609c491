"""Converts the model's Markdown into Slack mrkdwn, escaping what Slack would read as markup."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
# No `<`, `>` or `|` in a URL: Slack would read what follows as markup (`<!channel>`).
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s<>|]+)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.MULTILINE)


def escape(text: str) -> str:
    """Text Slack shows as it is: no mentions, links or channel pings made of it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_escape = escape


def _convert_prose(text: str) -> str:
    links: list[str] = []

    def keep_link(match: re.Match[str]) -> str:
        links.append(f"<{match.group(2)}|{_escape(match.group(1)).replace('|', '¦')}>")
        return f"\x00{len(links) - 1}\x00"

    text = _LINK.sub(keep_link, text)
    text = _escape(text)
    text = _HEADING.sub(lambda m: f"\x01{m.group(1)}\x01", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _BOLD.sub(lambda m: f"\x01{m.group(2)}\x01", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    text = text.replace("\x01", "*")
    return re.sub("\x00(\\d+)\x00", lambda m: links[int(m.group(1))], text)


def to_mrkdwn(markdown: str) -> str:
    """Slack mrkdwn for `markdown`: bold, italics, strikes, links, headings, lists, code kept."""
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
