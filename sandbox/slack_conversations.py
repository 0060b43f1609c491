"""`conversations.list` of the sandbox Web API: the workspace's channels, each with its purpose
and topic, in Slack's conversation objects, with Slack's `types`, `limit` and cursor paging."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from sandbox.slack_api import SlackError, arg_str
from sandbox.slack_state import Channel
from sandbox.workspace import Workspace

JSON = dict[str, Any]

TYPES = frozenset({"public_channel", "private_channel", "mpim", "im"})
MAX_LIMIT = 1000


def _types(args: JSON) -> set[str]:
    raw = arg_str(args, "types") or "public_channel"
    types = {part.strip() for part in raw.split(",") if part.strip()}
    if not types or not types <= TYPES:
        raise SlackError("invalid_types")
    return types


def _limit(args: JSON) -> int:
    raw = arg_str(args, "limit") or "100"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise SlackError("invalid_limit")
    return int(raw)


def _offset(args: JSON) -> int:
    """Where a page starts: Slack's cursors are opaque base64; these encode `offset:N`."""
    cursor = arg_str(args, "cursor")
    if cursor is None:
        return 0
    try:
        kind, _, number = base64.b64decode(cursor, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise SlackError("invalid_cursor") from exc
    if kind != "offset" or not number.isdigit():
        raise SlackError("invalid_cursor")
    return int(number)


def _listed(channel: Channel, types: set[str]) -> bool:
    return ("im" if channel.is_im else "public_channel") in types


def conversations_list(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    types, limit, offset = _types(args), _limit(args), _offset(args)
    channels = [c for c in ws.state.channels.values() if _listed(c, types)]
    page = channels[offset : offset + limit]
    more = offset + limit < len(channels)
    cursor = base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
    return {
        "channels": [ws.state.channel_json(c) for c in page],
        "response_metadata": {"next_cursor": cursor},
    }


CONVERSATION_METHODS = {"conversations.list": conversations_list}
