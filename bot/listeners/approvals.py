"""Approve and Deny on a run's request for approval.

The bot acks at once, reads the button's value strictly, refuses people outside the
allowlist, and hands the click to the thread's agent (`CodingAgent.approval`), which decides
in one place: only the thread's participants and admins may answer, and the first answer
counts. Whoever is refused, or clicks after the answer, is told privately; an accepted answer
shows in the request itself, which the run rewrites.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.background import Background
from bot.events import Actor, interaction_actor
from bot.forwarder import ForwardError, RestateForwarder
from bot.listeners.steering import NOT_PERMITTED, ephemeral, home_team
from bot.rules import Rules
from common.contract import (
    AGENT_APPROVAL,
    APPROVE_ACTION_ID,
    DENY_ACTION_ID,
    ApprovalAck,
    ApprovalClick,
    ApprovalRef,
    parse_thread_key,
)

log = structlog.get_logger(__name__)

NOT_ALLOWED = "Only the people in this thread (or an admin) can answer this."
NOT_WAITING = "This request is no longer waiting for an answer."
UNREADABLE = "Sorry, I can't read that button."
UNAVAILABLE = "I couldn't reach the agent to pass on your answer. Please try again in a moment."
ANSWERED = "This was already answered."
ANSWERED_BY = {
    "approved": "This was already answered: approved by {who}.",
    "denied": "This was already answered: denied by {who}.",
    "timed_out": "This is no longer waiting: nobody answered in time.",
}
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _where(body: dict[str, Any]) -> tuple[str, str | None]:
    """The channel the button was pressed in, and the thread of its message."""
    container, channel, message = (
        _object(body.get(k)) for k in ("container", "channel", "message")
    )
    channel_id = _text(container.get("channel_id")) or _text(channel.get("id"))
    thread_ts = _text(container.get("thread_ts")) or _text(message.get("thread_ts")) or None
    return channel_id, thread_ts


def register(
    app: AsyncApp, forwarder: RestateForwarder, rules: Rules, background: Background
) -> None:
    async def handle_approval_button(
        ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """Approve or Deny: passed on to the thread's agent after the ack."""
        await ack()
        action = (body.get("actions") or [{}])[0]
        action = action if isinstance(action, dict) else {}
        actor = interaction_actor(body, home_team(context, body))
        channel, thread_ts = _where(body)
        approved = action.get("action_id") == APPROVE_ACTION_ID
        answer = answer_request(
            forwarder, client, rules, actor, (channel, thread_ts), action, approved
        )
        background.spawn(answer, "approval button")

    app.action(APPROVE_ACTION_ID)(handle_approval_button)
    app.action(DENY_ACTION_ID)(handle_approval_button)


async def answer_request(
    forwarder: RestateForwarder,
    client: AsyncWebClient,
    rules: Rules,
    actor: Actor,
    where: tuple[str, str | None],
    action: dict[str, Any],
    approved: bool,
) -> None:
    """Hand one click to the agent; tell the person privately when it changed nothing."""
    channel, thread_ts = where
    user = actor.user_id
    try:
        ref = ApprovalRef.from_value(action.get("value"))
        if parse_thread_key(ref.thread_key)[1] != channel:
            raise ValueError("the button's thread is in another channel")
    except ValueError as exc:
        log.warning("approval_value_refused", channel=channel, user=user, error=str(exc)[:200])
        if channel and user:
            await ephemeral(client, channel, user, thread_ts, UNREADABLE)
        return
    thread_ts = thread_ts or parse_thread_key(ref.thread_key)[2]
    if not rules.allows(actor, channel):
        log.info("approval_refused", thread=ref.thread_key, user=user)
        await ephemeral(client, channel, user, thread_ts, NOT_PERMITTED)
        return
    click = ApprovalClick(ref=ref, approved=approved, user_id=user, is_admin=rules.is_admin(user))
    idem = f"approval:{ref.awakeable_id}:{user}:{_text(action.get('action_ts'))}"
    try:
        answer = await forwarder.call(ref.thread_key, AGENT_APPROVAL, click, idem)
        result = ApprovalAck.model_validate(answer)
    except (ForwardError, ValueError) as exc:
        log.warning("approval_not_forwarded", thread=ref.thread_key, error=str(exc)[:300])
        await ephemeral(client, channel, user, thread_ts, UNAVAILABLE)
        return
    log.info(
        "approval_clicked", thread=ref.thread_key, by=user, approved=approved, reason=result.reason
    )
    if result.reason == "not_allowed":
        await ephemeral(client, channel, user, thread_ts, NOT_ALLOWED)
    elif result.reason == "not_waiting":
        await ephemeral(client, channel, user, thread_ts, NOT_WAITING)
    elif result.reason == "answered":
        await ephemeral(client, channel, user, thread_ts, _answered(result))


def _answered(result: ApprovalAck) -> str:
    earlier = result.answer
    if earlier is None:
        return ANSWERED
    by = earlier.by_user or ""
    who = f"<@{by}>" if _SLACK_USER.fullmatch(by) else "someone"
    return ANSWERED_BY.get(earlier.outcome, ANSWERED).format(who=who)
