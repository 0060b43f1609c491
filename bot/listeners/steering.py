"""Stopping a session's task from Slack: a "stop" reply or the Stop button, with permissions."""

from __future__ import annotations

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bot.forwarder import ForwardError, RestateForwarder
from bot.rules import Rules
from common.contract import StopRequest, thread_key

log = structlog.get_logger(__name__)

NOTHING_RUNNING = "The agent is not working on anything in this thread right now."
NOT_ALLOWED = "Only people taking part in this thread (or an admin) can stop the agent here."
NOT_PERMITTED = "Sorry, you are not allowed to use the coding agent here."


async def ephemeral(
    client: AsyncWebClient, channel: str, user: str, thread_ts: str | None, text: str
) -> None:
    try:
        await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=text)
    except Exception as exc:  # an unreadable answer must not fail the request Slack sent us
        log.warning("ephemeral_failed", error=str(exc))


async def request_stop(
    forwarder: RestateForwarder,
    client: AsyncWebClient,
    rules: Rules,
    where: tuple[str, str, str],
    user: str,
    idempotency_key: str,
) -> bool:
    """Stop the thread's task if `user` may; tell them privately when not. True if sent."""
    team, channel, thread_ts = where
    key = thread_key(team, channel, thread_ts)
    status = await forwarder.status(key)
    if status.turns == 0:
        return False
    if status.state == "idle" and not status.queued:
        await ephemeral(client, channel, user, thread_ts, NOTHING_RUNNING)
        return False
    admin = rules.is_admin(user)
    if not admin and user not in status.participants:
        await ephemeral(client, channel, user, thread_ts, NOT_ALLOWED)
        return False
    try:
        await forwarder.stop(key, StopRequest(user_id=user, is_admin=admin), idempotency_key)
    except ForwardError:
        log.exception("stop_not_forwarded", thread=key)
        raise
    log.info("stop_requested", thread=key, by=user)
    return True
