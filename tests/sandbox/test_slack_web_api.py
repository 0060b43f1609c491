"""The sandbox Web API, driven by the real slack_sdk AsyncWebClient and by raw HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack_workspace import WorkspaceConfig

Client = TestClient[Any, Any]


@pytest.fixture
def slack(api_url: str, workspace_config: WorkspaceConfig) -> AsyncWebClient:
    return AsyncWebClient(token=workspace_config.bot_token, base_url=api_url)


async def thread_view(workspace: Client, channel: str, ts: str) -> list[dict[str, Any]]:
    resp = await workspace.get("/_sandbox/messages", params={"channel": channel, "thread_ts": ts})
    messages: list[dict[str, Any]] = (await resp.json())["messages"]
    return messages


async def test_auth_test_identifies_the_bot_user(slack: AsyncWebClient, api_url: str) -> None:
    resp = await slack.auth_test()
    assert resp["ok"] is True
    assert resp["user_id"] == "U0BOT"
    assert resp["bot_id"] == "B0BOT"
    assert resp["team_id"] == "T0SANDBOX"
    assert resp["is_enterprise_install"] is False
    assert api_url.startswith(resp["url"])


async def test_post_update_and_react_change_the_stored_message(
    slack: AsyncWebClient, workspace: Client
) -> None:
    posted = await slack.chat_postMessage(channel="C0GENERAL", text="working…")
    ts = posted["ts"]
    assert posted["channel"] == "C0GENERAL"
    assert posted["message"]["user"] == "U0BOT"
    assert posted["message"]["bot_id"] == "B0BOT"
    assert posted["message"]["ts"] == ts

    stop = [{"type": "actions", "elements": [{"type": "button", "action_id": "stop"}]}]
    updated = await slack.chat_update(channel="C0GENERAL", ts=ts, text="done", blocks=stop)
    assert updated["ts"] == ts
    assert updated["text"] == "done"
    assert updated["message"]["blocks"][0]["block_id"]

    await slack.reactions_add(channel="C0GENERAL", timestamp=ts, name="eyes")
    await slack.reactions_add(channel="C0GENERAL", timestamp=ts, name="white_check_mark")
    await slack.reactions_remove(channel="C0GENERAL", timestamp=ts, name="eyes")

    [message] = await thread_view(workspace, "C0GENERAL", ts)
    assert message["text"] == "done"
    assert message["edited"] == 1
    assert message["reactions"] == [{"name": "white_check_mark", "users": ["U0BOT"], "count": 1}]


async def test_thread_replies_are_returned_in_ts_order(slack: AsyncWebClient) -> None:
    root = await slack.chat_postMessage(channel="general", text="root")
    first = await slack.chat_postMessage(channel="C0GENERAL", text="one", thread_ts=root["ts"])
    second = await slack.chat_postMessage(channel="C0GENERAL", text="two", thread_ts=root["ts"])
    assert first["message"]["thread_ts"] == root["ts"]
    replies = await slack.conversations_replies(channel="C0GENERAL", ts=root["ts"])
    assert [m["ts"] for m in replies["messages"]] == [root["ts"], first["ts"], second["ts"]]
    assert replies["messages"][0]["reply_count"] == 2
    assert replies["has_more"] is False


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ({"method": "chat.postMessage", "text": "x"}, "channel_not_found"),
        ({"method": "chat.postMessage", "channel": "C0NOPE", "text": "x"}, "channel_not_found"),
        ({"method": "chat.postMessage", "channel": "C0GENERAL"}, "no_text"),
        ({"method": "chat.update", "channel": "C0GENERAL", "ts": "1.000001", "text": "x"}, None),
        (
            {"method": "reactions.add", "channel": "C0GENERAL", "timestamp": "1.1", "name": "x"},
            None,
        ),
        ({"method": "users.info", "user": "U0NOBODY"}, "user_not_found"),
        ({"method": "nope.nothing"}, "unknown_method"),
    ],
)
async def test_api_errors_raise_slack_api_error(
    slack: AsyncWebClient, call: dict[str, Any], error: str | None
) -> None:
    method = call.pop("method")
    with pytest.raises(SlackApiError) as info:
        await slack.api_call(method, json=call)
    assert info.value.response.status_code == 200
    assert info.value.response["ok"] is False
    assert info.value.response["error"] == (error or "message_not_found")


async def test_missing_or_wrong_token_is_rejected(api_url: str) -> None:
    with pytest.raises(SlackApiError) as missing:
        await AsyncWebClient(base_url=api_url).auth_test()
    assert missing.value.response["error"] == "not_authed"
    with pytest.raises(SlackApiError) as wrong:
        await AsyncWebClient(token="xoxb-wrong", base_url=api_url).auth_test()
    assert wrong.value.response["error"] == "invalid_auth"


async def test_reacting_twice_or_removing_absent_reaction_fails(slack: AsyncWebClient) -> None:
    ts = (await slack.chat_postMessage(channel="C0GENERAL", text="hi"))["ts"]
    await slack.reactions_add(channel="C0GENERAL", timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError, match="already_reacted"):
        await slack.reactions_add(channel="C0GENERAL", timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError, match="no_reaction"):
        await slack.reactions_remove(channel="C0GENERAL", timestamp=ts, name="tada")


async def test_bot_cannot_update_or_delete_a_users_message(
    slack: AsyncWebClient, workspace: Client
) -> None:
    body = {"channel": "C0GENERAL", "user": "U0ALICE", "text": "mine"}
    ts = (await (await workspace.post("/_sandbox/messages", json=body)).json())["ts"]
    with pytest.raises(SlackApiError, match="cant_update_message"):
        await slack.chat_update(channel="C0GENERAL", ts=ts, text="hijacked")
    with pytest.raises(SlackApiError, match="cant_delete_message"):
        await slack.chat_delete(channel="C0GENERAL", ts=ts)


async def test_injected_rate_limit_answers_429_with_retry_after(
    slack: AsyncWebClient, workspace: Client
) -> None:
    fault = {"method": "chat.postMessage", "count": 2, "status": 429, "retry_after": 7}
    assert (await workspace.post("/_sandbox/faults", json=fault)).status == 200
    for _ in range(2):
        with pytest.raises(SlackApiError) as info:
            await slack.chat_postMessage(channel="C0GENERAL", text="x")
        assert info.value.response.status_code == 429
        assert info.value.response.headers["Retry-After"] == "7"
        assert info.value.response["error"] == "ratelimited"
    assert (await slack.chat_postMessage(channel="C0GENERAL", text="x"))["ok"]


async def test_rate_limit_retry_handler_retries_after_429(
    api_url: str, workspace: Client, workspace_config: WorkspaceConfig
) -> None:
    fault = {"method": "chat.postMessage", "count": 1, "status": 429, "retry_after": 0}
    await workspace.post("/_sandbox/faults", json=fault)
    client = AsyncWebClient(
        token=workspace_config.bot_token,
        base_url=api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    assert (await client.chat_postMessage(channel="C0GENERAL", text="x"))["ok"]
    calls = (await (await workspace.get("/_sandbox/calls?method=chat.postMessage")).json())["calls"]
    assert [c["http_status"] for c in calls] == [429, 200]


async def test_error_status_and_delay_faults(slack: AsyncWebClient, workspace: Client) -> None:
    await workspace.post("/_sandbox/faults", json={"method": "auth.test", "status": 500})
    await workspace.post("/_sandbox/faults", json={"method": "auth.test", "error": "fatal_error"})
    await workspace.post("/_sandbox/faults", json={"method": "auth.test", "delay": 0.3})
    with pytest.raises(SlackApiError) as server_error:
        await slack.auth_test()
    assert server_error.value.response.status_code == 500
    with pytest.raises(SlackApiError, match="fatal_error"):
        await slack.auth_test()
    started = time.monotonic()
    assert (await slack.auth_test())["ok"]
    assert time.monotonic() - started >= 0.3


async def test_cleared_faults_no_longer_fire(slack: AsyncWebClient, workspace: Client) -> None:
    await workspace.post("/_sandbox/faults", json={"method": "auth.test", "error": "x"})
    await workspace.delete("/_sandbox/faults")
    assert (await slack.auth_test())["ok"]


async def test_form_body_with_json_encoded_blocks_and_token_param(
    workspace: Client, workspace_config: WorkspaceConfig
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    form = {"token": workspace_config.bot_token, "channel": "C0GENERAL", "text": "hi"}
    resp = await workspace.post("/api/chat.postMessage", data=form | {"blocks": json.dumps(blocks)})
    data = await resp.json()
    assert data["ok"] is True
    assert data["message"]["blocks"][0]["text"]["text"] == "*hi*"
    bad = await workspace.post("/api/chat.postMessage", data=form | {"blocks": "[not json"})
    assert (await bad.json())["error"] == "invalid_blocks_format"


async def test_token_inside_a_json_body_is_not_accepted(
    workspace: Client, workspace_config: WorkspaceConfig
) -> None:
    body = {"token": workspace_config.bot_token, "channel": "C0GENERAL", "text": "x"}
    resp = await workspace.post("/api/chat.postMessage", json=body)
    assert resp.status == 200
    assert (await resp.json()) == {"ok": False, "error": "not_authed"}


async def test_permalinks_use_slacks_archive_format(slack: AsyncWebClient, api_url: str) -> None:
    root = await slack.chat_postMessage(channel="C0GENERAL", text="root")
    reply = await slack.chat_postMessage(channel="C0GENERAL", text="r", thread_ts=root["ts"])
    origin = api_url.removesuffix("/api/")
    link = await slack.chat_getPermalink(channel="C0GENERAL", message_ts=root["ts"])
    assert link["permalink"] == f"{origin}/archives/C0GENERAL/p{root['ts'].replace('.', '')}"
    reply_link = await slack.chat_getPermalink(channel="C0GENERAL", message_ts=reply["ts"])
    assert reply_link["permalink"].endswith(f"?thread_ts={root['ts']}&cid=C0GENERAL")


async def test_timestamps_are_unique_and_strictly_increasing(
    slack: AsyncWebClient, workspace: Client
) -> None:
    # Thirty posts in one channel at once are far past Slack's per-channel limit.
    assert (await workspace.post("/_sandbox/limits", json={"enabled": False})).status == 200
    stamps = [
        (await slack.chat_postMessage(channel="C0GENERAL", text="x"))["ts"] for _ in range(30)
    ]
    keys = [tuple(int(p) for p in ts.split(".")) for ts in stamps]
    assert keys == sorted(set(keys))
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)


async def test_info_ephemeral_delete_and_status_methods(
    slack: AsyncWebClient, workspace: Client
) -> None:
    assert (await slack.conversations_info(channel="D0ALICE"))["channel"]["is_im"] is True
    assert (await slack.users_info(user="U0BOB"))["user"]["is_bot"] is False
    eph = await slack.chat_postEphemeral(channel="C0GENERAL", user="U0BOB", text="psst")
    assert eph["message_ts"]
    with pytest.raises(SlackApiError, match="user_not_in_channel"):
        await slack.chat_postEphemeral(channel="D0ALICE", user="U0BOB", text="psst")
    ts = (await slack.chat_postMessage(channel="D0ALICE", text="bye"))["ts"]
    assert (await slack.chat_delete(channel="D0ALICE", ts=ts))["ts"] == ts
    await slack.assistant_threads_setStatus(channel_id="D0ALICE", thread_ts=ts, status="thinking")
    assert await thread_view(workspace, "D0ALICE", ts) == []


async def test_every_call_is_recorded(slack: AsyncWebClient, workspace: Client) -> None:
    await slack.chat_postMessage(channel="C0GENERAL", text="recorded")
    with pytest.raises(SlackApiError):
        await slack.chat_postMessage(channel="C0NOPE", text="x")
    calls = (await (await workspace.get("/_sandbox/calls?method=chat.postMessage")).json())["calls"]
    assert [c["response"]["ok"] for c in calls] == [True, False]
    assert calls[0]["args"]["text"] == "recorded"
    assert "token" not in calls[0]["args"]
    assert calls[0]["http_status"] == 200
    assert calls[0]["wall"] <= calls[1]["wall"]
    assert calls[0]["monotonic"] <= calls[1]["monotonic"]
