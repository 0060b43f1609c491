"""Approve and Deny, driven through Bolt's real dispatch with signed Slack requests: the click
reaches the thread's agent with who clicked; refusals, late clicks and unreadable buttons are
answered privately and change nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bot.listeners.approvals import NOT_ALLOWED, NOT_WAITING, UNREADABLE
from common.contract import APPROVE_ACTION_ID, DENY_ACTION_ID, ApprovalRef
from tests.unit.bot_fakes import CHANNEL, GUEST_TEAM, TEAM, Bot, eventually, running_bot

ROOT_TS = "1732611000.000001"
KEY = f"{TEAM}:{CHANNEL}:{ROOT_TS}"
REF = ApprovalRef(
    thread_key=KEY,
    task_id="inv_1abcdef",
    awakeable_id="sign_1kuYTyNKSIA0Boi33ok6pC7hb-Ycc2b-GAAAAEQ",
)


def _click(
    value: str = REF.value(),
    action_id: str = APPROVE_ACTION_ID,
    user: str = "U0ALICE",
    team: str = TEAM,
) -> dict[str, Any]:
    now = f"{time.time():.6f}"
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A0SANDBOX",
        "team": {"id": TEAM, "domain": "sandbox"},
        "channel": {"id": CHANNEL, "name": "general"},
        "container": {
            "type": "message",
            "message_ts": "1732611000.000009",
            "channel_id": CHANNEL,
            "thread_ts": ROOT_TS,
        },
        "trigger_id": "1.2.3",
        "actions": [{"action_id": action_id, "value": value, "type": "button", "action_ts": now}],
    }


async def _ephemeral(bot: Bot, text: str, user: str = "U0ALICE") -> dict[str, Any]:
    return await eventually(
        lambda: next(
            (e for e in bot.slack.ephemerals if e.get("user") == user and text in e["text"]),
            None,
        )
    )


@pytest.mark.parametrize(
    ("action_id", "approved"), [(APPROVE_ACTION_ID, True), (DENY_ACTION_ID, False)]
)
async def test_a_click_reaches_the_threads_agent_with_who_clicked(
    action_id: str, approved: bool
) -> None:
    async with running_bot() as bot:
        answered = await bot.interaction(_click(action_id=action_id))
        assert answered.status == 200
        (click,) = await eventually(lambda: bot.restate.clicks)
        assert click["approved"] is approved
        assert (click["user_id"], click["is_admin"]) == ("U0ALICE", False)
        assert ApprovalRef.model_validate(click["ref"]) == REF
        assert bot.restate.sent == [(KEY, "approval")]
        assert bot.slack.ephemerals == [], "an accepted answer shows in the request itself"


async def test_an_admin_is_passed_on_as_one() -> None:
    async with running_bot(admin_user_ids="U0ADMIN") as bot:
        await bot.interaction(_click(user="U0ADMIN"))
        (click,) = await eventually(lambda: bot.restate.clicks)
        assert click["is_admin"] is True


async def test_someone_outside_the_thread_is_told_no_privately() -> None:
    async with running_bot() as bot:
        bot.restate.approval_ack = {"reason": "not_allowed"}
        await bot.interaction(_click(user="U0BOB"))
        refusal = await _ephemeral(bot, NOT_ALLOWED, user="U0BOB")
        assert refusal["channel"] == CHANNEL
        assert refusal["thread_ts"] == ROOT_TS


async def test_a_second_click_is_told_who_answered_first() -> None:
    async with running_bot() as bot:
        earlier = {"outcome": "denied", "by_user": "U0CAROL", "at": 1.0}
        bot.restate.approval_ack = {"reason": "answered", "answer": earlier}
        await bot.interaction(_click())
        await _ephemeral(bot, "already answered: denied by <@U0CAROL>")


async def test_a_click_after_the_run_ended_is_told_nothing_waits() -> None:
    async with running_bot() as bot:
        bot.restate.approval_ack = {"reason": "not_waiting"}
        await bot.interaction(_click())
        await _ephemeral(bot, NOT_WAITING)


async def test_a_guest_from_another_organisation_is_refused_before_the_agent() -> None:
    async with running_bot(allowed_team_ids=TEAM) as bot:
        await bot.interaction(_click(user="U0GUEST", team=GUEST_TEAM))
        await _ephemeral(bot, "not allowed", user="U0GUEST")
        assert bot.restate.sent == []


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not json",
        json.dumps({"thread_key": KEY}),
        REF.value().replace("sign_", "evil/"),
        # A button of another channel's thread pressed here.
        REF.model_copy(update={"thread_key": f"{TEAM}:C0OTHER:{ROOT_TS}"}).value(),
        "x" * 3000,
    ],
)
async def test_an_unreadable_or_forged_value_is_answered_and_forwards_nothing(value: str) -> None:
    async with running_bot() as bot:
        answered = await bot.interaction(_click(value=value))
        assert answered.status == 200
        await _ephemeral(bot, UNREADABLE)
        assert bot.restate.sent == []


async def test_restate_down_gets_a_friendly_answer() -> None:
    async with running_bot(restate_down=True) as bot:
        answered = await bot.interaction(_click())
        assert answered.status == 200
        await _ephemeral(bot, "couldn't reach the agent")
