"""The bot's start: Bolt is handed the Slack credentials through the settings and finds none of
its own in the environment, so it has nothing to warn about."""

from __future__ import annotations

import logging
import os

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.__main__ import hand_credentials_to_settings
from bot.app import build_app
from bot.forwarder import RestateForwarder
from common.settings import BotSettings

UNUSED = "will be unused"


async def _build_bolt(settings: BotSettings) -> None:
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value())
        build_app(settings, client, RestateForwarder(session, "http://127.0.0.1:9"))


@pytest.fixture
def env_credentials(monkeypatch: pytest.MonkeyPatch) -> BotSettings:
    """The credentials in the environment, as every deployment and `make run` pass them."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret-from-the-environment")
    return BotSettings(_env_file=None)  # type: ignore[call-arg]


async def test_bolt_starts_without_warnings_once_the_settings_hold_the_credentials(
    env_credentials: BotSettings, caplog: pytest.LogCaptureFixture
) -> None:
    hand_credentials_to_settings()
    assert "SLACK_BOT_TOKEN" not in os.environ
    assert "SLACK_SIGNING_SECRET" not in os.environ
    with caplog.at_level(logging.WARNING, logger="slack_bolt"):
        await _build_bolt(env_credentials)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_left_in_the_environment_the_token_makes_bolt_warn_that_it_goes_unused(
    env_credentials: BotSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """Why the hand-over exists: Bolt reads SLACK_BOT_TOKEN beside the client it is given."""
    with caplog.at_level(logging.WARNING, logger="slack_bolt"):
        await _build_bolt(env_credentials)
    assert any(UNUSED in r.getMessage() for r in caplog.records)
