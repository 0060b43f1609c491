"""Turns Slack message events into typed values at the edge, deciding what reaches the agent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from common.contract import IncomingMessage, thread_key

# Subtypes that are still a person writing in the thread; every other subtype (edits,
# deletions, joins, bot posts, ...) is not a turn of the conversation.
USER_SUBTYPES = frozenset({"thread_broadcast", "file_share"})
# Slack allows 40 000 characters; a turn beyond this is cut, so state stays bounded.
MAX_TEXT_CHARS = 20_000


@dataclass(frozen=True)
class Skip:
    """An event the bot acknowledges and drops, with the reason for the log."""

    reason: str


def _mention_pattern(bot_user_id: str) -> re.Pattern[str]:
    return re.compile(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>")


# `repo=NAME` in a mention picks the repository (one of `AGENT_REPOS`) for a new session.
_REPO = re.compile(r"(?:^|\s)repo=([A-Za-z0-9_.-]{1,64})(?=\s|$)")


def repo_choice(text: str) -> tuple[str | None, str]:
    """The `repo=NAME` of a message, and the message without it."""
    match = _REPO.search(text)
    if match is None:
        return None, text
    return match.group(1), (text[: match.start()] + text[match.end() :]).strip()


def _bounded(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return text[:MAX_TEXT_CHARS] + " …[message cut: too long]"


def to_incoming(
    event: dict[str, Any], team_id: str, bot_user_id: str, received_at: float
) -> IncomingMessage | Skip:
    """Map an `app_mention` or `message` event to the message forwarded to its session."""
    etype = event.get("type")
    if not isinstance(etype, str) or etype not in ("app_mention", "message"):
        return Skip(f"event type {etype!r}")
    subtype = event.get("subtype")
    if subtype is not None and not (isinstance(subtype, str) and subtype in USER_SUBTYPES):
        return Skip(f"subtype {subtype!r}")
    user = event.get("user")
    if event.get("bot_id") or event.get("bot_profile") or not isinstance(user, str) or not user:
        return Skip("not a person")
    if user == bot_user_id:
        return Skip("own message")
    channel, ts = event.get("channel"), event.get("ts")
    if not isinstance(channel, str) or not isinstance(ts, str) or not channel or not ts:
        return Skip("no channel or ts")
    text = event.get("text") if isinstance(event.get("text"), str) else ""
    assert isinstance(text, str)
    pattern = _mention_pattern(bot_user_id)
    mentions = etype == "app_mention" or bool(pattern.search(text))
    is_dm = event.get("channel_type") == "im" or channel.startswith("D")
    thread_ts = event.get("thread_ts") if isinstance(event.get("thread_ts"), str) else None
    if thread_ts is None and not (mentions or is_dm):
        return Skip("channel message outside a thread without a mention")
    # The installation's team (the envelope's), not the author's: in shared channels a reply
    # from another organisation must still reach the same session.
    try:
        thread_key(team_id, channel, thread_ts or ts)
    except ValueError:
        return Skip("malformed ids")
    repo, text = repo_choice(pattern.sub("", text).strip()) if mentions else (None, text)
    return IncomingMessage(
        team_id=team_id,
        channel_id=channel,
        thread_ts=thread_ts or ts,
        ts=ts,
        user_id=user,
        text=_bounded(pattern.sub("", text).strip()),
        repo=repo,
        mentions_bot=mentions,
        is_dm=is_dm,
        received_at=received_at,
    )
