"""The bot's listeners, driven through Bolt's real dispatch with signed Slack requests:
who may use the agent (Slack Connect guests), `/agent-status` input and paging, refusals
with Restate down, and links that Slack did not give."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from common.contract import Turn
from common.session_state import Session
from tests.slack_fixtures import load
from tests.unit.bot_fakes import (
    BOT_USER,
    CHANNEL,
    GUEST_TEAM,
    TEAM,
    Bot,
    eventually,
    running_bot,
)

ALLOWED = {"allowed_team_ids": TEAM, "allowed_channel_ids": CHANNEL}
NOT_PERMITTED = "not allowed"
ROOT_TS = "1732611000.000001"


def _ts() -> str:
    now = time.time_ns() // 1000
    return f"{now // 1_000_000}.{now % 1_000_000:06d}"


def _guest_message(text: str, **extra: Any) -> dict[str, Any]:
    """A message in a Slack Connect channel from another organisation's member: the
    installation's team on `team`, the author's own on `user_team` and `source_team`."""
    ts = _ts()
    return {
        "type": "message",
        "channel": CHANNEL,
        "channel_type": "channel",
        "user": "U0GUEST",
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "team": TEAM,
        "user_team": GUEST_TEAM,
        "source_team": GUEST_TEAM,
        **extra,
    }


def _block_actions(user_team: str, key: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": "U0GUEST", "username": "guest", "team_id": user_team},
        "api_app_id": "A0SANDBOX",
        "team": {"id": TEAM, "domain": "sandbox"},
        "channel": {"id": CHANNEL, "name": "general"},
        "container": {"type": "message", "message_ts": ROOT_TS, "channel_id": CHANNEL},
        "trigger_id": "1.2.3",
        "actions": [{"action_id": "stop_task", "value": key, "type": "button", "action_ts": _ts()}],
        **extra,
    }


def _stops(bot: Bot) -> list[str]:
    return [key for key, name in bot.restate.sent if name == "stop"]


def _messages(bot: Bot) -> list[str]:
    return [key for key, name in bot.restate.sent if name == "message"]


async def _refused(bot: Bot, user: str = "U0GUEST") -> dict[str, Any]:
    return await eventually(
        lambda: next(
            (
                e
                for e in bot.slack.ephemerals
                if e.get("user") == user and NOT_PERMITTED in e.get("text", "")
            ),
            None,
        )
    )


# ---------------------------------------------------------------- Slack Connect guests


@pytest.mark.parametrize("allowlist", [ALLOWED, {}], ids=["team-allowlist", "no-allowlist"])
async def test_a_slack_connect_guest_cannot_start_a_session(allowlist: dict[str, str]) -> None:
    """The event's `team` is the installation's (allowed); the author's `user_team` is not:
    refused, with or without ALLOWED_TEAM_IDS (then only the installation's team is served)."""
    async with running_bot(**allowlist) as bot:
        answered = await bot.event(_guest_message(f"<@{BOT_USER}> deploy to prod"))
        assert answered.status == 200
        await _refused(bot)
        assert _messages(bot) == []


async def test_a_member_of_the_installations_team_still_starts_a_session() -> None:
    async with running_bot(**ALLOWED) as bot:
        event = _guest_message(f"<@{BOT_USER}> fix the build", user="U0ALICE")
        event |= {"user_team": TEAM, "source_team": TEAM}
        assert (await bot.event(event)).status == 200
        assert len(_messages(bot)) == 1


async def test_a_guest_from_an_allowed_team_may_use_the_agent() -> None:
    async with running_bot(allowed_team_ids=f"{TEAM},{GUEST_TEAM}") as bot:
        assert (await bot.event(_guest_message(f"<@{BOT_USER}> help"))).status == 200
        assert len(_messages(bot)) == 1


async def test_a_guest_cannot_stop_by_replying_stop() -> None:
    async with running_bot(**ALLOWED) as bot:
        await bot.event(_guest_message("stop", thread_ts=ROOT_TS))
        await _refused(bot)
        assert _stops(bot) == []


async def test_a_guest_cannot_read_a_threads_status_by_replying_status() -> None:
    async with running_bot(**ALLOWED) as bot:
        bot.restate.turns = 1
        await bot.event(_guest_message("status", thread_ts=ROOT_TS))
        await _refused(bot)
        # Only whether the thread is the agent's was asked: nothing of the session was read.
        assert [name for _, name in bot.restate.sent] == ["status"]


async def test_a_guest_cannot_press_stop() -> None:
    async with running_bot(**ALLOWED) as bot:
        key = f"{TEAM}:{CHANNEL}:{ROOT_TS}"
        assert (await bot.interaction(_block_actions(GUEST_TEAM, key))).status == 200
        await _refused(bot)
        assert _stops(bot) == []


async def test_a_member_reported_by_their_enterprise_org_may_press_stop() -> None:
    """Slack reports an Enterprise Grid member's `user.team_id` as the org (E…)."""
    async with running_bot(**ALLOWED) as bot:
        key = f"{TEAM}:{CHANNEL}:{ROOT_TS}"
        payload = _block_actions("E0ORG", key, enterprise={"id": "E0ORG", "name": "Org"})
        assert (await bot.interaction(payload)).status == 200
        await eventually(lambda: _stops(bot))


async def test_a_guest_gets_no_session_list_from_agent_status() -> None:
    async with running_bot(**ALLOWED) as bot:
        answered = await bot.slash_command(load("command_agent_status_slack_connect_guest"))
        assert answered.status == 200
        assert NOT_PERMITTED in (await answered.json())["text"]
        assert bot.restate.queries == []


async def test_a_guest_gets_no_status_from_the_shortcut() -> None:
    async with running_bot(**ALLOWED) as bot:
        payload = load("interaction_shortcut_slack_connect_guest")
        # The installation's team on the payload: only `user.team_id` says the guest acted.
        payload["team"] = {"id": TEAM, "domain": "sandbox"}
        assert (await bot.interaction(payload)).status == 200
        await _refused(bot)
        assert bot.restate.sent == []


# ---------------------------------------------------------------- /agent-status paging


@pytest.mark.parametrize("page", ["²", "٣", "0", "-1", "9999", "abc", ""])
async def test_a_bad_page_number_gets_a_clear_answer_and_reads_nothing(page: str) -> None:
    async with running_bot() as bot:
        answered = await bot.command(f"page {page}".strip())
        assert answered.status == 200
        text = (await answered.json())["text"]
        assert "Pages go from 1 to" in text
        assert bot.restate.queries == []


async def test_a_deep_page_reads_one_page_of_sessions_from_restate() -> None:
    async with running_bot() as bot:
        answered = await bot.command("page 50")
        assert answered.status == 200
        [query] = bot.restate.queries
        limit = re.search(r"LIMIT (\d+)", query)
        offset = re.search(r"OFFSET (\d+)", query)
        assert limit is not None
        assert offset is not None
        assert int(limit.group(1)) <= 10
        assert int(offset.group(1)) == 490


def _session_row(thread_ts: str, text: str, total: int) -> dict[str, Any]:
    session = Session(
        channel_id=CHANNEL,
        thread_ts=thread_ts,
        updated_at=time.time(),
        turns=[Turn(kind="user", text=text, user_id="U0ALICE", ts=thread_ts)],
    )
    key = f"{TEAM}:{CHANNEL}:{thread_ts}"
    return {"service_key": key, "value_utf8": session.model_dump_json(), "total": total}


async def test_a_page_says_whether_another_follows() -> None:
    async with running_bot() as bot:
        bot.restate.rows = [
            _session_row(f"17000000{i:02d}.000100", f"job {i}", 21) for i in range(10)
        ]
        text = (await (await bot.command("page 2")).json())["text"]
        assert "job 9" in text
        assert "page 3" in text
        bot.restate.rows = [_session_row("1700000099.000100", "last job", 21)]
        text = (await (await bot.command("page 3")).json())["text"]
        assert "last job" in text
        assert "page 4" not in text


# ---------------------------------------------------------------- refusals with Restate down


async def test_a_refused_reply_is_acked_and_refused_while_restate_is_down() -> None:
    """Whether a reply outside the allowlist was meant for the agent needs a Restate read;
    with Restate down Slack still gets its 200 (no retries), and the person their answer."""
    async with running_bot(restate_down=True, **ALLOWED) as bot:
        ts = _ts()
        event = {
            "type": "message",
            "channel": "C0OTHER",
            "channel_type": "channel",
            "user": "U0BOB",
            "text": "and the tests too",
            "ts": ts,
            "event_ts": ts,
            "thread_ts": ROOT_TS,
            "team": TEAM,
        }
        answered = await bot.event(event)
        assert answered.status == 200
        await _refused(bot, user="U0BOB")


# ---------------------------------------------------------------- links Slack did not give


@pytest.mark.parametrize("answer", [{"channel": CHANNEL}, {"permalink": None}, {"permalink": ""}])
async def test_a_missing_permalink_shows_plain_text(answer: dict[str, Any]) -> None:
    async with running_bot() as bot:
        bot.slack.permalink = answer
        bot.restate.turns = 2
        link = f"https://sandbox.slack.com/archives/{CHANNEL}/p{ROOT_TS.replace('.', '')}"
        text = (await (await bot.command(link)).json())["text"]
        assert "Session" in text
        assert "None" not in text
        assert "|thread>" not in text
        bot.restate.rows = [_session_row(ROOT_TS, "fix the build", 1)]
        listing = (await (await bot.command("")).json())["text"]
        assert "fix the build" in listing
        assert "None" not in listing
        assert "<|" not in listing


async def test_an_error_page_instead_of_a_permalink_still_answers_the_status() -> None:
    async with running_bot() as bot:
        bot.slack.permalink_broken = True
        bot.restate.turns = 2
        link = f"https://sandbox.slack.com/archives/{CHANNEL}/p{ROOT_TS.replace('.', '')}"
        answered = await bot.command(link)
        assert answered.status == 200
        assert "Turns: 2" in (await answered.json())["text"]


# ---------------------------------------------------------------- rate of new runs


def _mention(text: str, user: str = "U0ALICE", **extra: Any) -> dict[str, Any]:
    ts = _ts()
    event = {"type": "app_mention", "channel": CHANNEL, "user": user, "text": text}
    return event | {"ts": ts, "event_ts": ts, "team": TEAM, **extra}


async def test_a_person_over_the_rate_of_new_runs_is_told_politely_and_nothing_is_forwarded() -> (
    None
):
    """Burst of two: the third mention in a row is not passed on, and its author (only) is
    told when to try again; a second delivery of that mention says nothing more."""
    limits = {"runs_per_user_per_hour": 6, "runs_per_user_burst": 2}
    async with running_bot(**limits) as bot:
        for n in range(2):
            assert (await bot.event(_mention(f"<@{BOT_USER}> task {n}"))).status == 200
        assert len(_messages(bot)) == 2
        third = _mention(f"<@{BOT_USER}> task 3")
        assert (await bot.event(third)).status == 200
        assert (await bot.event(third)).status == 200  # Slack's retry of the same message
        refusal = await eventually(
            lambda: [e for e in bot.slack.ephemerals if "a lot of runs" in e.get("text", "")]
        )
        assert refusal[0]["user"] == "U0ALICE"
        assert "try again" in refusal[0]["text"]
        assert len(_messages(bot)) == 2
        # Someone else in the channel is not held back by Alice's rate.
        assert (await bot.event(_mention(f"<@{BOT_USER}> mine", user="U0BOB"))).status == 200
        await eventually(lambda: len(_messages(bot)) == 3)
        assert len([e for e in bot.slack.ephemerals if "a lot of runs" in e.get("text", "")]) == 1


async def test_an_admin_is_never_held_back_by_the_rate_of_new_runs() -> None:
    limits = {"runs_per_user_per_hour": 6, "runs_per_user_burst": 1, "admin_user_ids": "U0ADM"}
    async with running_bot(**limits) as bot:
        for n in range(3):
            await bot.event(_mention(f"<@{BOT_USER}> task {n}", user="U0ADM"))
        assert len(_messages(bot)) == 3
        assert not [e for e in bot.slack.ephemerals if "a lot of runs" in e.get("text", "")]


def _reply(text: str, thread_ts: str, user: str = "U0ALICE") -> dict[str, Any]:
    ts = _ts()
    event = {"type": "message", "channel": CHANNEL, "channel_type": "channel", "user": user}
    return event | {"text": text, "ts": ts, "event_ts": ts, "team": TEAM, "thread_ts": thread_ts}


async def test_a_reply_that_steers_the_running_task_is_neither_charged_nor_refused() -> None:
    """Under `steer`, a plain reply while the thread's task runs joins that task: it starts no
    run, so a person whose rate is used up still steers; once nothing runs, a reply (which
    starts the next run) is charged again, and a `!` reply (which interrupts) always is."""
    limits = {"runs_per_user_per_hour": 6, "runs_per_user_burst": 1}
    async with running_bot(channel_policies=f"{CHANNEL}=steer", **limits) as bot:
        root = _mention(f"<@{BOT_USER}> port the parser")
        await bot.event(root)
        bot.restate.running_task_id = "inv_running"
        for n in range(3):
            assert (await bot.event(_reply(f"steer {n}", root["ts"]))).status == 200
        await eventually(lambda: len(_messages(bot)) == 4)
        assert not [e for e in bot.slack.ephemerals if "a lot of runs" in e.get("text", "")]

        await bot.event(_reply("! start over", root["ts"]))
        bot.restate.running_task_id = None
        await bot.event(_reply("and now the docs", root["ts"]))
        await eventually(
            lambda: len([e for e in bot.slack.ephemerals if "a lot of runs" in e["text"]]) == 2
        )
        assert len(_messages(bot)) == 4
