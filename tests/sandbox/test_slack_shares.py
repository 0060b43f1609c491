"""A file a person uploads through the control API (`POST /_sandbox/messages` with `files`),
as Slack's Web API shows it: shared in its channel (`files.info`'s `channels`/`ims` and
`shares`, with the person as sharer and the thread it went to), listed for that channel, its
permalink opening that thread, and carried whole by the message event, conversations.history and
conversations.replies; the upload bound counts UTF-8 bytes, as the page does."""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack_shares import MAX_UPLOAD_BYTES
from sandbox.slack_workspace import WorkspaceConfig
from tests.sandbox.conftest import FakeBot

Client = TestClient[Any, Any]
Eventually = Callable[..., Awaitable[Any]]

LOG = "FAIL: test_summer_meeting_in_berlin_is_in_daylight_saving_time\n"


@pytest.fixture
def slack(api_url: str, workspace_config: WorkspaceConfig) -> AsyncWebClient:
    return AsyncWebClient(token=workspace_config.bot_token, base_url=api_url)


async def post(workspace: Client, **body: Any) -> aiohttp.ClientResponse:
    raw = io.BytesIO(json.dumps(body).encode())  # a large body is streamed, not sent at once
    headers = {"Content-Type": "application/json"}
    return await workspace.post("/_sandbox/messages", data=raw, headers=headers)


async def say(workspace: Client, **body: Any) -> dict[str, Any]:
    resp = await post(workspace, **body)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def share_in_thread(workspace: Client, channel: str = "C0GENERAL") -> tuple[str, str]:
    """Bob starts a thread, alice replies with build.log; returns (root ts, reply ts)."""
    root = await say(workspace, channel=channel, user="U0BOB", text="the build is red")
    upload = {"name": "build.log", "content": LOG}
    reply = await say(
        workspace,
        channel=channel,
        user="U0ALICE",
        text="here is the log",
        thread_ts=root["ts"],
        files=[upload],
    )
    return str(root["ts"]), str(reply["ts"])


async def files_of(workspace: Client, **params: str) -> list[dict[str, Any]]:
    resp = await workspace.get("/_sandbox/files", params=params)
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["files"])


async def file_id_of(workspace: Client, channel: str, ts: str) -> str:
    resp = await workspace.get("/_sandbox/messages", params={"channel": channel, "thread_ts": ts})
    [message] = [m for m in (await resp.json())["messages"] if m["ts"] == ts]
    return str(message["files"][0]["id"])


async def test_a_persons_upload_is_listed_in_the_channel_it_was_shared_in(
    workspace: Client,
) -> None:
    _, reply_ts = await share_in_thread(workspace)
    file_id = await file_id_of(workspace, "C0GENERAL", reply_ts)
    assert [f["id"] for f in await files_of(workspace, channel="C0GENERAL")] == [file_id]
    assert await files_of(workspace, channel="C0OTHER") == []


async def test_a_persons_upload_permalink_opens_the_thread_it_was_shared_in(
    workspace: Client, slack: AsyncWebClient
) -> None:
    root_ts, reply_ts = await share_in_thread(workspace)
    info = await slack.files_info(file=await file_id_of(workspace, "C0GENERAL", reply_ts))
    async with (
        aiohttp.ClientSession() as session,
        session.get(info["file"]["permalink"], allow_redirects=False) as resp,
    ):
        assert resp.status == 302
        assert resp.headers["Location"] == f"/#channel=C0GENERAL&thread={root_ts}"


async def test_files_info_names_the_person_as_uploader_and_sharer_of_the_thread_reply(
    workspace: Client, slack: AsyncWebClient
) -> None:
    root_ts, reply_ts = await share_in_thread(workspace)
    info = await slack.files_info(file=await file_id_of(workspace, "C0GENERAL", reply_ts))
    file = info["file"]
    assert file["user"] == "U0ALICE"
    assert (file["channels"], file["groups"], file["ims"]) == (["C0GENERAL"], [], [])
    assert file["is_public"] is True
    [share] = file["shares"]["public"]["C0GENERAL"]
    assert share["share_user_id"] == "U0ALICE"
    assert (share["ts"], share["thread_ts"]) == (reply_ts, root_ts)
    assert (share["reply_users"], share["reply_count"]) == (["U0ALICE"], 1)
    assert share["channel_name"] == "general"


