"""Slack's markup in a person's message, turned into the text a person reads: `<@U…>` as the
person's name, `<#C…|general>` as `#general`, `<https://…|label>` as `label (https://…)`,
`<!here>` as `@here`, and Slack's three escaped characters back as they were typed. The model
gets what people see, not Slack's wire format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Every raw `<` in text Slack sends starts a token: Slack escapes a typed one as `&lt;`.
_TOKEN = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


def mentioned(text: str) -> tuple[set[str], set[str]]:
    """The user and channel ids a message names without a label, to look their names up."""
    users: set[str] = set()
    channels: set[str] = set()
    for match in _TOKEN.finditer(text):
        target, label = match.group(1), match.group(2)
        if label:
            continue
        if target.startswith("@"):
            users.add(target[1:])
        elif target.startswith("#"):
            channels.add(target[1:])
    return users, channels


def readable(
    text: str, users: Mapping[str, str] | None = None, channels: Mapping[str, str] | None = None
) -> str:
    """`text` as a person reads it in Slack; ids without a known name stay as `@U…`/`#C…`."""
    people, places = users or {}, channels or {}

    def token(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2) or ""
        if target.startswith("@"):
            return "@" + (label or people.get(target[1:]) or target[1:])
        if target.startswith("#"):
            name = label or places.get(target[1:], "").removeprefix("#") or target[1:]
            return "#" + name
        if target.startswith("!"):
            return _special(target[1:], label)
        if label and label != target and not target.startswith("mailto:"):
            return f"{label} ({target})"
        return label or target.removeprefix("mailto:")

    out = _TOKEN.sub(token, text)
    for entity, char in _ENTITIES:
        out = out.replace(entity, char)
    return out


def _special(command: str, label: str) -> str:
    """`<!here>`, `<!channel>`, `<!subteam^S…|@team>`, `<!date^…|fallback>`."""
    name = command.split("^")[0]
    if name in ("here", "channel", "everyone"):
        return "@" + name
    if label:
        return label
    return "@" + name
