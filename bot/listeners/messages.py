"""Message and mention events: filter them and forward each user message to its session.

Three replies are commands rather than turns: "status" (answered privately, nothing
interrupted), "stop" / "cancel" (stops the running task without restarting) and "open a PR"
(the thread's work as a branch and a draft pull request, once a run under way has finished).
"""

from __future__ import annotations

import re
import time
from typing import Any

import aiohttp
import structlog
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.attachments import read_texts
from bot.background import Background
from bot.events import Actor, Skip, message_actor, to_incoming
from bot.forwarder import ForwardError, RestateForwarder
from bot.listeners.status import thread_status_text
from bot.listeners.steering import (
    NOT_PERMITTED,
    ephemeral,
    home_team,
    request_ship,
    request_stop,
    slack_error_code,
)
from bot.markup import mentioned, readable
from bot.names import SlackNames
from bot.rules import Rules
from bot.run_rate import Refusal, RunRate
from common.contract import IncomingMessage, message_idempotency_key, steers, thread_key
from common.slack_files import allowed_hosts, shared_files
from common.slack_limiter import Lane, lane

log = structlog.get_logger(__name__)

# How long a message waits for the names of people and channels it mentions that are not
# cached yet: the forward (and so an interruption) waits this long at most, once per name.
NAME_WAIT_SECONDS = 0.3
STOP_WORDS = frozenset({"stop", "cancel"})
STATUS_WORDS = frozenset({"status"})
SHIP = "ship"
_SHIP_PHRASE = re.compile(
    r"(?:please\s+)?(?:open|create|make|raise)\s+(?:a\s+)?(?:pr|pull\s+request)"
)


def _command_word(msg: IncomingMessage) -> str | None:
    """The command typed alone as a reply in a thread: "status", "stop" or "cancel", or a
    request for a pull request ("open a PR", "create a pull request"): `SHIP`."""
    if msg.thread_ts == msg.ts:
        return None
    word = msg.text.strip().strip(".!").lower()
    if _SHIP_PHRASE.fullmatch(" ".join(word.split())):
        return SHIP
    return word if word in STOP_WORDS | STATUS_WORDS else None


