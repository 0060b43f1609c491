"""The dashboard's names for Slack ids, asked of the sandbox Slack workspace (in-process, on
port 0) through the bot's real rate-limited Web API client: named once, cached with a time to
live and a bound, and shown as the id whenever Slack cannot name it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestServer

from bot.dashboard.data import session_ids
from bot.names import SlackNames, channel_name, user_name
from common.slack_limiter import LimitedWebClient, SlackLimiter
from sandbox.slack_records import Fault
from sandbox.slack_workspace import WorkspaceConfig, create_workspace_app
from sandbox.workspace import WORKSPACE_KEY, Workspace

TOKEN = "xoxb-names-test"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Slack:
    client: LimitedWebClient
    workspace: Workspace

    def asked(self, method: str) -> int:
        return sum(1 for call in self.workspace.records.calls if call["method"] == method)


@pytest.fixture
async def slack() -> AsyncIterator[Slack]:
    config = WorkspaceConfig(bot_token=TOKEN, signing_secret="s")
    server = TestServer(create_workspace_app(config), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        client = LimitedWebClient(
            token=TOKEN,
            base_url=str(server.make_url("/api/")),
            limiter=SlackLimiter(),
            rate_limit_retries=0,
        )
        yield Slack(client, server.app[WORKSPACE_KEY])
    finally:
        await server.close()


async def test_people_and_channels_are_named_by_slack_and_asked_once(slack: Slack) -> None:
    names = SlackNames(slack.client)
    users = ["U0ALICE", "U0BOB", "U0ALICE", None, "dashboard:ops"]
    channels = ["C0GENERAL", "D0ALICE"]
    expected = {
        "users": {"U0ALICE": "alice", "U0BOB": "bob"},
        "channels": {"C0GENERAL": "#general", "D0ALICE": "direct message"},
    }
    assert await names.names(users, channels) == expected
    assert await names.names(users, channels) == expected
    assert (slack.asked("users.info"), slack.asked("conversations.info")) == (2, 2)


async def test_a_name_is_asked_again_after_an_hour_and_the_cache_stays_bounded(
    slack: Slack,
) -> None:
    clock = Clock()
    names = SlackNames(slack.client, clock, max_entries=2)
    for user in ("U0ALICE", "U0BOB"):
        await names.names([user], [])
    await names.names([], ["C0GENERAL"])
    assert len(names) == 2, "the least recently shown of three names made room"
    await names.names(["U0BOB", "U0ALICE"], [])
    assert slack.asked("users.info") == 3, "alice was forgotten, bob was not"
    clock.now += 3601
    await names.names(["U0ALICE"], [])
    assert slack.asked("users.info") == 4, "an hour on, alice is asked again"


async def test_an_id_slack_cannot_name_shows_as_itself_and_is_not_asked_on_every_page(
    slack: Slack,
) -> None:
    clock = Clock()
    names = SlackNames(slack.client, clock)
    # Both lookups are refused, whichever Slack gets first.
    slack.workspace.faults.add(Fault(method="users.info", error="user_not_visible", count=2))
    empty: dict[str, dict[str, str]] = {"users": {}, "channels": {}}
    assert await names.names(["U0ALICE", "U0NOBODY"], []) == empty
    assert await names.names(["U0ALICE", "U0NOBODY"], []) == empty
    assert slack.asked("users.info") == 2
    clock.now += 301
    assert (await names.names(["U0ALICE"], []))["users"] == {"U0ALICE": "alice"}


async def test_a_rate_limited_lookup_is_asked_again_soon(slack: Slack) -> None:
    # Generous: the limiter keeps the method closed for the 429's Retry-After (1 s at least).
    clock = Clock()
    names = SlackNames(slack.client, clock, wait=10)
    slack.workspace.faults.add(Fault(method="conversations.info", status=429, retry_after=1))
    assert (await names.names([], ["C0GENERAL"]))["channels"] == {}
    assert (await names.names([], ["C0GENERAL"]))["channels"] == {}, "not on every refresh"
    clock.now += 16
    assert (await names.names([], ["C0GENERAL"]))["channels"] == {"C0GENERAL": "#general"}
    assert slack.asked("conversations.info") == 2


async def test_a_slow_slack_answers_the_next_page_and_the_page_does_not_wait_for_it(
    slack: Slack,
) -> None:
    names = SlackNames(slack.client, wait=0.01)
    slack.workspace.faults.add(Fault(method="users.info", delay=0.3))
    assert (await names.names(["U0BOB"], []))["users"] == {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not (await names.names(["U0BOB"], []))["users"]:
        assert loop.time() < deadline, "the slow lookup never landed in the cache"
        await asyncio.sleep(0.02)
    assert slack.asked("users.info") == 1, "pages asking meanwhile share the one lookup"
    await names.close()


async def test_without_a_client_every_id_shows_as_itself() -> None:
    assert await SlackNames(None).names(["U0ALICE"], ["C0GENERAL"]) == {
        "users": {},
        "channels": {},
    }


def test_slack_objects_are_named_as_slack_shows_them() -> None:
    assert user_name({"name": "al", "real_name": "Al B", "profile": {"display_name": ""}}) == "Al B"
    assert user_name({"name": "al", "profile": {"display_name": "Ally"}}) == "Ally"
    assert user_name({"name": "al"}) == "al"
    assert user_name({}) is None
    assert channel_name({"name": "deploys", "is_channel": True}) == "#deploys"
    assert channel_name({"is_mpim": True, "name": "mpdm-a--b-1"}) == "group direct message"
    assert channel_name({"is_im": True, "user": "U0ALICE"}) == "direct message"


def test_a_session_page_names_everyone_it_shows() -> None:
    detail = {
        "channel_id": "C0GENERAL",
        "started_by": "U1",
        "ship": {"wanted_by": "U2"},
        "turns": [{"user_id": "U3"}, {"kind": "answer"}],
        "runs": [
            {"trigger_user": "U4", "interrupted_by_user": "U5", "steering": [{"user_id": "U6"}]}
        ],
        "approvals": [{"by_user": "U7"}],
    }
    users, channels = session_ids(detail)
    assert users == {f"U{i}" for i in range(1, 8)}
    assert channels == {"C0GENERAL"}
