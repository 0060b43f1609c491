"""The thread `make run` seeds in a fresh sandbox workspace for trying how the agent joins one:
configured as local_run configures the sandbox, it is in #general with the log file a person
shared, conversations.replies gives it (file object included) to the product as it reads a
thread it joins, nothing of it reaches the bot as events, a restart with the saved state does
not seed it again, the test stack's configuration does not seed it, and its log is what the
demo repository's tests really print."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.web.async_client import AsyncWebClient

from common.slack_files import allowed_hosts, download
from restate_app.thread_history import earlier_files, earlier_text
from sandbox.__main__ import parse_settings, workspace_config
from sandbox.demo_repo import FAILING_TEST, FILES_DIR
from sandbox.local_run import sandbox_args
from sandbox.slack_seed import LOG, LOG_NAME, SEED_CHANNEL, seed_thread
from sandbox.slack_state import ts_key
from sandbox.slack_workspace import WorkspaceConfig, create_workspace_app
from sandbox.workspace import WORKSPACE_KEY
from tests.sandbox.conftest import BOT_TOKEN, SIGNING_SECRET, FakeBot

Client = TestClient[Any, Any]

ENV = {"SANDBOX_BOT_TOKEN": BOT_TOKEN, "SANDBOX_SIGNING_SECRET": SIGNING_SECRET}
PORTS = {"SANDBOX_PORT": 0, "SANDBOX_GITHUB_PORT": 0}


def local_run_config(workdir: Path, bot: FakeBot) -> WorkspaceConfig:
    """The workspace as `make run` starts it (sandbox arguments from local_run), its events
    going to the recording bot."""
    settings = parse_settings(sandbox_args(workdir, PORTS), ENV)
    return replace(workspace_config(settings), bot_url=bot.url)


@asynccontextmanager
async def started(config: WorkspaceConfig) -> AsyncIterator[tuple[Client, str | None]]:
    """The workspace listening, seeded as `python -m sandbox` seeds it once it listens; yields
    it and the seeded thread's root ts (None: not seeded). Shut down on leaving."""
    app = create_workspace_app(config)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        origin = str(client.make_url("")).rstrip("/")
        yield client, seed_thread(app[WORKSPACE_KEY], origin)


def web_api(client: Client) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=str(client.make_url("/api/")))


async def get_json(client: Client, path: str, **params: str) -> Any:
    resp = await client.get(path, params=params)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def thread_of(client: Client, root_ts: str) -> list[dict[str, Any]]:
    found = await get_json(client, "/_sandbox/messages", channel=SEED_CHANNEL, thread_ts=root_ts)
    return list(found["messages"])


async def test_a_fresh_local_run_workspace_has_the_thread_with_its_file_and_no_events(
    tmp_path: Path, bot: FakeBot
) -> None:
    async with started(local_run_config(tmp_path, bot)) as (client, root_ts):
        assert root_ts is not None
        slack = web_api(client)
        history = (await slack.conversations_history(channel=SEED_CHANNEL))["messages"]
        assert [(m["ts"], m["user"], m["reply_count"]) for m in history] == [(root_ts, "U0BOB", 2)]
        assert FAILING_TEST in history[0]["text"]
        assert "<@" not in " ".join(m["text"] for m in history)

        thread = (await slack.conversations_replies(channel=SEED_CHANNEL, ts=root_ts))["messages"]
        assert [m["user"] for m in thread] == ["U0BOB", "U0ALICE", "U0BOB"]
        assert all("<@" not in m["text"] for m in thread)
        [log] = thread[1]["files"]
        assert (log["name"], log["user"], log["mimetype"]) == (LOG_NAME, "U0ALICE", "text/plain")
        assert log["size"] == len(LOG.encode())
        assert thread[1]["subtype"] == "file_share"
        assert [ts_key(m["ts"]) for m in thread] == sorted(ts_key(m["ts"]) for m in thread)

        info = (await slack.files_info(file=log["id"]))["file"]
        [share] = info["shares"]["public"][SEED_CHANNEL]
        assert (share["ts"], share["thread_ts"], share["share_user_id"]) == (
            thread[1]["ts"],
            root_ts,
            "U0ALICE",
        )
        listed = await get_json(client, "/_sandbox/files", channel=SEED_CHANNEL)
        assert [f["id"] for f in listed["files"]] == [log["id"]]

        # What the product takes from it when the agent is mentioned in a reply there.
        assert [f.name for f in earlier_files(thread)] == [LOG_NAME]
        assert "daylight saving" in earlier_text(thread)
        api_url = str(client.make_url("/api/"))
        async with aiohttp.ClientSession() as session:
            url, hosts = log["url_private_download"], allowed_hosts(api_url)
            got = await download(session, BOT_TOKEN, log["id"], url, hosts, len(LOG.encode()))
        assert got == LOG.encode()

        # History is never delivered: the next person's message is the first event the bot gets.
        body = {"channel": SEED_CHANNEL, "user": "U0ALICE", "text": "hello", "wait": True}
        sent = await (await client.post("/_sandbox/messages", json=body)).json()
        deliveries = (await get_json(client, "/_sandbox/deliveries"))["deliveries"]
        assert {d["event_id"] for d in deliveries} == set(sent["event_ids"])
        assert len(bot.received) == len(sent["event_ids"])


async def test_a_restart_with_the_saved_state_does_not_seed_the_thread_again(
    tmp_path: Path, bot: FakeBot
) -> None:
    config = local_run_config(tmp_path, bot)
    async with started(config) as (client, root_ts):
        assert root_ts is not None
        first = await thread_of(client, root_ts)
    async with started(config) as (client, again):
        assert again is None
        top = (await get_json(client, "/_sandbox/messages", channel=SEED_CHANNEL))["messages"]
        assert [m["ts"] for m in top] == [root_ts]
        assert [m["text"] for m in await thread_of(client, root_ts)] == [m["text"] for m in first]
        assert len((await get_json(client, "/_sandbox/files"))["files"]) == 1


async def test_the_test_stacks_workspace_is_not_seeded(tmp_path: Path, bot: FakeBot) -> None:
    # As sandbox/stack.py starts it for the tests: a state file at most, no seed.
    settings = parse_settings(["--state-file", str(tmp_path / "state.json")], ENV)
    async with started(replace(workspace_config(settings), bot_url=bot.url)) as (client, root):
        assert root is None
        general = await get_json(client, "/_sandbox/messages", channel=SEED_CHANNEL)
        assert general["messages"] == []
        assert (await get_json(client, "/_sandbox/files"))["files"] == []


def test_the_seeded_log_is_what_the_demo_repositorys_tests_print(tmp_path: Path) -> None:
    repo = shutil.copytree(FILES_DIR, tmp_path / "meeting-times")
    # The fast tests only (the slow one takes six seconds and passes): their verdicts and the
    # failure, as the log shows them.
    run = subprocess.run(
        [sys.executable, "-m", "unittest", "-v", "tests.test_dates.FormatMeetingTest"],
        cwd=repo,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    printed = run.stderr.splitlines()
    verdicts = [line for line in printed if line.endswith((" ... ok", " ... FAIL"))]
    assert len(verdicts) == 4
    failure = printed[printed.index(next(p for p in printed if p.startswith("FAIL: "))) :]
    failure = [line for line in failure if not line.startswith(("  File ", "Ran ", "FAILED"))]
    log = LOG.splitlines()
    for line in verdicts + failure:
        assert line in log, line
