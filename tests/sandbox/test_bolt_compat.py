"""A real slack_bolt AsyncApp, pointed at the sandbox, handles its events, commands, clicks and
message shortcuts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack_workspace import WorkspaceConfig

Client = TestClient[Any, Any]
Eventually = Callable[..., Awaitable[Any]]
STOP = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "working…"}},
    {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": "stop",
                "text": {"type": "plain_text", "text": "Stop"},
                "value": "v1",
            }
        ],
    },
]


def build_bolt(api_url: str, config: WorkspaceConfig) -> AsyncApp:
    app = AsyncApp(
        signing_secret=config.signing_secret,
        client=AsyncWebClient(token=config.bot_token, base_url=api_url),
    )

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        await say(text="on it", blocks=STOP, thread_ts=event["ts"])

    @app.event("message")
    async def on_message() -> None:
        return None

    @app.command("/agent-status")
    async def on_status(ack: Any) -> None:
        await ack("1 session running")

    @app.shortcut("agent_status")
    async def on_shortcut(ack: Any, shortcut: dict[str, Any], client: Any, respond: Any) -> None:
        await ack()
        await client.chat_postEphemeral(
            channel=shortcut["channel"]["id"],
            user=shortcut["user"]["id"],
            text=f"status of {shortcut['message_ts']}",
            thread_ts=shortcut["message"].get("thread_ts"),
        )
        await respond("via response_url")

    @app.action("stop")
    async def on_stop(ack: Any, respond: Any) -> None:
        await ack()
        await respond(replace_original=True, text="stopped")

    return app


@pytest.fixture
async def bolt_bot(
    workspace: Client, api_url: str, workspace_config: WorkspaceConfig
) -> AsyncIterator[str]:
    server = TestServer(build_bolt(api_url, workspace_config).web_app(), host="127.0.0.1", port=0)
    await server.start_server()
    url = str(server.make_url("/slack/events"))
    await workspace.post("/_sandbox/config", json={"bot_url": url})
    try:
        yield url
    finally:
        await server.close()


async def thread(workspace: Client, ts: str) -> list[dict[str, Any]]:
    query = {"channel": "C0GENERAL", "thread_ts": ts}
    found: list[dict[str, Any]] = (
        await (await workspace.get("/_sandbox/messages", params=query)).json()
    )["messages"]
    return found


async def test_bolt_answers_a_mention_and_a_stop_click(
    workspace: Client, bolt_bot: str, eventually: Eventually
) -> None:
    body = {"channel": "C0GENERAL", "user": "U0ALICE", "text": "<@U0BOT> hi", "wait": True}
    sent = await (await workspace.post("/_sandbox/messages", json=body)).json()
    assert [d["status"] for d in sent["deliveries"]] == [200, 200]
    messages = await eventually(lambda: _with_reply(thread(workspace, sent["ts"])))
    reply = messages[1]
    assert reply["bot_id"] == "B0BOT"
    assert reply["text"] == "on it"
    click = {"channel": "C0GENERAL", "message_ts": reply["ts"], "action_id": "stop"}
    result = await (await workspace.post("/_sandbox/action", json=click)).json()
    assert result["status"] == 200
    await eventually(lambda: _text_is(thread(workspace, sent["ts"]), "stopped"))
    deliveries = (await (await workspace.get("/_sandbox/deliveries")).json())["deliveries"]
    assert all(d["status"] == 200 for d in deliveries)


async def test_bolt_acks_the_slash_command(workspace: Client, bolt_bot: str) -> None:
    resp = await workspace.post("/_sandbox/command", json={"command": "/agent-status"})
    result = await resp.json()
    assert result["status"] == 200
    assert result["body"] == "1 session running"
    shown = (await (await workspace.get("/_sandbox/ephemerals?user=U0ALICE")).json())["ephemerals"]
    assert [e["text"] for e in shown] == ["1 session running"]


async def test_bolt_shortcut_listener_acks_and_its_ephemerals_show(
    workspace: Client, bolt_bot: str, eventually: Eventually
) -> None:
    body = {"channel": "C0QUEUE", "user": "U0BOB", "text": "look", "wait": True}
    sent = await (await workspace.post("/_sandbox/messages", json=body)).json()
    run = {"user": "U0BOB", "channel": "C0QUEUE", "message_ts": sent["ts"]}
    result = await (await workspace.post("/_sandbox/shortcut", json=run)).json()
    assert (result["status"], result["outcome"], result["body"]) == (200, "ok", "")

    async def shown() -> list[str]:
        resp = await workspace.get("/_sandbox/ephemerals?user=U0BOB")
        return sorted(e["text"] for e in (await resp.json())["ephemerals"])

    expected = sorted([f"status of {sent['ts']}", "via response_url"])
    await eventually(lambda: _equals(shown(), expected))
    ephemerals = (await (await workspace.get("/_sandbox/ephemerals")).json())["ephemerals"]
    assert {(e["channel"], e["user"]) for e in ephemerals} == {("C0QUEUE", "U0BOB")}


async def _equals(pending: Awaitable[Any], expected: Any) -> bool:
    return bool(await pending == expected)


async def _with_reply(pending: Awaitable[list[dict[str, Any]]]) -> list[dict[str, Any]] | None:
    messages = await pending
    return messages if len(messages) == 2 else None


async def _text_is(pending: Awaitable[list[dict[str, Any]]], text: str) -> bool:
    messages = await pending
    return len(messages) == 2 and messages[1]["text"] == text
