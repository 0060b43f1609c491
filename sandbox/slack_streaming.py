"""Slack's streaming methods for agents: chat.startStream, chat.appendStream, chat.stopStream.

A stream is a bot message in a thread whose `markdown_text` grows with each append until it is
stopped; appending to a message that is not streaming fails as Slack does.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.slack_api import (
    SlackError,
    arg_str,
    bot_message_json,
    require_channel,
    require_message,
)
from sandbox.workspace import Workspace

JSON = dict[str, Any]


def _markdown(args: JSON) -> str:
    text = args.get("markdown_text")
    return text if isinstance(text, str) else ""


def chat_start_stream(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    channel = require_channel(ws, args)
    thread_ts = arg_str(args, "thread_ts")
    if not thread_ts:
        raise SlackError("invalid_arguments")
    message = ws.post_bot_message(channel, _markdown(args), None, thread_ts)
    ws.streams.add((channel.id, message.ts))
    return {"channel": channel.id, "ts": message.ts}


def _streaming_message(ws: Workspace, args: JSON) -> tuple[Any, Any]:
    channel = require_channel(ws, args)
    message = require_message(ws, channel, arg_str(args, "ts"))
    if (channel.id, message.ts) not in ws.streams:
        raise SlackError("message_not_in_streaming_state")
    return channel, message


def chat_append_stream(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    channel, message = _streaming_message(ws, args)
    if not _markdown(args):
        raise SlackError("no_text")
    ws.update_message(channel, message, message.text + _markdown(args), None)
    return {"channel": channel.id, "ts": message.ts}


def chat_stop_stream(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    channel, message = _streaming_message(ws, args)
    if _markdown(args):
        ws.update_message(channel, message, message.text + _markdown(args), None)
    ws.streams.discard((channel.id, message.ts))
    return {"channel": channel.id, "ts": message.ts, "message": bot_message_json(ws, message)}


STREAMING_METHODS = {
    "chat.startStream": chat_start_stream,
    "chat.appendStream": chat_append_stream,
    "chat.stopStream": chat_stop_stream,
}
