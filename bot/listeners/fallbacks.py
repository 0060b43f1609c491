"""Listeners of last resort, registered last: everything else Slack sends is acknowledged.

Without them Bolt answers 404, and Slack retries events and shows users "dispatch_failed".
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp

log = structlog.get_logger(__name__)

ANY = re.compile(".*")


def register(app: AsyncApp) -> None:
    async def handle_other_event(event: dict[str, Any]) -> None:
        log.info("event_ignored", type=event.get("type"))

    async def handle_unknown_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        log.info("command_unknown", command=command.get("command"))
        await ack(
            response_type="ephemeral",
            text=f"Sorry, I don't know the command {command.get('command', '')}. "
            "Try `/agent-status help`.",
        )

    async def handle_other_action(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        log.info("interaction_ignored", type=body.get("type"))

    app.event(ANY)(handle_other_event)
    app.command(ANY)(handle_unknown_command)
    app.action(ANY)(handle_other_action)
    app.shortcut(ANY)(handle_other_action)
