"""`/agent-status`, the "Agent status" message shortcut, and "status" typed in a thread."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.background import Background
from bot.events import command_actor, interaction_actor
from bot.forwarder import ForwardError, RestateForwarder
from bot.listeners.steering import NOT_PERMITTED, ephemeral, home_team, slack_error_code
from bot.rules import Rules
from bot.status_view import (
    HELP,
    MAX_PAGE,
    PAGE_SIZE,
    blocks,
    detail_text,
    list_text,
    parse_permalink,
)
from common.contract import STATUS_SHORTCUT_ID, thread_key

log = structlog.get_logger(__name__)

UNAVAILABLE = "I can't read the agent's sessions right now. Please try again in a moment."
BAD_PAGE = f"Pages go from 1 to {MAX_PAGE}: try `/agent-status page 2`."
# Slack shows "operation_timeout" after 3 s: answer with what we have before that.
ANSWER_WITHIN_SECONDS = 2.5
# ASCII digits only: `str.isdigit` also takes "²", which `int` then refuses.
_PAGE_NUMBER = re.compile(r"[0-9]{1,4}")
# What a link to a thread must look like to be shown as one (mrkdwn breaks on `|` and `>`).
_LINK = re.compile(r"https?://[^\s|<>]+")


async def permalink(client: AsyncWebClient, channel: str, ts: str) -> str | None:
    """The thread's link, or None when Slack gives none (the status then shows plain text)."""
    try:
        response = await client.chat_getPermalink(channel=channel, message_ts=ts)
    except Exception as exc:  # a link is a nicety; the status still answers without it
        log.info("permalink_failed", error=str(exc))
        metrics.slack_api_error("chat.getPermalink", slack_error_code(exc))
        return None
    link = response.get("permalink")
    if isinstance(link, str) and _LINK.fullmatch(link):
        return link
    log.info("permalink_missing", channel=channel)
    return None


async def thread_status_text(
    forwarder: RestateForwarder, client: AsyncWebClient, team: str, channel: str, thread_ts: str
) -> str:
    """The detail of one thread's session, or a friendly sentence when Restate is unreachable."""
    try:
        status, link = await asyncio.gather(
            forwarder.status(thread_key(team, channel, thread_ts)),
            permalink(client, channel, thread_ts),
        )
    except (ForwardError, ValueError) as exc:
        log.warning("status_unavailable", error=str(exc))
        return UNAVAILABLE
    return detail_text(status, link)


async def channel_list_text(
    forwarder: RestateForwarder, client: AsyncWebClient, team: str, channel: str, page: int
) -> str:
    """One page of the channel's sessions: Restate reads that page, never the ones before."""
    offset = (page - 1) * PAGE_SIZE
    try:
        found = await forwarder.channel_sessions(team, channel, limit=PAGE_SIZE, offset=offset)
    except (ForwardError, ValueError) as exc:
        log.warning("status_unavailable", error=str(exc))
        return UNAVAILABLE
    shown = found.sessions
    links = await asyncio.gather(*(permalink(client, channel, s.thread_ts) for s in shown))
    by_ts = {s.thread_ts: link for s, link in zip(shown, links, strict=True) if link}
    more = offset + PAGE_SIZE < found.total and page < MAX_PAGE
    return list_text(shown, by_ts, page, more, in_dm=channel.startswith("D"))


def _page(words: list[str]) -> int | None:
    """The page of `page N`, or None when N is not a page number we serve."""
    if len(words) != 2 or not _PAGE_NUMBER.fullmatch(words[1]):
        return None
    number = int(words[1])
    return number if 1 <= number <= MAX_PAGE else None


async def command_reply(
    text: str, forwarder: RestateForwarder, client: AsyncWebClient, team: str, channel: str
) -> str:
    """The reply to `/agent-status <text>`."""
    args = text.strip()
    words = args.lower().split()
    if words in ([], ["all"]):
        return await channel_list_text(forwarder, client, team, channel, page=1)
    if words[0] in ("help", "?", "-h", "--help"):
        return HELP
    if words[0] == "page":
        page = _page(words)
        if page is None:
            return BAD_PAGE
        return await channel_list_text(forwarder, client, team, channel, page=page)
    ref = parse_permalink(args)
    if ref is not None and ref.channel_id != channel:
        # Reading another channel's session here could show a private channel's work.
        return f"Run `/agent-status {args[:200]}` in <#{ref.channel_id}>, where that thread is."
    if ref is not None:
        return await thread_status_text(forwarder, client, team, ref.channel_id, ref.thread_ts)
    return (
        f"I don't know `{args[:80]}`. Try `/agent-status` for this channel's sessions, "
        "`/agent-status <thread link>` for one session, or `/agent-status help`."
    )


def register(
    app: AsyncApp, forwarder: RestateForwarder, rules: Rules, background: Background
) -> None:
    async def handle_agent_status(
        ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """Answer ephemerally within Slack's 3 s, never waiting on a running task."""
        team, channel = home_team(context, command), command.get("channel_id", "")
        if not rules.admits(command_actor(command, team)):
            log.info("status_refused", channel=channel, user=command.get("user_id"))
            await ack(response_type="ephemeral", text=NOT_PERMITTED)
            return
        try:
            text = await asyncio.wait_for(
                command_reply(command.get("text", ""), forwarder, client, team, channel),
                timeout=ANSWER_WITHIN_SECONDS,
            )
        except TimeoutError:
            text = UNAVAILABLE
        await ack(response_type="ephemeral", text=text, blocks=blocks(text))

    async def handle_status_shortcut(
        ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        await ack()
        answer = _answer_shortcut(body, home_team(context, body), client)
        background.spawn(answer, "status shortcut")

    async def _answer_shortcut(body: dict[str, Any], home: str, client: AsyncWebClient) -> None:
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id", "")
        actor = interaction_actor(body, home)
        thread_ts = message.get("thread_ts") or message.get("ts") or ""
        if rules.admits(actor):
            text = await thread_status_text(forwarder, client, home, channel, thread_ts)
        else:
            log.info("status_refused", channel=channel, user=actor.user_id)
            text = NOT_PERMITTED
        await ephemeral(client, channel, actor.user_id, thread_ts, text)

    app.command("/agent-status")(handle_agent_status)
    app.shortcut(STATUS_SHORTCUT_ID)(handle_status_shortcut)