async def test_a_persons_upload_in_the_dm_is_a_private_share(
    workspace: Client, slack: AsyncWebClient
) -> None:
    upload = {"name": "notes.txt", "content": "hi"}
    sent = await say(workspace, channel="D0ALICE", user="U0ALICE", files=[upload])
    file = (await slack.files_info(file=await file_id_of(workspace, "D0ALICE", sent["ts"])))["file"]
    assert (file["channels"], file["ims"], file["is_public"]) == ([], ["D0ALICE"], False)
    [share] = file["shares"]["private"]["D0ALICE"]
    assert (share["ts"], share["share_user_id"]) == (sent["ts"], "U0ALICE")
    assert not {"thread_ts", "channel_name"} & set(share)


async def test_the_bots_own_upload_still_names_the_bot_as_sharer(
    workspace: Client, slack: AsyncWebClient
) -> None:
    uploaded = await slack.files_upload_v2(channel="C0GENERAL", content="x", filename="a.txt")
    file = (await slack.files_info(file=uploaded["file"]["id"]))["file"]
    [share] = file["shares"]["public"]["C0GENERAL"]
    assert (file["user"], share["share_user_id"]) == ("U0BOT", "U0BOT")


async def test_the_event_history_and_replies_carry_the_persons_file_with_its_uploader(
    workspace: Client, slack: AsyncWebClient, bot: FakeBot, eventually: Eventually
) -> None:
    root_ts, reply_ts = await share_in_thread(workspace)

    def shared() -> list[dict[str, Any]]:
        events = [json.loads(r.body)["event"] for r in bot.received]
        return [e for e in events if e.get("ts") == reply_ts]

    [event] = await eventually(shared)
    assert (event["subtype"], event["user"], event["thread_ts"]) == (
        "file_share",
        "U0ALICE",
        root_ts,
    )
    [in_event] = event["files"]
    assert (in_event["user"], in_event["name"], in_event["size"]) == (
        "U0ALICE",
        "build.log",
        len(LOG.encode()),
    )
    replies = await slack.conversations_replies(channel="C0GENERAL", ts=root_ts)
    assert replies["messages"][1]["files"] == [in_event]
    history = await slack.conversations_history(channel="C0GENERAL")
    [root] = history["messages"]
    assert (root["reply_users"], root["reply_count"]) == (["U0ALICE"], 1)
    auth = {"Authorization": f"Bearer {slack.token}"}
    async with (
        aiohttp.ClientSession(headers=auth) as session,
        session.get(in_event["url_private_download"]) as resp,
    ):
        assert await resp.text() == LOG


async def test_the_upload_bound_counts_utf8_bytes_and_the_refusal_names_it(
    workspace: Client,
) -> None:
    at_bound = "é" * (MAX_UPLOAD_BYTES // 2)  # two bytes each in UTF-8
    sent = {"channel": "C0GENERAL", "user": "U0ALICE"}
    resp = await post(workspace, **sent, files=[{"name": "at.txt", "content": at_bound}])
    assert resp.status == 200, await resp.text()

    over = await post(workspace, **sent, files=[{"name": "over.txt", "content": at_bound + "é"}])
    assert over.status == 400
    body = await over.json()
    assert body["error"] == "invalid_request"
    [detail] = body["details"]
    assert detail["loc"] == ["files", 0, "content"]
    assert f"at most {MAX_UPLOAD_BYTES} bytes" in detail["msg"]
    names = [f["name"] for f in await files_of(workspace)]
    assert names == ["at.txt"]