class MessageHandler:
    """Turns one message event into a forwarded turn, a status answer, a stop, or nothing."""

    def __init__(
        self,
        forwarder: RestateForwarder,
        rules: Rules,
        received_reaction: str,
        background: Background,
        run_rate: RunRate,
        names: SlackNames,
    ) -> None:
        self.forwarder, self.rules, self.received_reaction = forwarder, rules, received_reaction
        self.background, self.run_rate, self.names = background, run_rate, names

    async def __call__(
        self,
        event: dict[str, Any],
        body: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
    ) -> None:
        team = home_team(context, body)
        msg = to_incoming(
            event, team_id=team, bot_user_id=context.bot_user_id or "", received_at=time.time()
        )
        if isinstance(msg, Skip):
            report = log.warning if msg.unexpected else log.debug
            report("event_skipped", type=event.get("type"), reason=msg.reason)
            return
        if "<" in msg.text or "&" in msg.text:
            msg = await self._readable(msg)
        if shared_files(event):
            msg = await _with_file_texts(msg, event, client)
        msg = self._with_policy(msg)
        await self._handle(msg, message_actor(event, body, team), client)

    async def _readable(self, msg: IncomingMessage) -> IncomingMessage:
        """The turn as people read it: names for the people and channels it mentions (known
        ones at once, others if Slack names them within a moment; else the id stays)."""
        users, channels = mentioned(msg.text)
        found = await self.names.names(users, channels, wait=NAME_WAIT_SECONDS)
        text = readable(msg.text, found["users"], found["channels"])
        return msg.model_copy(update={"text": text})

    async def _handle(self, msg: IncomingMessage, actor: Actor, client: AsyncWebClient) -> None:
        word = _command_word(msg)
        # Everything but the forward happens after the ack: a retry would repeat it, and a
        # slow or absent Restate must not make Slack retry a message that changes nothing.
        if word in STATUS_WORDS:
            self.background.spawn(self._answer_status(msg, actor, client), "status reply")
        elif word in STOP_WORDS:
            where = (msg.team_id, msg.channel_id, msg.thread_ts)
            idem = "stop:" + message_idempotency_key(msg.channel_id, msg.ts)
            stop = request_stop(self.forwarder, client, self.rules, where, actor, idem)
            self.background.spawn(stop, "stop reply")
        elif word == SHIP:
            where = (msg.team_id, msg.channel_id, msg.thread_ts)
            ship = request_ship(self.forwarder, client, self.rules, where, actor, msg.ts)
            self.background.spawn(ship, "ship reply")
        elif not self.rules.allows(actor, msg.channel_id):
            self.background.spawn(self._refuse(msg, client), "refusal")
        elif (refusal := await self._over_rate(msg)) is not None:
            if not refusal.repeat:
                note = ephemeral(client, msg.channel_id, msg.user_id, msg.thread_ts, refusal.text)
                self.background.spawn(note, "rate refusal")
        else:
            await self._forward(msg, client)

    def _with_policy(self, msg: IncomingMessage) -> IncomingMessage:
        """The message with its channel's policy, which says what it does (and costs)."""
        policy = self.rules.policy(msg.channel_id)
        return msg.model_copy(
            update={"policy": policy.policy, "debounce_seconds": policy.debounce_seconds}
        )

    async def _over_rate(self, msg: IncomingMessage) -> Refusal | None:
        """Whether this message would start or restart a run past the user's or the channel's
        rate (admins are never held back); counted once however often Slack delivers it. A
        reply that joins the running task (`steer`) starts nothing: free, never refused."""
        if self.rules.is_admin(msg.user_id):
            return None
        key = thread_key(msg.team_id, msg.channel_id, msg.thread_ts)
        refusal = self.run_rate.check(
            msg.user_id,
            msg.channel_id,
            message=message_idempotency_key(msg.channel_id, msg.ts),
            thread=key,
            mention=msg.mentions_bot or msg.is_dm,
            starts_run=not await self._steers_running_task(msg, key),
        )
        if refusal is not None and not refusal.repeat:
            log.info(
                "run_rate_refused",
                scope=refusal.scope,
                channel=msg.channel_id,
                user=msg.user_id,
                retry_after=round(refusal.retry_after),
            )
            metrics.run_refused(refusal.scope)
        return refusal

    async def _steers_running_task(self, msg: IncomingMessage, key: str) -> bool:
        """Whether a reply will join the task running in its thread as steering. Only the
        session knows: its shared status answers at once, never behind the running task.
        A reply the task ends before taking in starts the thread's next run uncharged: at
        most one per run, one at a time, in a thread a charged mention opened and within its
        token budget. When Restate cannot say, the reply is priced as one that starts a run."""
        if msg.thread_ts == msg.ts or not steers(msg):
            return False
        try:
            return (await self.forwarder.status(key)).running_task_id is not None
        except (ForwardError, ValueError) as exc:
            log.warning("steering_status_unavailable", thread=key, error=str(exc))
            return False

    async def _forward(self, msg: IncomingMessage, client: AsyncWebClient) -> None:
        await self.forwarder.forward(msg)
        if (msg.mentions_bot or msg.is_dm) and self.received_reaction:
            self.background.spawn(self._react(client, msg), "received reaction", cosmetic=True)

    async def _answer_status(
        self, msg: IncomingMessage, actor: Actor, client: AsyncWebClient
    ) -> None:
        if not await self._agents_thread(msg):
            return  # in a thread without a session, "status" is said to people, not to the agent
        if self.rules.admits(actor):
            text = await thread_status_text(
                self.forwarder, client, msg.team_id, msg.channel_id, msg.thread_ts
            )
        else:
            log.info("status_refused", channel=msg.channel_id, user=msg.user_id)
            text = NOT_PERMITTED
        await ephemeral(client, msg.channel_id, msg.user_id, msg.thread_ts, text)

    async def _refuse(self, msg: IncomingMessage, client: AsyncWebClient) -> None:
        """Tell a person who may not use the agent, when they were talking to it."""
        log.info("message_refused", channel=msg.channel_id, user=msg.user_id)
        if msg.mentions_bot or msg.is_dm or await self._agents_thread(msg):
            await ephemeral(client, msg.channel_id, msg.user_id, msg.thread_ts, NOT_PERMITTED)

    async def _agents_thread(self, msg: IncomingMessage) -> bool:
        """Whether the thread is a session's; when Restate cannot say, assume it is (one
        refusal too many beats a reply that silently goes nowhere)."""
        key = thread_key(msg.team_id, msg.channel_id, msg.thread_ts)
        try:
            return (await self.forwarder.status(key)).turns > 0
        except (ForwardError, ValueError) as exc:
            log.warning("refusal_status_unavailable", thread=key, error=str(exc))
            return True

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


async def _with_file_texts(
    msg: IncomingMessage, event: dict[str, Any], client: AsyncWebClient
) -> IncomingMessage:
    """The turn with the text of its text-like files, read with the bot's token."""
    hosts = allowed_hosts(client.base_url)
    token = client.token or ""
    if client.session is not None:
        texts = await read_texts(client.session, token, event, hosts)
    else:
        async with aiohttp.ClientSession() as session:
            texts = await read_texts(session, token, event, hosts)
    return msg.model_copy(update={"text": f"{msg.text}\n\n{texts}"}) if texts else msg


def register(app: AsyncApp, handler: MessageHandler) -> None:
    app.event("app_mention")(handler)
    app.event("message")(handler)
