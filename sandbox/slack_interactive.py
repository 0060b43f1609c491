"""Slash commands, button clicks, message shortcuts and `response_url`s of the sandbox workspace.

`/_sandbox/command`, `/_sandbox/action` and `/_sandbox/shortcut` send Slack's signed,
form-encoded payloads to the bot; `/_sandbox/response/{id}` plays the `response_url` Slack
hands out with them.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from sandbox.control_common import json_error, read_model
from sandbox.slack_control import human_in_channel
from sandbox.slack_delivery import HttpResult
from sandbox.slack_payloads import (
    block_actions_payload,
    find_button,
    message_action_payload,
    slash_command_form,
)
from sandbox.workspace import WORKSPACE_KEY, Workspace

JSON = dict[str, Any]
FORM = "application/x-www-form-urlencoded"


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str = "/agent-status"
    text: str = ""
    user: str = "U0ALICE"
    channel: str = "C0GENERAL"
    # Where the page shows the ephemeral answer; Slack does not send it to the app.
    thread_ts: str | None = None


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = "U0ALICE"
    channel: str
    message_ts: str
    action_id: str
    value: str | None = None


class ShortcutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = "U0ALICE"
    channel: str
    message_ts: str
    callback_id: str = "agent_status"


def new_response_url(request: web.Request, ws: Workspace, target: JSON) -> str:
    response_id = secrets.token_hex(8)
    ws.records.response_targets[response_id] = target
    return f"{request.url.origin()}/_sandbox/response/{response_id}"


def result_json(result: HttpResult) -> JSON:
    out: JSON = {"status": result.status, "body": result.body, "outcome": result.outcome}
    try:
        out["json"] = json.loads(result.body) if result.body else None
    except ValueError:
        out["json"] = None
    return out


async def send_command(request: web.Request) -> web.Response:
    """Deliver a slash command as Slack does and show a non-empty reply to the user."""
    ws = request.app[WORKSPACE_KEY]
    data = await read_model(request, CommandIn)
    channel = human_in_channel(ws, data.user, data.channel)
    user = ws.state.users[data.user]
    target = {
        "kind": "command",
        "channel": channel.id,
        "user": user.id,
        "message_ts": None,
        "thread_ts": ws.state.thread_root_ts(channel.id, data.thread_ts)
        if data.thread_ts
        else None,
    }
    response_url = new_response_url(request, ws, target)
    form = slash_command_form(ws.state, data.command, data.text, user, channel, response_url)
    result = await ws.deliverer.post(urlencode(form).encode(), FORM)
    out = result_json(result)
    if result.outcome == "ok" and result.body.strip():
        reply = out["json"] if isinstance(out["json"], dict) else {"text": result.body}
        apply_response(ws, target, reply)
    return web.json_response(out | {"response_url": response_url})


async def send_action(request: web.Request) -> web.Response:
    """Deliver a `block_actions` click on a button of a stored message."""
    ws = request.app[WORKSPACE_KEY]
    data = await read_model(request, ActionIn)
    channel = human_in_channel(ws, data.user, data.channel)
    message = ws.state.get(channel.id, data.message_ts)
    if message is None:
        raise json_error(404, "message_not_found")
    found = find_button(message.blocks, data.action_id)
    if found is None:
        raise json_error(404, "action_not_found", action_id=data.action_id)
    block_id, element = found
    action: JSON = {
        "action_id": data.action_id,
        "block_id": block_id,
        "text": element.get("text") or {"type": "plain_text", "text": data.action_id},
        "value": data.value if data.value is not None else element.get("value", ""),
        "type": element.get("type", "button"),
        "action_ts": f"{time.time():.6f}",
    }
    target = {"kind": "action", "channel": channel.id, "user": data.user, "message_ts": message.ts}
    response_url = new_response_url(request, ws, target)
    user = ws.state.users[data.user]
    payload = block_actions_payload(ws.state, user, channel, message, action, response_url)
    body = urlencode({"payload": json.dumps(payload)}).encode()
    result = await ws.deliverer.post(body, FORM)
    return web.json_response(result_json(result) | {"response_url": response_url})


async def send_shortcut(request: web.Request) -> web.Response:
    """Deliver a message shortcut (`message_action`) run on a stored message.

    As in Slack, the ack's body is not shown; the app answers through the response_url or
    the Web API (chat.postEphemeral).
    """
    ws = request.app[WORKSPACE_KEY]
    data = await read_model(request, ShortcutIn)
    channel = human_in_channel(ws, data.user, data.channel)
    message = ws.state.get(channel.id, data.message_ts)
    if message is None:
        raise json_error(404, "message_not_found")
    # The shortcut's message is usually someone else's, so replace_original has nothing to
    # replace; ephemeral answers land beside the message (its thread, if it is a reply).
    target = {
        "kind": "shortcut",
        "channel": channel.id,
        "user": data.user,
        "message_ts": None,
        "thread_ts": message.thread_ts,
    }
    response_url = new_response_url(request, ws, target)
    user = ws.state.users[data.user]
    payload = message_action_payload(
        ws.state, user, channel, message, data.callback_id, response_url
    )
    body = urlencode({"payload": json.dumps(payload)}).encode()
    result = await ws.deliverer.post(body, FORM)
    return web.json_response(result_json(result) | {"response_url": response_url})


def apply_response(ws: Workspace, target: JSON, reply: JSON) -> None:
    """Do what Slack does with a message sent to a response_url (or a command's reply)."""
    channel = ws.state.channels[target["channel"]]
    original = ws.state.get(channel.id, target.get("message_ts"))
    blocks = reply.get("blocks") if isinstance(reply.get("blocks"), list) else None
    text = str(reply.get("text") or "")
    if reply.get("delete_original") and original is not None:
        ws.delete_message(channel, original)
    elif reply.get("replace_original") and original is not None:
        ws.update_message(channel, original, text, blocks)
    elif reply.get("response_type") == "in_channel":
        thread_ts = reply.get("thread_ts") or (original.thread_ts if original else None)
        ws.post_bot_message(channel, text, blocks, thread_ts)
    else:
        thread_ts = original.thread_ts if original else target.get("thread_ts")
        ws.add_ephemeral(channel.id, target["user"], {"text": text, "blocks": blocks}, thread_ts)


async def receive_response(request: web.Request) -> web.Response:
    """The response_url endpoint: record the post, apply it, answer like Slack."""
    ws = request.app[WORKSPACE_KEY]
    response_id = request.match_info["response_id"]
    target = ws.records.response_targets.get(response_id)
    raw = await request.text()
    try:
        reply = json.loads(raw)
    except ValueError:
        reply = None
    ws.records.responses.append(
        {"id": response_id, "received_at": time.time(), "target": target, "body": reply or raw}
    )
    if target is None:
        return web.json_response({"ok": False, "error": "expired_url"}, status=404)
    if not isinstance(reply, dict):
        return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
    apply_response(ws, target, reply)
    return web.json_response({"ok": True})


async def list_responses(request: web.Request) -> web.Response:
    return web.json_response({"responses": request.app[WORKSPACE_KEY].records.responses})


def register_interactive(app: web.Application) -> None:
    app.router.add_post("/_sandbox/command", send_command)
    app.router.add_post("/_sandbox/action", send_action)
    app.router.add_post("/_sandbox/shortcut", send_shortcut)
    app.router.add_post("/_sandbox/response/{response_id}", receive_response)
    app.router.add_get("/_sandbox/responses", list_responses)
