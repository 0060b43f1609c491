"""Registers every listener of the bot on its Bolt app, in one place."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.forwarder import RestateForwarder
from bot.listeners import messages


def register(app: AsyncApp, forwarder: RestateForwarder) -> None:
    messages.register(app, forwarder)
