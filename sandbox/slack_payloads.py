"""Builders for what Slack sends to an app: Events API envelopes, slash commands, interactions.

Shapes follow Slack's public documentation (Events API `event_callback`, slash command
form fields, `block_actions` and `message_action` interactivity payloads).
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import time
import uuid
from typing import Any

from sandbox.slack_state import Channel, Message, User, WorkspaceState

JSON = dict[str, Any]

# Slack's legacy verification token field; a fixed, public value in the sandbox.
VERIFICATION_TOKEN = "sandbox-verification-token"  # noqa: S105
TEAM_DOMAIN = "sandbox"

_event_counter = itertools.count(1)


def new_event_id() -> str:
    """A unique Slack-looking event id, e.g. "Ev0001A1B2C3"."""
    return f"Ev{next(_event_counter):04d}{secrets.token_hex(3).upper()}"


def new_trigger_id() -> str:
    return f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def _org(state: WorkspaceState) -> JSON | None:
    if state.enterprise_id is None:
        return None
    return {"id": state.enterprise_id, "name": "Sandbox Org"}


def envelope(state: WorkspaceState, event: JSON) -> JSON:
    """Wrap one event in the Events API `event_callback` envelope (for an org-wide install:
    the organisation's id, and no installation team in `authorizations`)."""
    org = state.enterprise_id
    context = {"tid": state.team_id, "aid": state.app_id, "cid": event.get("channel")}
    event_context = "4-" + base64.urlsafe_b64encode(json.dumps(context).encode()).decode()
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": state.team_id,
        **({"enterprise_id": org} if org else {}),
        "context_team_id": state.team_id,
        "context_enterprise_id": org,
        "api_app_id": state.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": new_event_id(),
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": org,
                "team_id": None if org else state.team_id,
                "user_id": state.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": org is not None,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": event_context,
    }


def message_event(state: WorkspaceState, message: Message, channel: Channel) -> JSON:
    """The `message` event for a newly posted message (human or bot)."""
    event = state.render(message)
    for key in ("reply_count", "reply_users_count", "latest_reply", "reply_users"):
        event.pop(key, None)
    event.pop("is_locked", None)
    event.pop("subscribed", None)
    if message.bot_id:
        event["bot_profile"] = bot_profile(state)
    event["channel"] = channel.id
    event["event_ts"] = message.ts
    event["channel_type"] = channel.channel_type
    return event


def file_share_event(state: WorkspaceState, message: Message, channel: Channel) -> JSON:
    """`message` with subtype `file_share`, sent when files.completeUploadExternal shares files.

    Shaped like Slack's documented example (`files`, `upload`, `display_as_bot`, the sharer's
    `user`), with the uploading bot's `bot_id`. It carries no `bot_profile`, so a bot that
    ignores its own posts must recognise this one by `bot_id` or `user`.
    """
    event = message_event(state, message, channel)
    event.pop("bot_profile", None)
    event["subtype"] = "file_share"
    return event


def app_mention_event(state: WorkspaceState, message: Message) -> JSON:
    """The `app_mention` twin Slack sends for a channel message that mentions the bot."""
    event: JSON = {
        "type": "app_mention",
        "user": message.user,
        "text": message.text,
        "ts": message.ts,
        "team": state.team_id,
        "channel": message.channel,
        "event_ts": message.ts,
    }
    if message.client_msg_id:
        event["client_msg_id"] = message.client_msg_id
    if message.blocks is not None:
        event["blocks"] = message.blocks
    # A mention that shares files or forwards a message carries them, as its message twin does.
    if message.files:
        event |= {"files": message.files, "upload": False, "display_as_bot": False}
    if message.attachments:
        event["attachments"] = message.attachments
    if message.is_reply:
        event["thread_ts"] = message.thread_ts
        root = state.get(message.channel, message.thread_ts)
        if root is not None:
            event["parent_user_id"] = root.user
    return event


def message_changed_event(
    state: WorkspaceState, channel: Channel, before: JSON, after: Message
) -> JSON:
    """`message` with subtype `message_changed`, sent after chat.update."""
    event_ts = state.next_ts()
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": state.render(after),
        "previous_message": before,
        "channel": channel.id,
        "hidden": True,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": channel.channel_type,
    }


def message_deleted_event(state: WorkspaceState, channel: Channel, before: JSON) -> JSON:
    """`message` with subtype `message_deleted`, sent after chat.delete."""
    event_ts = state.next_ts()
    return {
        "type": "message",
        "subtype": "message_deleted",
        "previous_message": before,
        "channel": channel.id,
        "hidden": True,
        "deleted_ts": before["ts"],
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": channel.channel_type,
    }


def bot_profile(state: WorkspaceState) -> JSON:
    return {
        "id": state.bot_id,
        "app_id": state.app_id,
        "name": "agent",
        "deleted": False,
        "team_id": state.team_id,
        "updated": 1_700_000_000,
        "icons": {},
    }


def channel_name(channel: Channel) -> str:
    return "directmessage" if channel.is_im else channel.name


def slash_command_form(
    state: WorkspaceState, command: str, text: str, user: User, channel: Channel, response_url: str
) -> dict[str, str]:
    """The form fields of a slash command request."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": state.team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel.id,
        "channel_name": channel_name(channel),
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": state.app_id,
        "is_enterprise_install": "true" if state.enterprise_id else "false",
        **(
            {"enterprise_id": state.enterprise_id, "enterprise_name": "Sandbox Org"}
            if state.enterprise_id
            else {}
        ),
        "response_url": response_url,
        "trigger_id": new_trigger_id(),
    }


def block_actions_payload(
    state: WorkspaceState,
    user: User,
    channel: Channel,
    message: Message,
    action: JSON,
    response_url: str,
) -> JSON:
    """The `block_actions` payload for a click on a button in a stored message."""
    container: JSON = {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": channel.id,
        "is_ephemeral": False,
    }
    if message.is_reply:
        container["thread_ts"] = message.thread_ts
    return {
        "type": "block_actions",
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": state.team_id},
        "api_app_id": state.app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": new_trigger_id(),
        "team": None if state.enterprise_id else {"id": state.team_id, "domain": TEAM_DOMAIN},
        "enterprise": _org(state),
        "is_enterprise_install": state.enterprise_id is not None,
        "channel": {"id": channel.id, "name": channel_name(channel)},
        "message": state.render(message),
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def message_action_payload(
    state: WorkspaceState,
    user: User,
    channel: Channel,
    message: Message,
    callback_id: str,
    response_url: str,
) -> JSON:
    """The `message_action` payload for a message shortcut run on a stored message."""
    return {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": f"{time.time():.6f}",
        "team": None if state.enterprise_id else {"id": state.team_id, "domain": TEAM_DOMAIN},
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": state.team_id},
        "channel": {"id": channel.id, "name": channel_name(channel)},
        "is_enterprise_install": state.enterprise_id is not None,
        "enterprise": _org(state),
        "api_app_id": state.app_id,
        "callback_id": callback_id,
        "trigger_id": new_trigger_id(),
        "response_url": response_url,
        "message_ts": message.ts,
        "message": state.render(message),
    }


def find_button(blocks: list[JSON] | None, action_id: str) -> tuple[str, JSON] | None:
    """Find an interactive element by action_id; returns (block_id, element)."""
    for block in blocks or []:
        elements = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id") or ""), element
    return None


def new_client_msg_id() -> str:
    return str(uuid.uuid4())
