"""Message and mention events: filter them and forward each user message to its session."""

from __future__ import annotations

import time
from typing import Any

import structlog
from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.events import Skip, to_incoming
from bot.forwarder import RestateForwarder

log = structlog.get_logger(__name__)


def register(app: AsyncApp, forwarder: RestateForwarder) -> None:
    async def handle_message_event(event: dict[str, Any], context: AsyncBoltContext) -> None:
        """Forward a person's message; the ack waits only for Restate to have stored it."""
        received_at = time.time()
        msg = to_incoming(
            event,
            team_id=context.team_id or "",
            bot_user_id=context.bot_user_id or "",
            received_at=received_at,
        )
        if isinstance(msg, Skip):
            log.debug("event_skipped", type=event.get("type"), reason=msg.reason)
            return
        await forwarder.forward(msg)

    app.event("app_mention")(handle_message_event)
    app.event("message")(handle_message_event)
