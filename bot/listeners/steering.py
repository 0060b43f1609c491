"""Steering a session from Slack: stopping its task (a "stop" reply or a stop button) and
asking for its work as a pull request ("open a PR" or the Create PR button), with permissions.

The agent decides (it knows the participants and whether anything runs); the bot only tells
the person privately when nothing happened, and never makes Slack wait for it.
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.events import Actor, installation_team
from bot.forwarder import ForwardError, RestateForwarder
from bot.rules import Rules
from common.contract import ShipRequest, StopRequest, thread_key

log = structlog.get_logger(__name__)


def slack_error_code(exc: Exception) -> str:
    """Slack's error code for a failed call, or the exception's kind when Slack said nothing."""
    # A proxy's error page (a 502, say) reaches here as text, not Slack's JSON.
    data = getattr(exc.response, "data", None) if isinstance(exc, SlackApiError) else None
    if isinstance(data, dict):
        return str(data.get("error", "unknown_error"))
    return "unknown_error" if isinstance(exc, SlackApiError) else type(exc).__name__


def home_team(context: AsyncBoltContext, body: dict[str, Any]) -> str:
    """The team of this installation, which every thread key and allowlist is made with."""
    return installation_team(context, body)


NOTHING_RUNNING = "The agent is not working on anything in this thread right now."
NOT_ALLOWED = "Only people taking part in this thread (or an admin) can stop the agent here."
NOT_PERMITTED = "Sorry, you are not allowed to use the coding agent here."
UNAVAILABLE = "I couldn't reach the agent to stop it. Please try again in a moment."
SHIP_UNAVAILABLE = "I couldn't reach the agent to ship this. Please try again in a moment."
ANSWERS = {"nothing_running": NOTHING_RUNNING, "not_allowed": NOT_ALLOWED}


async def ephemeral(
    client: AsyncWebClient, channel: str, user: str, thread_ts: str | None, text: str
) -> None:
    try:
        await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=text)
    except Exception as exc:  # an unreadable answer must not fail the request Slack sent us
        log.warning("ephemeral_failed", error=str(exc))
        metrics.slack_api_error("chat.postEphemeral", slack_error_code(exc))


async def _admitted(
    client: AsyncWebClient, rules: Rules, where: tuple[str, str, str], actor: Actor, what: str
) -> str | None:
    """The thread's key when `actor` may use the agent in its channel; else they are told
    privately, and None."""
    team, channel, thread_ts = where
    if not rules.allows(actor, channel):
        log.info(f"{what}_refused", channel=channel, user=actor.user_id)
        await ephemeral(client, channel, actor.user_id, thread_ts, NOT_PERMITTED)
        return None
    return thread_key(team, channel, thread_ts)


async def request_stop(
    forwarder: RestateForwarder,
    client: AsyncWebClient,
    rules: Rules,
    where: tuple[str, str, str],
    actor: Actor,
    idempotency_key: str,
) -> None:
    """Stop the thread's task if `actor` may; tell them privately when nothing was stopped.

    The bot refuses people outside the allowlist; the agent, non-participants."""
    key = await _admitted(client, rules, where, actor, "stop")
    if key is None:
        return
    _team, channel, thread_ts = where
    user = actor.user_id
    request = StopRequest(user_id=user, is_admin=rules.is_admin(user))
    try:
        ack = await forwarder.stop(key, request, idempotency_key)
    except ForwardError as exc:
        log.warning("stop_not_forwarded", thread=key, error=str(exc))
        await ephemeral(client, channel, user, thread_ts, UNAVAILABLE)
        return
    log.info("stop_requested", thread=key, by=user, stopped=ack.stopped, reason=ack.reason)
    if ack.reason in ANSWERS:
        await ephemeral(client, channel, user, thread_ts, ANSWERS[ack.reason])


async def request_ship(
    forwarder: RestateForwarder,
    client: AsyncWebClient,
    rules: Rules,
    where: tuple[str, str, str],
    actor: Actor,
    request_ts: str,
) -> None:
    """Ask the thread's session for a branch and a draft pull request. The push itself waits
    for an approval in the thread, so asking is open to anyone the agent serves here."""
    key = await _admitted(client, rules, where, actor, "ship")
    if key is None:
        return
    _team, channel, thread_ts = where
    user = actor.user_id
    try:
        await forwarder.ship(
            key, ShipRequest(user_id=user, ts=request_ts), f"ship:{channel}:{request_ts}"
        )
    except ForwardError as exc:
        log.warning("ship_not_forwarded", thread=key, error=str(exc))
        await ephemeral(client, channel, user, thread_ts, SHIP_UNAVAILABLE)
        return
    log.info("ship_requested", thread=key, by=user)
