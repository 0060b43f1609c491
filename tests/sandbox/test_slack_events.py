"""Signed Events API delivery, retries, slash commands and button clicks to a fake bot."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp.test_utils import TestClient
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from sandbox.slack_workspace import WorkspaceConfig

Client = TestClient[Any, Any]
Eventually = Callable[..., Awaitable[Any]]


@pytest.fixture
def verifier(workspace_config: WorkspaceConfig) -> SignatureVerifier:
    return SignatureVerifier(workspace_config.signing_secret)


async def post_as(workspace: Client, **body: Any) -> dict[str, Any]:
    resp = await workspace.post("/_sandbox/messages", json=body)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


def events_of(bot: Any) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in bot.received if r.content_type == "application/json"]


async def test_channel_mention_delivers_signed_app_mention_then_message(
    workspace: Client, bot: Any, verifier: SignatureVerifier
) -> None:
    sent = await post_as(
        workspace, channel="C0GENERAL", user="U0ALICE", text="<@U0BOT> fix it", wait=True
    )
    assert [d["status"] for d in sent["deliveries"]] == [200, 200]
    mention, message = events_of(bot)
    assert [mention["event_id"], message["event_id"]] == sent["event_ids"]
    assert mention["event_id"] != message["event_id"]
    assert mention["event"]["type"] == "app_mention"
    assert message["event"]["type"] == "message"
    assert message["event"]["channel_type"] == "channel"
    for envelope in (mention, message):
        assert envelope["type"] == "event_callback"
        assert envelope["team_id"] == "T0SANDBOX"
        assert envelope["api_app_id"] == "A0SANDBOX"
        assert envelope["authorizations"][0]["user_id"] == "U0BOT"
        assert envelope["event"]["ts"] == sent["ts"] == envelope["event"]["event_ts"]
        assert envelope["event"]["user"] == "U0ALICE"
        assert "thread_ts" not in envelope["event"]
    for request in bot.received:
        assert request.headers["Content-Type"] == "application/json"
        assert verifier.is_valid_request(request.body, request.headers)


async def test_dm_delivers_only_a_message_event_with_im_channel_type(
    workspace: Client, bot: Any
) -> None:
    await post_as(workspace, channel="D0ALICE", user="U0ALICE", text="<@U0BOT> hi", wait=True)
    [envelope] = events_of(bot)
    assert envelope["event"]["type"] == "message"
    assert envelope["event"]["channel_type"] == "im"


async def test_thread_reply_events_carry_the_root_thread_ts(workspace: Client, bot: Any) -> None:
    root = await post_as(workspace, channel="C0GENERAL", user="U0ALICE", text="<@U0BOT> go")
    reply = await post_as(
        workspace, channel="C0GENERAL", user="U0BOB", text="stop", thread_ts=root["ts"], wait=True
    )
    [event_id] = reply["event_ids"]
    [event] = [e["event"] for e in events_of(bot) if e["event_id"] == event_id]
    assert event["thread_ts"] == root["ts"]
    assert event["ts"] == reply["ts"]
    assert event["parent_user_id"] == "U0ALICE"


async def test_failed_delivery_is_retried_with_slack_retry_headers(
    workspace: Client, bot: Any, verifier: SignatureVerifier, eventually: Eventually
) -> None:
    bot.reply(status=500)
    bot.reply(status=200, delay=2.0)  # slower than the delivery timeout
    await post_as(workspace, channel="D0ALICE", user="U0ALICE", text="hello")
    await eventually(lambda: len(bot.received) >= 3)
    first, second, third = bot.received[:3]
    assert first.body == second.body == third.body
    assert "X-Slack-Retry-Num" not in first.headers
    assert second.headers["X-Slack-Retry-Num"] == "1"
    assert second.headers["X-Slack-Retry-Reason"] == "http_error"
    assert third.headers["X-Slack-Retry-Num"] == "2"
    assert third.headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert all(verifier.is_valid_request(r.body, r.headers) for r in (first, second, third))
    resp = await workspace.get("/_sandbox/deliveries")
    outcomes = [(d["retry_num"], d["outcome"]) for d in (await resp.json())["deliveries"]]
    assert outcomes == [(0, "http_error"), (1, "http_timeout"), (2, "ok")]


async def test_x_slack_no_retry_stops_retries(
    workspace: Client, bot: Any, eventually: Eventually
) -> None:
    bot.reply(status=500, headers={"X-Slack-No-Retry": "1"})
    sent = await post_as(workspace, channel="D0ALICE", user="U0ALICE", text="x", wait=True)
    assert sent["deliveries"][0]["no_retry"] is True
    deliveries = (await (await workspace.get("/_sandbox/deliveries")).json())["deliveries"]
    assert len(deliveries) == 1


async def test_bot_posts_and_edits_are_echoed_as_message_events(
    workspace: Client, bot: Any, api_url: str, eventually: Eventually
) -> None:
    slack = AsyncWebClient(token="xoxb-sandbox-test-token", base_url=api_url)
    ts = (await slack.chat_postMessage(channel="C0GENERAL", text="working"))["ts"]
    await slack.chat_update(channel="C0GENERAL", ts=ts, text="done")
    await eventually(lambda: len(bot.received) == 2)
    posted, changed = (e["event"] for e in events_of(bot))
    assert posted["bot_id"] == "B0BOT"
    assert posted["user"] == "U0BOT"
    assert changed["subtype"] == "message_changed"
    assert changed["message"]["text"] == "done"
    assert changed["previous_message"]["text"] == "working"


async def test_raw_delivery_sends_exactly_the_given_body(
    workspace: Client, bot: Any, verifier: SignatureVerifier
) -> None:
    unsigned = {"body": "{not json", "sign": False, "headers": {"X-Slack-Signature": "v0=bad"}}
    resp = await workspace.post("/_sandbox/deliver", json=unsigned)
    assert (await resp.json())["status"] == 200
    assert bot.received[0].body == b"{not json"
    assert bot.received[0].headers["X-Slack-Signature"] == "v0=bad"
    assert not verifier.is_valid_request(bot.received[0].body, bot.received[0].headers)
    stale = {"body": {"type": "url_verification", "challenge": "c"}, "timestamp": 1_000_000}
    await workspace.post("/_sandbox/deliver", json=stale)
    assert bot.received[1].headers["X-Slack-Request-Timestamp"] == "1000000"
    assert not verifier.is_valid_request(bot.received[1].body, bot.received[1].headers)


async def test_slash_command_sends_slacks_form_payload(
    workspace: Client, bot: Any, verifier: SignatureVerifier
) -> None:
    bot.reply(body=json.dumps({"text": "2 sessions running"}), content_type="application/json")
    resp = await workspace.post("/_sandbox/command", json={"text": "all", "user": "U0BOB"})
    result = await resp.json()
    assert result["status"] == 200
    assert result["json"] == {"text": "2 sessions running"}
    [request] = bot.received
    assert request.content_type == "application/x-www-form-urlencoded"
    assert verifier.is_valid_request(request.body, request.headers)
    form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    assert form["command"] == "/agent-status"
    assert form["text"] == "all"
    assert form["user_id"] == "U0BOB"
    assert form["channel_id"] == "C0GENERAL"
    assert form["response_url"] == result["response_url"]
    followup = await AsyncWebhookClient(form["response_url"]).send(text="later")
    assert followup.status_code == 200
    ephemerals = await (await workspace.get("/_sandbox/ephemerals?user=U0BOB")).json()
    assert [e["text"] for e in ephemerals["ephemerals"]] == ["2 sessions running", "later"]


async def test_button_click_sends_block_actions_payload(
    workspace: Client, bot: Any, api_url: str, verifier: SignatureVerifier
) -> None:
    slack = AsyncWebClient(token="xoxb-sandbox-test-token", base_url=api_url)
    button = {"type": "button", "action_id": "stop_task", "value": "key-1", "style": "danger"}
    blocks = [{"type": "actions", "block_id": "controls", "elements": [button]}]
    ts = (await slack.chat_postMessage(channel="C0GENERAL", text="working", blocks=blocks))["ts"]
    bot.received.clear()
    click = {"channel": "C0GENERAL", "message_ts": ts, "action_id": "stop_task", "user": "U0BOB"}
    result = await (await workspace.post("/_sandbox/action", json=click)).json()
    assert result["status"] == 200
    [request] = [r for r in bot.received if r.content_type != "application/json"]
    assert verifier.is_valid_request(request.body, request.headers)
    payload = json.loads(parse_qs(request.body.decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U0BOB"
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": "C0GENERAL",
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == ts
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"]) == (
        "stop_task",
        "controls",
        "key-1",
    )
    unknown = await workspace.post("/_sandbox/action", json=click | {"action_id": "nope"})
    assert unknown.status == 404


async def test_event_stream_reports_new_messages(workspace: Client) -> None:
    resp = await workspace.get("/_sandbox/events")
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert (await resp.content.readline()) == b": connected\n"
    await post_as(workspace, channel="C0GENERAL", user="U0BOB", text="live")
    lines = [await resp.content.readline() for _ in range(4)]
    assert lines[1] == b"event: message_posted\n"
    event = json.loads(lines[2].removeprefix(b"data: "))
    assert event["message"]["text"] == "live"
    resp.close()


async def test_page_is_served_and_labelled(workspace: Client) -> None:
    resp = await workspace.get("/")
    html = await resp.text()
    assert resp.status == 200
    assert "Sandbox Slack workspace (local stand-in)" in html
    assert '<script type="module" src="/static/workspace.js">' in html
    script = await workspace.get("/static/workspace.js")
    assert script.status == 200
    assert "javascript" in script.content_type
    assert "/_sandbox/events" in await script.text()


async def test_message_shortcut_sends_slacks_message_action_payload(
    workspace: Client, bot: Any, verifier: SignatureVerifier
) -> None:
    root = await post_as(workspace, channel="C0GENERAL", user="U0ALICE", text="<@U0BOT> go")
    reply = await post_as(
        workspace, channel="C0GENERAL", user="U0BOB", text="hmm", thread_ts=root["ts"], wait=True
    )
    bot.received.clear()
    run = {"user": "U0BOB", "channel": "C0GENERAL", "message_ts": reply["ts"]}
    result = await (await workspace.post("/_sandbox/shortcut", json=run)).json()
    assert result["status"] == 200
    [request] = bot.received
    assert request.content_type == "application/x-www-form-urlencoded"
    assert verifier.is_valid_request(request.body, request.headers)
    form = parse_qs(request.body.decode())
    assert list(form) == ["payload"]
    payload = json.loads(form["payload"][0])
    assert set(payload) == {
        *("type", "token", "action_ts", "team", "user", "channel", "is_enterprise_install"),
        *("enterprise", "api_app_id", "callback_id", "trigger_id", "response_url"),
        *("message_ts", "message"),
    }
    assert payload["type"] == "message_action"
    assert payload["callback_id"] == "agent_status"
    assert payload["team"] == {"id": "T0SANDBOX", "domain": "sandbox"}
    assert payload["user"] == {
        "id": "U0BOB",
        "username": "bob",
        "name": "bob",
        "team_id": "T0SANDBOX",
    }
    assert payload["channel"] == {"id": "C0GENERAL", "name": "general"}
    assert (payload["is_enterprise_install"], payload["enterprise"]) == (False, None)
    assert payload["response_url"] == result["response_url"]
    assert payload["message_ts"] == reply["ts"]
    message = payload["message"]
    assert (message["type"], message["user"], message["text"]) == ("message", "U0BOB", "hmm")
    assert (message["ts"], message["thread_ts"]) == (reply["ts"], root["ts"])
    await AsyncWebhookClient(result["response_url"]).send(text="nothing running")
    shown = (await (await workspace.get("/_sandbox/ephemerals?user=U0BOB")).json())["ephemerals"]
    assert [(e["text"], e["thread_ts"]) for e in shown] == [("nothing running", root["ts"])]


async def test_shortcut_on_an_unknown_message_is_refused(workspace: Client, bot: Any) -> None:
    run = {"channel": "C0GENERAL", "message_ts": "1.000001"}
    resp = await workspace.post("/_sandbox/shortcut", json=run)
    assert resp.status == 404
    assert bot.received == []


async def test_page_has_command_box_shortcut_menu_and_emoji(workspace: Client) -> None:
    page = await workspace.get("/")
    html = await page.text()
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for control in ('id="command-form"', 'id="command-input"', 'id="msg-menu"'):
        assert control in html
    assert 'data-callback="agent_status"' in html
    assert "Agent status" in html
    script = await (await workspace.get("/static/workspace.js")).text()
    assert "/_sandbox/command" in script
    assert "/_sandbox/shortcut" in script
    assert "Only visible to you" in script
    assert "blockquote" in await (await workspace.get("/static/mrkdwn.js")).text()
    assert (await workspace.get("/static/other.js")).status == 404
    emoji = (await (await workspace.get("/_sandbox/emoji")).json())["emoji"]
    assert emoji["hourglass_flowing_sand"] == "⏳"
