"""Registers every listener of the bot on its Bolt app, in one place."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.background import Background
from bot.forwarder import RestateForwarder
from bot.listeners import actions, fallbacks, messages, status
from bot.rules import Rules


def register(
    app: AsyncApp, forwarder: RestateForwarder, rules: Rules, received_reaction: str
) -> None:
    background = Background()
    messages.register(app, messages.MessageHandler(forwarder, rules, received_reaction, background))
    status.register(app, forwarder, background)
    actions.register(app, forwarder, rules, background)
    fallbacks.register(app)
