"""Message and mention events: filter them and forward each user message to its session.

Two replies are commands rather than turns: "status" (answered privately, nothing interrupted)
and "stop" / "cancel" (stops the running task without restarting).
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.background import Background
from bot.events import Skip, to_incoming
from bot.forwarder import RestateForwarder
from bot.listeners.status import thread_status_text
from bot.listeners.steering import NOT_PERMITTED, ephemeral, request_stop, slack_error_code
from bot.rules import Rules
from common.contract import IncomingMessage, message_idempotency_key, thread_key
from common.slack_limiter import Lane, lane

log = structlog.get_logger(__name__)

STOP_WORDS = frozenset({"stop", "cancel"})
STATUS_WORDS = frozenset({"status"})


def _command_word(msg: IncomingMessage) -> str | None:
    """The command word ("status", "stop" or "cancel") typed alone as a reply in a thread."""
    if msg.thread_ts == msg.ts:
        return None
    word = msg.text.strip().strip(".!").lower()
    return word if word in STOP_WORDS | STATUS_WORDS else None


class MessageHandler:
    """Turns one message event into a forwarded turn, a status answer, a stop, or nothing."""

    def __init__(
        self,
        forwarder: RestateForwarder,
        rules: Rules,
        received_reaction: str,
        background: Background,
    ) -> None:
        self.forwarder, self.rules, self.received_reaction = forwarder, rules, received_reaction
        self.background = background

    async def __call__(
        self, event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        msg = to_incoming(
            event,
            team_id=context.team_id or "",
            bot_user_id=context.bot_user_id or "",
            received_at=time.time(),
        )
        if isinstance(msg, Skip):
            log.debug("event_skipped", type=event.get("type"), reason=msg.reason)
            return
        word = _command_word(msg)
        # Answers to "status" and "stop" happen after the ack: a retry would repeat them.
        if word in STATUS_WORDS:
            self.background.spawn(self._answer_status(msg, client), "status reply")
        elif word in STOP_WORDS:
            where = (msg.team_id, msg.channel_id, msg.thread_ts)
            idem = "stop:" + message_idempotency_key(msg.channel_id, msg.ts)
            stop = request_stop(self.forwarder, client, self.rules, where, msg.user_id, idem)
            self.background.spawn(stop, "stop reply")
        elif not self.rules.allows(msg.team_id, msg.channel_id, msg.user_id):
            await self._refuse(msg, client)
        else:
            await self._forward(msg, client)

    async def _forward(self, msg: IncomingMessage, client: AsyncWebClient) -> None:
        policy = self.rules.policy(msg.channel_id)
        msg = msg.model_copy(
            update={"policy": policy.policy, "debounce_seconds": policy.debounce_seconds}
        )
        await self.forwarder.forward(msg)
        if (msg.mentions_bot or msg.is_dm) and self.received_reaction:
            self.background.spawn(self._react(client, msg), "received reaction")

    async def _answer_status(self, msg: IncomingMessage, client: AsyncWebClient) -> None:
        text = await thread_status_text(
            self.forwarder, client, msg.team_id, msg.channel_id, msg.thread_ts
        )
        await ephemeral(client, msg.channel_id, msg.user_id, msg.thread_ts, text)

    async def _refuse(self, msg: IncomingMessage, client: AsyncWebClient) -> None:
        """Tell a person who may not use the agent, when they were talking to it."""
        log.info("message_refused", channel=msg.channel_id, user=msg.user_id)
        talking_to_agent = msg.mentions_bot or msg.is_dm
        if not talking_to_agent:
            key = thread_key(msg.team_id, msg.channel_id, msg.thread_ts)
            talking_to_agent = (await self.forwarder.status(key)).turns > 0
        if talking_to_agent:
            await ephemeral(client, msg.channel_id, msg.user_id, msg.thread_ts, NOT_PERMITTED)

    async def _react(self, client: AsyncWebClient, msg: IncomingMessage) -> None:
        try:
            with lane(Lane.BACKGROUND):
                await client.reactions_add(
                    channel=msg.channel_id, timestamp=msg.ts, name=self.received_reaction
                )
        except Exception as exc:  # the twin event of a mention reacts too: already_reacted
            log.debug("received_reaction_failed", error=str(exc))
            if slack_error_code(exc) != "already_reacted":
                metrics.slack_api_error("reactions.add", slack_error_code(exc))


def register(app: AsyncApp, handler: MessageHandler) -> None:
    app.event("app_mention")(handler)
    app.event("message")(handler)
