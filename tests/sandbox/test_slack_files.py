"""File uploads in the sandbox workspace, driven by the real slack_sdk `files_upload_v2`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.events import Skip, to_incoming
from sandbox.slack_workspace import WorkspaceConfig
from tests.sandbox.conftest import FakeBot

Client = TestClient[Any, Any]
Eventually = Callable[..., Awaitable[Any]]

DIFF = "".join(
    [
        "diff --git a/app.py b/app.py\n",
        "--- a/app.py\n",
        "+++ b/app.py\n",
        "@@ -1,2 +1,2 @@\n",
        "-print('hello')\n",
        "+print('hello, world')\n",
    ]
)


@pytest.fixture
def slack(api_url: str, workspace_config: WorkspaceConfig) -> AsyncWebClient:
    return AsyncWebClient(token=workspace_config.bot_token, base_url=api_url)


async def get_json(workspace: Client, path: str, **params: str) -> Any:
    resp = await workspace.get(path, params=params)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def thread_view(workspace: Client, channel: str, ts: str) -> list[dict[str, Any]]:
    data = await get_json(workspace, "/_sandbox/messages", channel=channel, thread_ts=ts)
    messages: list[dict[str, Any]] = data["messages"]
    return messages


async def upload_diff(slack: AsyncWebClient, channel: str = "C0GENERAL") -> tuple[str, Any]:
    """Post a root message and upload DIFF into its thread; returns (root ts, response)."""
    root = await slack.chat_postMessage(channel=channel, text="working on it")
    uploaded = await slack.files_upload_v2(
        channel=channel,
        thread_ts=root["ts"],
        content=DIFF,
        filename="change.diff",
        title="Proposed change",
        initial_comment="Here is the diff",
    )
    return root["ts"], uploaded


async def reserve(slack: AsyncWebClient, length: int, filename: str = "x.txt") -> tuple[str, str]:
    got = await slack.files_getUploadURLExternal(filename=filename, length=length)
    return got["file_id"], got["upload_url"]


async def post_bytes(url: str, **kwargs: Any) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, **kwargs) as resp:
        return resp.status, await resp.text()


async def test_content_upload_lands_in_the_thread_with_the_comment_as_text(
    slack: AsyncWebClient, workspace: Client
) -> None:
    root_ts, uploaded = await upload_diff(slack)
    file = uploaded["file"]
    assert uploaded["files"] == [file]
    assert file["id"].startswith("F")
    assert (file["name"], file["title"]) == ("change.diff", "Proposed change")
    assert (file["filetype"], file["pretty_type"]) == ("diff", "Diff")
    assert file["mimetype"].startswith("text/")
    assert file["size"] == len(DIFF.encode())
    assert file["user"] == "U0BOT"
    assert file["mode"] == "hosted"
    assert file["url_private"].endswith(f"/files-pri/T0SANDBOX-{file['id']}/change.diff")
    assert file["url_private_download"].endswith(f"-{file['id']}/download/change.diff")
    # Slack shares asynchronously: the completion answer does not yet say where the file went.
    assert (file["channels"], file["shares"]) == ([], {})

    root, reply = await thread_view(workspace, "C0GENERAL", root_ts)
    assert root["reply_count"] == 1
    assert reply["text"] == "Here is the diff"
    assert reply["bot_id"] == "B0BOT"
    assert reply["thread_ts"] == root_ts
    [shared] = reply["files"]
    assert shared["id"] == file["id"]
    assert shared["is_public"] is True
    replies = await slack.conversations_replies(channel="C0GENERAL", ts=root_ts)
    assert replies["messages"][1]["files"][0]["name"] == "change.diff"
    assert replies["messages"][1]["upload"] is False


async def test_files_info_lists_the_thread_the_file_was_shared_in(
    slack: AsyncWebClient, workspace: Client
) -> None:
    root_ts, uploaded = await upload_diff(slack)
    info = await slack.files_info(file=uploaded["file"]["id"])
    file = info["file"]
    assert file["channels"] == ["C0GENERAL"]
    assert (file["groups"], file["ims"]) == ([], [])
    [share] = file["shares"]["public"]["C0GENERAL"]
    [_, reply] = await thread_view(workspace, "C0GENERAL", root_ts)
    assert share["ts"] == reply["ts"]
    assert share["thread_ts"] == root_ts
    assert share["channel_name"] == "general"
    assert share["reply_count"] == 1
    assert info["comments"] == []


async def test_the_sdk_makes_exactly_slacks_three_steps(
    slack: AsyncWebClient, workspace: Client
) -> None:
    root_ts, uploaded = await upload_diff(slack)
    calls = (await get_json(workspace, "/_sandbox/calls"))["calls"]
    methods = [c["method"] for c in calls]
    assert methods == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    reserve_args, complete_args = calls[1]["args"], calls[2]["args"]
    assert reserve_args == {"filename": "change.diff", "length": str(len(DIFF.encode()))}
    assert json.loads(complete_args["files"]) == [
        {"id": uploaded["file"]["id"], "title": "Proposed change"}
    ]
    assert complete_args["channel_id"] == "C0GENERAL"
    assert complete_args["thread_ts"] == root_ts
    assert complete_args["initial_comment"] == "Here is the diff"


async def test_bytes_upload_round_trips_through_url_private(
    slack: AsyncWebClient, workspace_config: WorkspaceConfig
) -> None:
    blob = bytes(range(256)) * 40
    uploaded = await slack.files_upload_v2(channel="C0GENERAL", file=blob, filename="blob.bin")
    file = uploaded["file"]
    assert file["title"] == "blob.bin"
    assert (file["filetype"], file["mimetype"]) == ("binary", "application/octet-stream")
    auth = {"Authorization": f"Bearer {workspace_config.bot_token}"}
    async with aiohttp.ClientSession(headers=auth) as session:
        async with session.get(file["url_private"]) as resp:
            assert resp.status == 200
            assert await resp.read() == blob
            assert resp.headers["Content-Disposition"].startswith("inline")
        async with session.get(file["url_private_download"]) as resp:
            assert await resp.read() == blob
            assert resp.headers["Content-Disposition"].startswith("attachment")


async def test_url_private_without_the_token_gets_the_sign_in_page(
    slack: AsyncWebClient,
) -> None:
    _, uploaded = await upload_diff(slack)
    async with aiohttp.ClientSession() as session:
        async with session.get(uploaded["file"]["url_private"], allow_redirects=False) as resp:
            assert resp.status == 302
        async with session.get(uploaded["file"]["url_private"]) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            assert "diff --git" not in await resp.text()


async def test_file_share_event_is_delivered_and_the_bot_ignores_its_own_upload(
    slack: AsyncWebClient, workspace: Client, bot: FakeBot, eventually: Eventually
) -> None:
    root_ts, uploaded = await upload_diff(slack)

    def file_shares() -> list[dict[str, Any]]:
        bodies = [json.loads(r.body) for r in bot.received]
        return [b for b in bodies if b["event"].get("subtype") == "file_share"]

    [envelope] = await eventually(file_shares)
    event = envelope["event"]
    assert envelope["type"] == "event_callback"
    assert event["type"] == "message"
    assert (event["user"], event["bot_id"]) == ("U0BOT", "B0BOT")
    assert event["text"] == "Here is the diff"
    assert (event["channel"], event["channel_type"]) == ("C0GENERAL", "channel")
    assert event["thread_ts"] == root_ts
    assert event["event_ts"] == event["ts"]
    assert event["files"][0]["id"] == uploaded["file"]["id"]
    assert event["upload"] is False
    assert event["display_as_bot"] is False

    decision = to_incoming(event, envelope["team_id"], "U0BOT", received_at=0.0)
    assert isinstance(decision, Skip)

    deliveries = (await get_json(workspace, "/_sandbox/deliveries"))["deliveries"]
    [delivery] = [d for d in deliveries if d["event_id"] == envelope["event_id"]]
    assert (delivery["event_subtype"], delivery["outcome"]) == ("file_share", "ok")


async def test_upload_to_a_dm_by_user_id_is_a_private_share(
    slack: AsyncWebClient, workspace: Client
) -> None:
    uploaded = await slack.files_upload_v2(channels=["U0ALICE"], content="hi", filename="a.txt")
    info = await slack.files_info(file=uploaded["file"]["id"])
    assert info["file"]["ims"] == ["D0ALICE"]
    assert info["file"]["is_public"] is False
    assert list(info["file"]["shares"]) == ["private"]
    [message] = (await get_json(workspace, "/_sandbox/messages", channel="D0ALICE"))["messages"]
    assert message["files"][0]["is_public"] is False


async def test_blocks_are_used_only_without_an_initial_comment(
    slack: AsyncWebClient, workspace: Client
) -> None:
    blocks = json.dumps([{"type": "section", "text": {"type": "mrkdwn", "text": "*diff*"}}])
    for comment in (None, "with a comment"):
        file_id, url = await reserve(slack, 2)
        assert (await post_bytes(url, data=b"ok"))[0] == 200
        await slack.files_completeUploadExternal(
            files=[{"id": file_id, "title": "t"}],
            channel_id="C0OTHER",
            initial_comment=comment,
            blocks=blocks,
        )
    with_blocks, with_comment = (
        await get_json(workspace, "/_sandbox/messages", channel="C0OTHER")
    )["messages"]
    assert with_blocks["blocks"][0]["text"]["text"] == "*diff*"
    assert with_blocks["text"] == ""
    assert with_comment["text"] == "with a comment"
    assert "blocks" not in with_comment


async def test_the_upload_url_takes_raw_bytes_or_a_multipart_form(slack: AsyncWebClient) -> None:
    file_id, url = await reserve(slack, 5)
    form = aiohttp.FormData()
    form.add_field("filename", b"hello", filename="x.txt", content_type="text/plain")
    assert await post_bytes(url, data=form) == (200, "OK - 5")
    done = await slack.files_completeUploadExternal(files=[{"id": file_id}])
    assert done["files"][0]["size"] == 5


async def test_a_body_of_the_wrong_length_is_refused_and_cannot_be_completed(
    slack: AsyncWebClient,
) -> None:
    file_id, url = await reserve(slack, 10)
    status, text = await post_bytes(url, data=b"short")
    assert status == 400
    assert "10" in text
    assert (await post_bytes(url, data=b"much too long here"))[0] == 400
    with pytest.raises(SlackApiError, match="file_not_found"):
        await slack.files_completeUploadExternal(files=[{"id": file_id}], channel_id="C0GENERAL")
    assert (await post_bytes(url, data=b"0123456789"))[0] == 200


async def test_a_failed_upload_post_stops_the_sdk_before_completion(
    slack: AsyncWebClient, workspace: Client
) -> None:
    await workspace.post("/_sandbox/faults", json={"method": "upload", "status": 503})
    with pytest.raises(SlackRequestError, match="status: 503"):
        await slack.files_upload_v2(channel="C0GENERAL", content="x", filename="x.txt")
    methods = [c["method"] for c in (await get_json(workspace, "/_sandbox/calls"))["calls"]]
    assert methods == ["files.getUploadURLExternal"]
    assert (await get_json(workspace, "/_sandbox/messages", channel="C0GENERAL"))["messages"] == []


async def test_an_unknown_upload_url_is_not_found(slack: AsyncWebClient) -> None:
    file_id, url = await reserve(slack, 3)
    assert (await post_bytes(url + "x", data=b"abc"))[0] == 404
    assert (await post_bytes(url.replace(file_id, "F0UNKNOWN1"), data=b"abc"))[0] == 404
    assert (await post_bytes(url, data=b"abc")) == (200, "OK - 3")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"length": 3}, "invalid_arguments"),
        ({"filename": "x.txt"}, "invalid_arguments"),
        ({"filename": "x.txt", "length": "three"}, "invalid_arguments"),
        ({"filename": "x.txt", "length": 0}, "missing_argument"),
        ({"filename": "x.txt", "length": 10**10}, "file_upload_size_restricted"),
        ({"filename": "x", "length": 3, "snippet_type": "klingon"}, "unknown_snippet_type"),
        ({"filename": "x", "length": 2 * 1024 * 1024, "snippet_type": "diff"}, "snippet_too_large"),
        ({"filename": "x.png", "length": 3, "alt_txt": "a" * 1001}, "alt_txt_too_large"),
    ],
)
async def test_get_upload_url_errors(
    slack: AsyncWebClient, args: dict[str, Any], error: str
) -> None:
    with pytest.raises(SlackApiError) as info:
        await slack.api_call("files.getUploadURLExternal", params=args)
    assert info.value.response["error"] == error


@pytest.mark.parametrize(
    ("files", "channel", "error"),
    [
        (None, "C0GENERAL", "invalid_arguments"),
        ("[not json", "C0GENERAL", "invalid_arguments"),
        ([], "C0GENERAL", "invalid_arguments"),
        ([{"title": "no id"}], "C0GENERAL", "invalid_arguments"),
        ([{"id": "F0UNKNOWN1"}], "C0GENERAL", "file_not_found"),
        ("uploaded", "C0NOWHERE", "channel_not_found"),
        ("uploaded", "general", "invalid_arguments"),
        ("reserved", "C0GENERAL", "file_not_found"),
        ("completed", "C0GENERAL", "file_not_found"),
    ],
)
async def test_complete_upload_errors(
    slack: AsyncWebClient, files: Any, channel: str, error: str
) -> None:
    if files in ("uploaded", "reserved", "completed"):
        file_id, url = await reserve(slack, 3)
        if files != "reserved":
            await post_bytes(url, data=b"abc")
        if files == "completed":
            await slack.files_completeUploadExternal(files=[{"id": file_id}])
        files = [{"id": file_id}]
    params = {"channel_id": channel}
    if files is not None:
        params["files"] = files if isinstance(files, str) else json.dumps(files)
    with pytest.raises(SlackApiError) as info:
        await slack.api_call("files.completeUploadExternal", params=params)
    assert info.value.response["error"] == error


async def test_files_info_of_an_unknown_or_unuploaded_file_is_not_found(
    slack: AsyncWebClient,
) -> None:
    file_id, _ = await reserve(slack, 3)
    for unknown in ("F0UNKNOWN1", file_id):
        with pytest.raises(SlackApiError, match="file_not_found"):
            await slack.files_info(file=unknown)


async def test_control_api_lists_files_and_serves_them_for_the_page(
    slack: AsyncWebClient, workspace: Client
) -> None:
    _, uploaded = await upload_diff(slack)
    pending, _ = await reserve(slack, 4)
    files = {f["id"]: f for f in (await get_json(workspace, "/_sandbox/files"))["files"]}
    done = files[uploaded["file"]["id"]]
    assert (done["uploaded"], done["completed"], done["channels"]) == (True, True, ["C0GENERAL"])
    assert (files[pending]["uploaded"], files[pending]["completed"]) == (False, False)
    in_other = (await get_json(workspace, "/_sandbox/files", channel="C0OTHER"))["files"]
    assert in_other == []

    resp = await workspace.get(done["content_url"])
    assert await resp.text() == DIFF
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert "sandbox" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    missing = await workspace.get(f"/_sandbox/files/{pending}/content")
    assert missing.status == 404


async def test_an_uploaded_html_file_is_never_served_as_a_page(
    slack: AsyncWebClient, workspace: Client, workspace_config: WorkspaceConfig
) -> None:
    page = "<script>alert(1)</script>"
    uploaded = await slack.files_upload_v2(channel="C0GENERAL", content=page, filename="x.html")
    auth = {"Authorization": f"Bearer {workspace_config.bot_token}"}
    async with (
        aiohttp.ClientSession(headers=auth) as session,
        session.get(uploaded["file"]["url_private"]) as resp,
    ):
        assert resp.content_type == "text/plain"
        assert "sandbox" in resp.headers["Content-Security-Policy"]


async def test_reset_forgets_files(slack: AsyncWebClient, workspace: Client) -> None:
    _, uploaded = await upload_diff(slack)
    await workspace.post("/_sandbox/reset")
    assert (await get_json(workspace, "/_sandbox/files"))["files"] == []
    with pytest.raises(SlackApiError, match="file_not_found"):
        await slack.files_info(file=uploaded["file"]["id"])
