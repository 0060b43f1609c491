"""One team for a thread's key, whichever way the thread is reached: Enterprise Grid org-wide
installs (no installation team on the event), Slack Connect guests' shortcuts and commands,
Slack's own stop button; and the messages that are nobody's turn (Slackbot, "status" where the
agent has no session).

Payloads are shaped as Slack's references show them: the Events API envelope with
`authorizations` (api.slack.com/apis/events-api, "Callback field overview"; org-wide
installations: api.slack.com/enterprise/apps/reference), slash commands with `enterprise_id`
and `is_enterprise_install` (api.slack.com/interactivity/slash-commands), message shortcuts
(api.slack.com/reference/interaction-payloads/shortcuts) and `agent_session_stopped`
(docs.slack.dev/reference/events/agent_session_stopped).
"""

from __future__ import annotations

import time
from typing import Any

from tests.unit.bot_fakes import BOT_USER, CHANNEL, GUEST_TEAM, TEAM, Bot, eventually, running_bot

ORG = "E0ORG"
ROOT_TS = "1732611000.000001"
ORG_WIDE = {"team_id": ORG, "enterprise_id": ORG, "user_id": BOT_USER, "bot_id": "B0BOT"}


def _ts() -> str:
    now = time.time_ns() // 1000
    return f"{now // 1_000_000}.{now % 1_000_000:06d}"


def _org_wide_envelope() -> dict[str, Any]:
    """What an org-wide installation's events carry: no installation team, the org's id."""
    return {
        "enterprise_id": ORG,
        "context_team_id": TEAM,
        "context_enterprise_id": ORG,
        "authorizations": [
            {
                "enterprise_id": ORG,
                "team_id": None,
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": True,
            }
        ],
        "is_ext_shared_channel": False,
    }


def _message(text: str, **extra: Any) -> dict[str, Any]:
    ts = _ts()
    return {
        "type": "message",
        "channel": CHANNEL,
        "channel_type": "channel",
        "user": "U0ALICE",
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "team": TEAM,
        "user_team": TEAM,
        **extra,
    }


def _sent(bot: Bot, handler: str) -> list[str]:
    return [key for key, name in bot.restate.sent if name == handler]


def _shortcut(user_team: str, team: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "message_action",
        "callback_id": "agent_status",
        "trigger_id": "1.2.3",
        "action_ts": _ts(),
        "team": team,
        "user": {"id": "U0ALICE", "username": "alice", "team_id": user_team},
        "channel": {"id": CHANNEL, "name": "general"},
        "message_ts": ROOT_TS,
        "message": {"type": "message", "ts": ROOT_TS, "text": "hi", "user": "U0ALICE"},
        "response_url": "http://127.0.0.1:9/hooks",
        **extra,
    }


async def test_an_org_wide_installs_mention_starts_a_session_keyed_by_the_org() -> None:
    async with running_bot() as bot:
        bot.slack.auth = ORG_WIDE
        mention = _message(f"<@{BOT_USER}> fix the build")
        assert (await bot.event(mention, **_org_wide_envelope())).status == 200
        assert _sent(bot, "message") == [f"{ORG}:{CHANNEL}:{mention['ts']}"]


async def test_an_org_wide_installs_reply_reaches_the_same_session() -> None:
    async with running_bot() as bot:
        bot.slack.auth = ORG_WIDE
        reply = _message("use the staging config", thread_ts=ROOT_TS)
        assert (await bot.event(reply, **_org_wide_envelope())).status == 200
        assert _sent(bot, "message") == [f"{ORG}:{CHANNEL}:{ROOT_TS}"]


async def test_an_org_wide_installs_shortcut_reads_the_threads_session() -> None:
    """Org-wide interaction payloads may carry no `team` at all; the user's is a workspace."""
    async with running_bot() as bot:
        bot.slack.auth = ORG_WIDE
        payload = _shortcut(
            TEAM, None, enterprise={"id": ORG, "name": "Org"}, is_enterprise_install=True
        )
        assert (await bot.interaction(payload)).status == 200
        await eventually(lambda: bot.slack.ephemerals)
        assert _sent(bot, "status") == [f"{ORG}:{CHANNEL}:{ROOT_TS}"]


async def test_an_org_wide_installs_agent_status_lists_the_orgs_sessions() -> None:
    async with running_bot() as bot:
        bot.slack.auth = ORG_WIDE
        answered = await bot.command("", enterprise_id=ORG, is_enterprise_install="true")
        assert answered.status == 200
        assert any(f"'{ORG}:{CHANNEL}:%'" in query for query in bot.restate.queries)


async def test_slacks_stop_button_on_an_org_wide_install_stops_the_threads_task() -> None:
    async with running_bot() as bot:
        bot.slack.auth = ORG_WIDE
        event = {
            "type": "agent_session_stopped",
            "channel": CHANNEL,
            "thread_ts": ROOT_TS,
            "user": "U0ALICE",
            "streaming_message_ts": [],
            "event_ts": _ts(),
        }
        assert (await bot.event(event, **_org_wide_envelope())).status == 200
        await eventually(lambda: _sent(bot, "stop"))
        assert _sent(bot, "stop") == [f"{ORG}:{CHANNEL}:{ROOT_TS}"]


async def test_a_slack_connect_guests_shortcut_reads_the_installations_session() -> None:
    """A guest's shortcut names the guest's own team; the thread is keyed by the host's."""
    async with running_bot(allowed_team_ids=f"{TEAM},{GUEST_TEAM}") as bot:
        payload = _shortcut(GUEST_TEAM, {"id": GUEST_TEAM, "domain": "guests"})
        assert (await bot.interaction(payload)).status == 200
        await eventually(lambda: bot.slack.ephemerals)
        assert _sent(bot, "status") == [f"{TEAM}:{CHANNEL}:{ROOT_TS}"]


async def test_a_slack_connect_guests_agent_status_lists_the_installations_sessions() -> None:
    async with running_bot(allowed_team_ids=f"{TEAM},{GUEST_TEAM}") as bot:
        answered = await bot.command("", team_id=GUEST_TEAM, user_id="U0GUEST")
        assert answered.status == 200
        assert any(f"'{TEAM}:{CHANNEL}:%'" in query for query in bot.restate.queries)


async def test_a_slackbot_notice_in_the_bots_dm_starts_nothing() -> None:
    async with running_bot() as bot:
        notice = _message("Reminder: standup", user="USLACKBOT", channel="D0ALICE")
        notice["channel_type"] = "im"
        assert (await bot.event(notice)).status == 200
        control = _message(f"<@{BOT_USER}> hello")
        assert (await bot.event(control)).status == 200
        assert _sent(bot, "message") == [f"{TEAM}:{CHANNEL}:{control['ts']}"]


async def test_status_typed_in_a_thread_without_a_session_gets_no_answer() -> None:
    async with running_bot() as bot:
        await bot.event(_message("status", thread_ts=ROOT_TS))
        await eventually(lambda: _sent(bot, "status"))
        bot.restate.turns = 1
        await bot.event(_message("status", thread_ts=ROOT_TS))
        await eventually(lambda: bot.slack.ephemerals)
        # One answer: to the "status" said in the agent's thread, none to the first.
        assert len(bot.slack.ephemerals) == 1
