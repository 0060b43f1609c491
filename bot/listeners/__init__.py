"""Registers every listener of the bot on its Bolt app, in one place."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.background import Background
from bot.forwarder import RestateForwarder
from bot.listeners import actions, approvals, fallbacks, messages, status
from bot.names import SlackNames
from bot.rules import Rules
from bot.run_rate import RunRate


def register(
    app: AsyncApp,
    forwarder: RestateForwarder,
    rules: Rules,
    received_reaction: str,
    background: Background,
    run_rate: RunRate,
    names: SlackNames,
) -> None:
    handler = messages.MessageHandler(
        forwarder, rules, received_reaction, background, run_rate, names
    )
    messages.register(app, handler)
    status.register(app, forwarder, rules, background)
    actions.register(app, forwarder, rules, background)
    approvals.register(app, forwarder, rules, background)
    fallbacks.register(app)
