"""The sandbox workspace's state file: what a restart brings back, and what it does with a file
it cannot read."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack_workspace import WorkspaceConfig, create_workspace_app

Client = TestClient[Any, Any]


@asynccontextmanager
async def running(config: WorkspaceConfig) -> AsyncIterator[tuple[Client, AsyncWebClient]]:
    """The workspace, started and (on leaving) shut down as its process would be."""
    server = TestServer(create_workspace_app(config), host="127.0.0.1", port=0)
    async with TestClient(server) as client:
        slack = AsyncWebClient(token=config.bot_token, base_url=str(client.make_url("/api/")))
        yield client, slack


async def thread(client: Client, ts: str) -> list[dict[str, Any]]:
    resp = await client.get("/_sandbox/messages", params={"channel": "C0GENERAL", "thread_ts": ts})
    assert resp.status == 200, await resp.text()
    messages: list[dict[str, Any]] = (await resp.json())["messages"]
    return messages


def summary(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a person sees of a thread (file URLs carry the port, which a test server changes)."""
    return [
        (
            m["ts"],
            m["user"],
            m["text"],
            tuple((r["name"], tuple(r["users"])) for r in m.get("reactions", [])),
            tuple(f["name"] for f in m.get("files", [])),
        )
        for m in messages
    ]


async def start_thread(client: Client, slack: AsyncWebClient) -> str:
    """Alice asks, the bot answers in the thread with a reaction and a file; returns the root."""
    body = {"channel": "C0GENERAL", "user": "U0ALICE", "text": "<@U0BOT> fix the test"}
    root = str((await (await client.post("/_sandbox/messages", json=body)).json())["ts"])
    await slack.chat_postMessage(channel="C0GENERAL", thread_ts=root, text="Fixed it.")
    await slack.reactions_add(channel="C0GENERAL", timestamp=root, name="white_check_mark")
    await slack.files_upload_v2(
        channel="C0GENERAL", thread_ts=root, content="+fixed\n", filename="changes.diff"
    )
    return root


async def test_a_restarted_workspace_has_its_threads_reactions_and_files_back(
    workspace_config: WorkspaceConfig, tmp_path: Path
) -> None:
    config = replace(workspace_config, state_file=tmp_path / "slack-state.json")
    async with running(config) as (client, slack):
        root = await start_thread(client, slack)
        before = await thread(client, root)
    assert not (tmp_path / "slack-state.json.tmp").exists()
    async with running(config) as (client, slack):
        after = await thread(client, root)
        assert summary(after) == summary(before)
        assert len(after) == 3
        assert after[0]["reply_count"] == 2
        file_id = after[-1]["files"][0]["id"]
        content = await client.get(f"/_sandbox/files/{file_id}/content")
        assert await content.text() == "+fixed\n"
        later = await slack.chat_postMessage(channel="C0GENERAL", thread_ts=root, text="again")
        assert float(later["ts"]) > float(after[-1]["ts"])


async def test_a_workspace_without_a_state_file_starts_empty_every_time(
    workspace_config: WorkspaceConfig,
) -> None:
    async with running(workspace_config) as (client, slack):
        root = await start_thread(client, slack)
    async with running(workspace_config) as (client, _):
        assert await thread(client, root) == []


async def test_an_unreadable_state_file_is_set_aside_and_the_workspace_starts_empty(
    workspace_config: WorkspaceConfig, tmp_path: Path
) -> None:
    path = tmp_path / "slack-state.json"
    path.write_text('{"version": 1, "messages": [')
    async with running(replace(workspace_config, state_file=path)) as (client, _):
        listed = await client.get("/_sandbox/messages", params={"channel": "C0GENERAL"})
        assert (await listed.json())["messages"] == []
    assert (tmp_path / "slack-state.json.unreadable").read_text() == '{"version": 1, "messages": ['


async def test_a_control_reset_empties_the_state_file_too(
    workspace_config: WorkspaceConfig, tmp_path: Path
) -> None:
    config = replace(workspace_config, state_file=tmp_path / "slack-state.json")
    async with running(config) as (client, slack):
        root = await start_thread(client, slack)
        assert (await client.post("/_sandbox/reset")).status == 200
    async with running(config) as (client, _):
        assert await thread(client, root) == []


async def test_a_new_workspace_writes_its_state_file_at_start(
    workspace_config: WorkspaceConfig, tmp_path: Path
) -> None:
    path = tmp_path / "slack-state.json"
    async with running(replace(workspace_config, state_file=path)):
        stored = json.loads(path.read_text())
        assert stored["messages"] == []
        assert "C0STEER" in {c["id"] for c in stored["channels"]}
