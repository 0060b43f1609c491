"""Slack's rate limits in the sandbox Web API, driven by the real slack_sdk AsyncWebClient: 429
with Retry-After past a limit, per-channel posts, the counters and switch of `/_sandbox/limits`.

The workspace's limiter runs on a clock the tests move, so nothing waits for real time.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.__main__ import parse_settings
from sandbox.slack_workspace import WorkspaceConfig
from tests.sandbox.conftest import FakeClock

Client = TestClient[Any, Any]
REQUIRED = ["--signing-secret=s", "--bot-token=xoxb-t"]


@pytest.fixture
def slack(limited: Client, workspace_config: WorkspaceConfig) -> AsyncWebClient:
    return AsyncWebClient(token=workspace_config.bot_token, base_url=str(limited.make_url("/api/")))


async def limits(client: Client) -> dict[str, Any]:
    resp = await client.get("/_sandbox/limits")
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def post_refused(slack: AsyncWebClient, channel: str) -> SlackApiError:
    with pytest.raises(SlackApiError) as refused:
        await slack.chat_postMessage(channel=channel, text="one too many")
    return refused.value


async def test_a_tier_2_method_answers_429_with_retry_after_after_its_burst(
    slack: AsyncWebClient, limited: Client
) -> None:
    ts = (await slack.chat_postMessage(channel="C0GENERAL", text="react to me"))["ts"]
    names = ["eyes", "tada", "rocket", "star", "fire"]
    for name in names:
        await slack.reactions_add(channel="C0GENERAL", timestamp=ts, name=name)
    for name in names[:4]:
        await slack.reactions_remove(channel="C0GENERAL", timestamp=ts, name=name)
    with pytest.raises(SlackApiError) as refused:
        await slack.reactions_remove(channel="C0GENERAL", timestamp=ts, name="fire")
    response = refused.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.data == {"ok": False, "error": "ratelimited"}
    assert await limits(limited) == {
        "enabled": True,
        "rate_limited": 1,
        "by_method": {"reactions.remove": 1},
        "during_retry_after": 0,
    }
    calls = await (await limited.get("/_sandbox/calls?method=reactions.remove")).json()
    assert [c["http_status"] for c in calls["calls"]] == [200, 200, 200, 200, 429]


async def test_posts_past_the_burst_in_one_channel_are_refused_while_another_still_posts(
    slack: AsyncWebClient, limited: Client
) -> None:
    for _ in range(3):
        await slack.chat_postMessage(channel="C0GENERAL", text="status")
    refused = await post_refused(slack, "general")  # a channel's name counts as its id
    assert refused.response.status_code == 429
    assert refused.response.headers["Retry-After"] == "1"
    assert (await slack.chat_postMessage(channel="C0OTHER", text="elsewhere"))["ok"]
    stored = await (await limited.get("/_sandbox/messages?channel=C0GENERAL")).json()
    assert len(stored["messages"]) == 3  # the refused post never ran


async def test_a_call_inside_the_retry_after_window_is_counted(
    slack: AsyncWebClient, limited: Client, clock: FakeClock
) -> None:
    for _ in range(3):
        await slack.chat_postMessage(channel="C0GENERAL", text="status")
    await post_refused(slack, "C0GENERAL")
    clock.advance(0.5)
    inside = await post_refused(slack, "C0GENERAL")
    assert inside.response.headers["Retry-After"] == "1"
    counts = await limits(limited)
    assert (counts["rate_limited"], counts["during_retry_after"]) == (2, 1)
    assert counts["by_method"] == {"chat.postMessage": 2}
    clock.advance(0.5)
    assert (await slack.chat_postMessage(channel="C0GENERAL", text="waited"))["ok"]
    assert (await limits(limited))["during_retry_after"] == 1


async def test_limits_are_on_by_default_and_disabling_them_lets_everything_through(
    workspace: Client, api_url: str, workspace_config: WorkspaceConfig
) -> None:
    assert (await limits(workspace))["enabled"] is True
    switched = await workspace.post("/_sandbox/limits", json={"enabled": False})
    assert (await switched.json())["enabled"] is False
    slack = AsyncWebClient(token=workspace_config.bot_token, base_url=api_url)
    for _ in range(12):
        await slack.chat_postMessage(channel="C0GENERAL", text="flood")
        await slack.auth_test()
    assert await limits(workspace) == {
        "enabled": False,
        "rate_limited": 0,
        "by_method": {},
        "during_retry_after": 0,
    }
    await workspace.post("/_sandbox/limits", json={"enabled": True})
    assert (await limits(workspace))["enabled"] is True


async def test_unauthenticated_calls_are_answered_before_any_limit(api_url: str) -> None:
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=api_url)
    for _ in range(6):
        with pytest.raises(SlackApiError) as refused:
            await wrong.reactions_remove(channel="C0GENERAL", timestamp="1.1", name="x")
        assert refused.value.response.status_code == 200
        assert refused.value.response["error"] == "invalid_auth"


async def test_reset_clears_the_counters_and_refills_the_buckets(
    slack: AsyncWebClient, limited: Client
) -> None:
    for _ in range(3):
        await slack.chat_postMessage(channel="C0GENERAL", text="status")
    await post_refused(slack, "C0GENERAL")
    await limited.post("/_sandbox/reset")
    assert (await limits(limited))["rate_limited"] == 0
    assert (await slack.chat_postMessage(channel="C0GENERAL", text="fresh"))["ok"]


async def test_the_switch_takes_only_a_boolean(workspace: Client) -> None:
    resp = await workspace.post("/_sandbox/limits", json={"enabled": "maybe"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_request"


async def test_the_event_feed_reports_the_switch_and_each_429_with_the_total(
    slack: AsyncWebClient, limited: Client
) -> None:
    feed = await limited.get("/_sandbox/events")
    assert (await feed.content.readline()) == b": connected\n"
    await limited.post("/_sandbox/limits", json={"enabled": True})
    for _ in range(3):
        await slack.chat_postMessage(channel="C0GENERAL", text="status")
    await post_refused(slack, "C0GENERAL")
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while len(events) < 2:
            if (await feed.content.readline()) == b"event: rate_limits\n":
                events.append(json.loads((await feed.content.readline()).removeprefix(b"data: ")))
    feed.close()
    assert [(e["enabled"], e["rate_limited"]) for e in events] == [(True, 0), (True, 1)]
    assert events[1]["by_method"] == {"chat.postMessage": 1}


@pytest.mark.parametrize(
    ("argv", "env", "enabled"),
    [
        ([], {}, True),
        ([], {"SANDBOX_SLACK_LIMITS": ""}, True),
        ([], {"SANDBOX_SLACK_LIMITS": "off"}, False),
        (["--slack-limits", "off"], {}, False),
        (["--slack-limits=on"], {"SANDBOX_SLACK_LIMITS": "OFF"}, True),
    ],
)
def test_limits_setting_comes_from_the_flag_or_the_environment(
    argv: list[str], env: dict[str, str], enabled: bool
) -> None:
    assert parse_settings([*REQUIRED, *argv], env).slack_limits is enabled


def test_a_limits_setting_other_than_on_or_off_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse_settings(REQUIRED, {"SANDBOX_SLACK_LIMITS": "sometimes"})
    assert "SANDBOX_SLACK_LIMITS" in capsys.readouterr().err
