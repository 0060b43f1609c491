"""Asking for a pull request from Slack, through Bolt's real dispatch with signed requests:
"open a PR" in a thread and the Create PR button reach the session as one ship request, once
per message or click; anything else stays a turn; people the agent does not serve are told."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.unit.bot_fakes import CHANNEL, GUEST_TEAM, TEAM, Bot, eventually, running_bot

ROOT_TS = "1732611000.000001"
KEY = f"{TEAM}:{CHANNEL}:{ROOT_TS}"


def _ts() -> str:
    now = time.time_ns() // 1000
    return f"{now // 1_000_000}.{now % 1_000_000:06d}"


def _reply(text: str, **extra: Any) -> dict[str, Any]:
    ts = _ts()
    return {
        "type": "message",
        "channel": CHANNEL,
        "channel_type": "channel",
        "user": "U0ALICE",
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "thread_ts": ROOT_TS,
        "team": TEAM,
        **extra,
    }


def _click(value: str, user_team: str = TEAM) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": "U0ALICE", "username": "alice", "team_id": user_team},
        "api_app_id": "A0SANDBOX",
        "team": {"id": TEAM, "domain": "sandbox"},
        "channel": {"id": CHANNEL, "name": "general"},
        "container": {"type": "message", "message_ts": ROOT_TS, "channel_id": CHANNEL},
        "trigger_id": "1.2.3",
        "actions": [
            {"action_id": "create_pr", "value": value, "type": "button", "action_ts": _ts()}
        ],
    }


def _sent(bot: Bot, handler: str) -> list[str]:
    return [key for key, name in bot.restate.sent if name == handler]


@pytest.mark.parametrize(
    "text", ["open a PR", "Open a pull request.", "create PR!", "please  open a PR", "make a pr"]
)
async def test_open_a_pr_in_a_thread_asks_the_session_to_ship(text: str) -> None:
    async with running_bot() as bot:
        assert (await bot.event(_reply(text))).status == 200
        await eventually(lambda: _sent(bot, "ship") or None)
        assert _sent(bot, "ship") == [KEY]
        assert _sent(bot, "message") == []


@pytest.mark.parametrize("text", ["open a PR for the parser fix", "why no PR?", "pr"])
async def test_a_sentence_about_a_pr_is_a_turn_like_any_other(text: str) -> None:
    async with running_bot() as bot:
        assert (await bot.event(_reply(text))).status == 200
        assert _sent(bot, "message") == [KEY]
        assert _sent(bot, "ship") == []


async def test_the_create_pr_button_asks_the_session_to_ship() -> None:
    async with running_bot() as bot:
        assert (await bot.interaction(_click(KEY))).status == 200
        await eventually(lambda: _sent(bot, "ship") or None)
        assert _sent(bot, "ship") == [KEY]


@pytest.mark.parametrize("value", ["", "not-a-key", "T0:C0", "a:b:c:d"])
async def test_a_create_pr_click_with_a_bad_value_is_acked_and_ships_nothing(value: str) -> None:
    async with running_bot() as bot:
        assert (await bot.interaction(_click(value))).status == 200
        assert _sent(bot, "ship") == []


async def test_a_slack_connect_guest_cannot_ask_for_a_pr() -> None:
    async with running_bot() as bot:
        await bot.interaction(_click(KEY, user_team=GUEST_TEAM))
        refusal = await eventually(lambda: bot.slack.ephemerals or None)
        assert "not allowed" in refusal[0]["text"]
        assert _sent(bot, "ship") == []
