"""One team for a thread's key, whichever way the thread is reached: Enterprise Grid org-wide
installs (no installation team on the event), Slack Connect guests' shortcuts and commands,
Slack's own stop button; and the messages that are nobody's turn (Slackbot, "status" where the
agent has no session).

Payloads are Slack's own shapes, kept in `tests/fixtures/slack/` with the reference each comes
from: the Events API envelope with `authorizations` (org-wide: no installation team), slash
commands with `enterprise_id` and `is_enterprise_install`, message shortcuts and
`agent_session_stopped`.
"""

from __future__ import annotations

import time

from tests.slack_fixtures import load, with_ids
from tests.unit.bot_fakes import BOT_USER, CHANNEL, GUEST_TEAM, TEAM, Bot, eventually, running_bot

ORG = "E0ORG"
ROOT_TS = "1732611000.000001"
ORG_WIDE = {"team_id": ORG, "enterprise_id": ORG, "user_id": BOT_USER, "bot_id": "B0BOT"}


def _ts() -> str:
    now = time.time_ns() // 1000
    return f"{now // 1_000_000}.{now % 1_000_000:06d}"


def _sent(bot: Bot, handler: str) -> list[str]:
    return [key for key, name in bot.restate.sent if name == handler]


async def test_an_org_wide_installs_mention_starts_a_session_keyed_by_the_org() -> None:
    async with running_bot() as bot:
        bot.slack.auth = ORG_WIDE
        mention = with_ids(load("event_mention_org_wide"), ts=_ts())
        assert (await bot.deliver(mention)).status == 200
        assert _sent(bot, "message") == [f"{ORG}:{CHANNEL}:{mention['event']['ts']}"]


async def test_an_org_wide_installs_reply_reaches_the_same_session() -> None:
    async with running_bot() as bot:
        bot.slack.auth = ORG_WIDE
        reply = with_ids(load("event_reply_org_wide"), ts=_ts(), thread_ts=ROOT_TS)
        assert (await bot.deliver(reply)).status == 200
        assert _sent(bot, "message") == [f"{ORG}:{CHANNEL}:{ROOT_TS}"]


async def test_an_org_wide_installs_shortcut_reads_the_threads_session() -> None:
    """Org-wide interaction payloads may carry no `team` at all; the user's is a workspace."""
    async with running_bot() as bot:
        bot.slack.auth = ORG_WIDE
        payload = load("interaction_shortcut_org_wide")
        assert (await bot.interaction(payload)).status == 200
        await eventually(lambda: bot.slack.ephemerals)
        assert _sent(bot, "status") == [f"{ORG}:{CHANNEL}:{ROOT_TS}"]


async def test_an_org_wide_installs_agent_status_lists_the_orgs_sessions() -> None:
    async with running_bot() as bot:
        bot.slack.auth = ORG_WIDE
        answered = await bot.slash_command(load("command_agent_status_org_wide"))
        assert answered.status == 200
        assert any(f"'{ORG}:{CHANNEL}:%'" in query for query in bot.restate.queries)


async def test_slacks_stop_button_on_an_org_wide_install_stops_the_threads_task() -> None:
    async with running_bot() as bot:
        bot.slack.auth = ORG_WIDE
        stopped = with_ids(
            load("event_agent_session_stopped_org_wide"), event_ts=_ts(), thread_ts=ROOT_TS
        )
        assert (await bot.deliver(stopped)).status == 200
        await eventually(lambda: _sent(bot, "stop"))
        assert _sent(bot, "stop") == [f"{ORG}:{CHANNEL}:{ROOT_TS}"]


async def test_a_slack_connect_guests_shortcut_reads_the_installations_session() -> None:
    """A guest's shortcut names the guest's own team; the thread is keyed by the host's."""
    async with running_bot(allowed_team_ids=f"{TEAM},{GUEST_TEAM}") as bot:
        payload = load("interaction_shortcut_slack_connect_guest")
        assert (await bot.interaction(payload)).status == 200
        await eventually(lambda: bot.slack.ephemerals)
        assert _sent(bot, "status") == [f"{TEAM}:{CHANNEL}:{ROOT_TS}"]


async def test_a_slack_connect_guests_agent_status_lists_the_installations_sessions() -> None:
    async with running_bot(allowed_team_ids=f"{TEAM},{GUEST_TEAM}") as bot:
        answered = await bot.slash_command(load("command_agent_status_slack_connect_guest"))
        assert answered.status == 200
        assert any(f"'{TEAM}:{CHANNEL}:%'" in query for query in bot.restate.queries)


async def test_a_slackbot_notice_in_the_bots_dm_starts_nothing() -> None:
    async with running_bot() as bot:
        notice = with_ids(load("event_slackbot_dm"), ts=_ts())
        assert (await bot.deliver(notice)).status == 200
        control = with_ids(load("event_mention"), ts=_ts())
        assert (await bot.deliver(control)).status == 200
        assert _sent(bot, "message") == [f"{TEAM}:{CHANNEL}:{control['event']['ts']}"]


async def test_status_typed_in_a_thread_without_a_session_gets_no_answer() -> None:
    async with running_bot() as bot:
        said = "event_status_in_thread"
        await bot.deliver(with_ids(load(said), ts=_ts(), thread_ts=ROOT_TS))
        await eventually(lambda: _sent(bot, "status"))
        bot.restate.turns = 1
        await bot.deliver(with_ids(load(said), ts=_ts(), thread_ts=ROOT_TS))
        await eventually(lambda: bot.slack.ephemerals)
        # One answer: to the "status" said in the agent's thread, none to the first.
        assert len(bot.slack.ephemerals) == 1
