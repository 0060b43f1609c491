"""Converts the model's Markdown into Slack mrkdwn, escaping what Slack would read as markup,
and defuses Slack's tokens in Markdown that Slack is sent as it is (the streamed answer).

Text from people and from the model must never reach Slack as a live `<!here>`, `<@U…>`,
`<#C…>` or `<url|label>`: the only tokens in what the agent posts are the ones its code writes.
"""

from __future__ import annotations

import re

from common.slack_text import escape

# A fence of three or more backticks, to the same fence or (still streaming) the end.
_FENCE = re.compile(r"(`{3,})(.*?)(?:\1|$)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
# A `<`, `>` or `|` in a link's target would end the link early and let the rest be read as
# markup (`<!channel>`): such a link is shown as plain text instead.
_UNSAFE_TARGET = re.compile(r"[<>|]")
# The conversion's own markers: the input's are replaced first, so none of them can collide
# with a placeholder (a model writing `\x007\x00` once made the conversion raise).
_MARKERS = re.compile("[\x00-\x02]")
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^(\x02?)#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_BULLET = re.compile(r"^(\x02?\s*)[-*+]\s+", re.MULTILINE)
# A block quote's markers at the start of a line (nested ones too: Slack has one level).
_QUOTE = re.compile(r"^ {0,3}(?:>[ \t]?)+", re.MULTILINE)
_QUOTE_MARK = "\x02"


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
    text = _HEADING.sub(lambda m: f"{m.group(1)}\x01{_unbold(m.group(2))}\x01", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _BOLD.sub(lambda m: f"\x01{m.group(2)}\x01", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    text = text.replace("\x01", "*")
    return _PLACEHOLDER.sub(lambda m: links[int(m.group(1))], text)


def _unbold(heading: str) -> str:
    """A heading's text without its own bold markers: the heading is bold as a whole, and
    Slack shows a doubled `**` as it is."""
    return _BOLD.sub(lambda m: m.group(2), heading)


def to_mrkdwn(markdown: str) -> str:
    """Slack mrkdwn for `markdown`: bold, italics, strikes, links, headings, lists, block
    quotes, code kept.

    Never raises: it runs outside any durable step, where an error would retry the whole run."""
    markdown = _MARKERS.sub("\ufffd", markdown)
    out: list[str] = []
    pos = 0
    for match in _FENCE.finditer(markdown):
        out.append(_convert_lines(markdown[pos : match.start()], _at_line_start(markdown, pos)))
        out.append(_code_block(match.group(2)))
        pos = match.end()
    out.append(_convert_lines(markdown[pos:], _at_line_start(markdown, pos)))
    return "".join(out).replace(_QUOTE_MARK, "> ")


def _at_line_start(text: str, pos: int) -> bool:
    return pos == 0 or text[pos - 1] == "\n"


def _code_block(body: str) -> str:
    """A fenced block as Slack shows one: three backticks whatever the fence was (Slack knows
    no other), no language tag (Slack would show it as code), escaped like all text; a run of
    backticks inside is broken up so it cannot end the block early."""
    body = re.sub(r"^[\w+-]*\n", "\n", body, count=1)
    body = re.sub(r"`{3,}", lambda m: "\u200b".join(m.group(0)), body)
    return f"```{_escape(body)}```"


def _convert_lines(text: str, line_start: bool) -> str:
    """Text outside code blocks; its block quote markers (the first only at a line's start)
    are kept through the escaping: Slack reads a raw `>` opening a line as a quote."""

    def mark(match: re.Match[str]) -> str:
        return match.group(0) if match.start() == 0 and not line_start else _QUOTE_MARK

    return _convert_inline_code(_QUOTE.sub(mark, text))


def _convert_inline_code(text: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _INLINE_CODE.finditer(text):
        out.append(_convert_prose(text[pos : match.start()]))
        out.append(_escape(match.group(0)))
        pos = match.end()
    out.append(_convert_prose(text[pos:]))
    return "".join(out)
