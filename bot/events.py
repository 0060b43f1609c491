"""Turns Slack payloads into typed values at the edge: the message forwarded to the agent, and
who acted (the author's own team, which in a Slack Connect channel is not the installation's)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.attachments import attachment_lines
from common.contract import IncomingMessage, thread_key
from common.slack_files import file_refs

# Subtypes that are still a person writing in the thread; every other subtype (edits,
# deletions, joins, bot posts, ...) is not a turn of the conversation.
USER_SUBTYPES = frozenset({"thread_broadcast", "file_share"})
# Slack allows 40 000 characters; a turn beyond this is cut, so state stays bounded.
MAX_TEXT_CHARS = 20_000


@dataclass(frozen=True)
class Actor:
    """A person acting in Slack: a message's author, or who ran a command or pressed a button.

    `teams` are the teams Slack reports the person belongs to; `home_team` is the workspace the
    app is installed in. In a Slack Connect channel the two differ for a guest from another
    organisation, although the event arrives with the installation's team on its envelope.
    """

    user_id: str
    teams: frozenset[str]
    home_team: str


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _member_of(reported: str, org: str, workspace: str) -> frozenset[str]:
    """The teams of a person Slack reports as a member of `reported`.

    In an Enterprise Grid organisation Slack may report a member's organisation (E…) instead
    of their workspace: such a member also counts for the workspace they acted in. A member
    of the workspace they acted in also counts for its organisation, which is the team an
    org-wide installation serves.
    """
    if org and reported in (org, workspace) and workspace:
        return frozenset({reported, workspace, org})
    return frozenset({reported})


def payload_team(body: dict[str, Any]) -> str:
    """The team a payload names: the envelope's `team_id`, an interaction's `team`, the
    event's `team`, then the actor's `user.team_id`."""
    team = body.get("team")
    candidates = (
        body.get("team_id"),
        _object(team).get("id") if isinstance(team, dict) else team,
        _object(body.get("event")).get("team"),
        _object(body.get("user")).get("team_id"),
    )
    return next((c for c in candidates if isinstance(c, str) and c), "")


def payload_enterprise(body: dict[str, Any]) -> str:
    """The Enterprise Grid organisation a payload names, or ""."""
    org = body.get("enterprise")
    grants = body.get("authorizations")
    first = _object(grants[0]) if isinstance(grants, list) and grants else {}
    candidates = (
        body.get("enterprise_id"),
        _object(org).get("id") if isinstance(org, dict) else org,
        first.get("enterprise_id"),
        _object(body.get("team")).get("enterprise_id"),
    )
    return next((c for c in candidates if isinstance(c, str) and c), "")


def installation_team(context: Mapping[str, Any], body: dict[str, Any]) -> str:
    """The team every thread key and allowlist of this installation is made with, the same
    whichever way the thread is reached (message, mention, command, shortcut, button, Slack's
    own stop button).

    An org-wide (Enterprise Grid) installation is its organisation: its events carry no
    installation team, channel ids are unique across the organisation, and a shortcut or a
    command names the workspace it was used from. Otherwise it is the workspace the app's
    token belongs to (Bolt's `authorize_result`), which in a Slack Connect channel is not the
    team a guest's interaction names; then Bolt's `team_id`, the payload's team, the org.
    """
    result = _object(context.get("authorize_result"))
    org = (
        _text(context.get("enterprise_id"))
        or _text(result.get("enterprise_id"))
        or payload_enterprise(body)
    )
    if org and context.get("is_enterprise_install"):
        return org
    return (
        _text(result.get("team_id")) or _text(context.get("team_id")) or payload_team(body) or org
    )


def message_actor(event: dict[str, Any], body: dict[str, Any], home_team: str) -> Actor:
    """The author of a message event: `user_team` (the author's team), else `team`."""
    workspace = _text(body.get("team_id")) or home_team
    reported = _text(event.get("user_team")) or _text(event.get("team")) or workspace
    org = _text(body.get("enterprise_id")) or _text(body.get("context_enterprise_id"))
    return Actor(_text(event.get("user")), _member_of(reported, org, workspace), home_team)


def command_actor(command: dict[str, Any], home_team: str) -> Actor:
    """Who ran a slash command: its `team_id` is the workspace they ran it from."""
    reported = _text(command.get("team_id")) or home_team
    org = _text(command.get("enterprise_id"))
    return Actor(_text(command.get("user_id")), _member_of(reported, org, reported), home_team)


def interaction_actor(body: dict[str, Any], home_team: str) -> Actor:
    """Who pressed a button or ran a shortcut: `user.team_id`, else the payload's `team`.

    Org-wide installations' payloads may carry no `team`: the person acted from their own
    workspace then."""
    user, team = _object(body.get("user")), _object(body.get("team"))
    reported = _text(user.get("team_id")) or _text(team.get("id")) or home_team
    workspace = _text(team.get("id")) or reported
    org = _text(_object(body.get("enterprise")).get("id")) or _text(team.get("enterprise_id"))
    return Actor(_text(user.get("id")), _member_of(reported, org, workspace), home_team)


@dataclass(frozen=True)
class Skip:
    """An event the bot acknowledges and drops, with the reason for the log; `unexpected` for
    a payload Slack should not send (logged at warning), not ordinary traffic such as edits."""

    reason: str
    unexpected: bool = False


# Slackbot's notices (in the bot's DM, say) are not a person talking to the agent.
SLACKBOT = "USLACKBOT"


def _mention_pattern(bot_user_id: str) -> re.Pattern[str]:
    return re.compile(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>")


# `repo=NAME` and `model=NAME` in a mention pick the repository (one of `AGENT_REPOS`) and the
# model (one of `AGENT_MODELS`) of a new session.
_REPO = re.compile(r"(?:^|\s)repo=([A-Za-z0-9_.-]{1,64})(?=\s|$)")
_MODEL = re.compile(r"(?:^|\s)model=([A-Za-z0-9_.-]{1,64})(?=\s|$)")


def _choice(pattern: re.Pattern[str], text: str) -> tuple[str | None, str]:
    match = pattern.search(text)
    if match is None:
        return None, text
    return match.group(1), (text[: match.start()] + text[match.end() :]).strip()


def repo_choice(text: str) -> tuple[str | None, str]:
    """The `repo=NAME` of a message, and the message without it."""
    return _choice(_REPO, text)


def model_choice(text: str) -> tuple[str | None, str]:
    """The `model=NAME` of a message, and the message without it."""
    return _choice(_MODEL, text)


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
    if user == SLACKBOT:
        return Skip("Slackbot")
    channel, ts = event.get("channel"), event.get("ts")
    if not isinstance(channel, str) or not isinstance(ts, str) or not channel or not ts:
        return Skip("no channel or ts", unexpected=True)
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
        return Skip("malformed ids: no team, channel or ts to key the thread", unexpected=True)
    repo = model = None
    if mentions:
        repo, text = repo_choice(pattern.sub("", text).strip())
        model, text = model_choice(text)
    written = _bounded(pattern.sub("", text).strip())
    attached = attachment_lines(event)
    if not (written or attached or mentions):
        # A file share whose file is gone, a forward of nothing: no one said anything.
        return Skip("nothing written or attached")
    return IncomingMessage(
        team_id=team_id,
        channel_id=channel,
        thread_ts=thread_ts or ts,
        ts=ts,
        user_id=user,
        text="\n\n".join(part for part in (written, attached) if part),
        repo=repo,
        model=model,
        files=file_refs(event),
        mentions_bot=mentions,
        is_dm=is_dm,
        received_at=received_at,
    )
