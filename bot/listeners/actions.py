"""Slack's controls: our Stop button, Slack's agent-session stop button, and the Create PR
button on an answer that changed files."""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.background import Background
from bot.events import Actor, interaction_actor, message_actor
from bot.forwarder import RestateForwarder
from bot.listeners.steering import home_team, request_ship, request_stop
from bot.rules import Rules
from common.contract import SHIP_ACTION_ID, STOP_ACTION_ID, parse_thread_key

log = structlog.get_logger(__name__)


def register(
    app: AsyncApp, forwarder: RestateForwarder, rules: Rules, background: Background
) -> None:
    async def handle_stop_button(
        ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """Stop the task of the thread the button belongs to."""
        await ack()
        if (pressed := _thread_button(body, context)) is not None:
            where, actor, action_ts = pressed
            idem = f"stop-button:{where[1]}:{action_ts}:{actor.user_id}"
            stop = request_stop(forwarder, client, rules, where, actor, idem)
            background.spawn(stop, "stop button")

    async def handle_ship_button(
        ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """Ship the work of the thread the button belongs to."""
        await ack()
        if (pressed := _thread_button(body, context)) is not None:
            where, actor, action_ts = pressed
            request_ts = f"button:{action_ts}:{actor.user_id}"
            ship = request_ship(forwarder, client, rules, where, actor, request_ts)
            background.spawn(ship, "ship button")

    async def handle_agent_session_stopped(
        event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """Slack's native stop button, where the app is configured as an agent."""
        channel, thread_ts = event.get("channel"), event.get("thread_ts")
        team = home_team(context, body)
        if not (isinstance(channel, str) and isinstance(thread_ts, str) and channel and thread_ts):
            log.warning("event_skipped", type="agent_session_stopped", reason="no thread")
            return
        actor = message_actor(event, body, team)
        idem = f"agent-stop:{channel}:{event.get('event_ts', '')}"
        stop = request_stop(forwarder, app.client, rules, (team, channel, thread_ts), actor, idem)
        background.spawn(stop, "agent session stop")

    app.action(STOP_ACTION_ID)(handle_stop_button)
    app.action(SHIP_ACTION_ID)(handle_ship_button)
    app.event("agent_session_stopped")(handle_agent_session_stopped)


def _thread_button(
    body: dict[str, Any], context: AsyncBoltContext
) -> tuple[tuple[str, str, str], Actor, str] | None:
    """A button whose value is a thread key: the thread, who pressed it and when; None for a
    value that is not a thread key."""
    action = (body.get("actions") or [{}])[0]
    try:
        where = parse_thread_key(str(action.get("value", "")))
    except ValueError:
        return None
    actor = interaction_actor(body, home_team(context, body))
    return where, actor, str(action.get("action_ts", ""))
