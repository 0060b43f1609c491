"""Control API of the sandbox workspace (`/_sandbox/...`): act as users, inspect, inject faults,
switch Slack's rate limits.

Used by tests and by the page; none of it exists in real Slack.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sandbox.control_common import json_error, read_model
from sandbox.slack_files import content_response, shared_file_json
from sandbox.slack_records import Fault
from sandbox.slack_shares import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOADS,
    forward_attachment,
    person_upload,
    shared_in,
)
from sandbox.slack_state import Channel
from sandbox.workspace import WORKSPACE_KEY, Workspace

JSON = dict[str, Any]

SSE_PING_SECONDS = 15.0
# A message with its most and largest uploads must fit; JSON escaping a text file's newlines,
# tabs and quotes can double its size (aiohttp's default bound, 1 MiB, would refuse one file).
MAX_MESSAGE_BODY = 2 * MAX_UPLOADS * MAX_UPLOAD_BYTES + 64 * 1024


class UploadIn(BaseModel):
    """A file a person shares with the message (text, as the page's upload sends it)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    content: str

    @field_validator("content")
    @classmethod
    def _within_bound(cls, content: str) -> str:
        # The bound is on the file's bytes (UTF-8, as it is stored and as the page checks it),
        # not on its characters: "é" is two bytes.
        size = len(content.encode())
        if size > MAX_UPLOAD_BYTES:
            raise ValueError(
                f"a file may be at most {MAX_UPLOAD_BYTES} bytes in UTF-8; this one is {size}"
            )
        return content


class ForwardIn(BaseModel):
    """A message the person forwards into this one."""

    model_config = ConfigDict(extra="forbid")

    channel: str
    ts: str


class PostMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str
    user: str
    text: str = ""
    thread_ts: str | None = None
    files: list[UploadIn] = Field(default_factory=list, max_length=MAX_UPLOADS)
    forward: ForwardIn | None = None
    wait: bool = False
    # False: store the message but return its events instead of delivering them, for a
    # driver (the benchmarks) that sends them to the bot itself, on its own schedule.
    deliver: bool = True


class DeliverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: dict[str, Any] | str
    headers: dict[str, str] | None = None
    sign: bool = True
    timestamp: int | None = None
    content_type: str = "application/json"


class ConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_url: str | None


class InstallIn(BaseModel):
    """How the app is installed: in this workspace (null), or org-wide in organisation `E…`."""

    model_config = ConfigDict(extra="forbid")

    org_wide: str | None = Field(default=None, pattern=r"^E[A-Z0-9]{2,20}$")


def human_in_channel(ws: Workspace, user_id: str, channel_ref: str) -> Channel:
    """Validate that a human user may post in a channel; raise a 4xx JSON error if not."""
    channel = ws.state.resolve_channel(channel_ref)
    if channel is None:
        raise json_error(404, "channel_not_found")
    user = ws.state.users.get(user_id)
    if user is None or user.is_bot:
        raise json_error(404, "user_not_found")
    if not ws.state.is_member(channel, user_id):
        raise json_error(400, "user_not_in_channel")
    return channel


async def post_message(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    data = await read_model(request, PostMessageIn, MAX_MESSAGE_BODY)
    channel = human_in_channel(ws, data.user, data.channel)
    if data.thread_ts and ws.state.get(channel.id, data.thread_ts) is None:
        raise json_error(404, "thread_not_found")
    if not (data.text.strip() or data.files or data.forward):
        raise json_error(400, "no_text")
    shared = _shared(request, ws, data, channel)
    if not data.deliver:
        files, attachments = shared.get("files"), shared.get("attachments")
        message, events = ws.store_user_message(
            channel, data.user, data.text, data.thread_ts, files, attachments
        )
        stored = {"ok": True, "channel": channel.id, "ts": message.ts, "events": events}
        return web.json_response(stored | {"thread_ts": message.thread_ts})
    message, task, event_ids = ws.post_user_message(
        channel, data.user, data.text, data.thread_ts, **shared
    )
    out: JSON = {"ok": True, "channel": channel.id, "ts": message.ts, "event_ids": event_ids}
    out["thread_ts"] = message.thread_ts
    if data.wait:
        out["deliveries"] = await asyncio.shield(task)
    return web.json_response(out)


def _shared(
    request: web.Request, ws: Workspace, data: PostMessageIn, channel: Channel
) -> dict[str, list[JSON]]:
    """The uploads and the forwarded message a person's message carries, in Slack's shapes
    (the files are shared, in `files.info`, once the message carrying them is posted)."""
    base_url = str(request.url.origin())
    shared: dict[str, list[JSON]] = {}
    # The forward is checked first, so a refused one leaves no uploaded file behind.
    if data.forward is not None:
        source = human_in_channel(ws, data.user, data.forward.channel)
        original = ws.state.get(source.id, data.forward.ts)
        if original is None:
            raise json_error(404, "message_not_found")
        shared["attachments"] = [forward_attachment(ws, source, original, base_url)]
    uploads = [
        person_upload(ws, data.user, f.name, f.content.encode(), base_url) for f in data.files
    ]
    if uploads:
        shared["files"] = shared_in(ws, uploads, channel)
    return shared


async def deliver(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    data = await read_model(request, DeliverIn)
    raw = data.body if isinstance(data.body, str) else json.dumps(data.body)
    result = await ws.deliverer.post(
        raw.encode(),
        data.content_type,
        data.headers,
        signed=data.sign,
        timestamp=data.timestamp,
    )
    out = {"status": result.status, "body": result.body, "outcome": result.outcome}
    return web.json_response(out)


async def list_calls(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    method = request.query.get("method")
    calls = [c for c in ws.records.calls if method is None or c["method"] == method]
    return web.json_response({"calls": calls})


async def list_deliveries(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    event_id = request.query.get("event_id")
    found = [d for d in ws.records.deliveries if event_id is None or d["event_id"] == event_id]
    return web.json_response({"deliveries": found})


async def list_messages(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    channel = ws.state.resolve_channel(request.query.get("channel"))
    if channel is None:
        raise json_error(404, "channel_not_found")
    thread_ts = request.query.get("thread_ts")
    if thread_ts:
        root_ts = ws.state.thread_root_ts(channel.id, thread_ts)
        messages = ws.state.thread(channel.id, root_ts)
    else:
        messages = ws.state.top_level(channel.id)
    return web.json_response({"messages": [ws.state.render_for_page(m) for m in messages]})


async def list_files(request: web.Request) -> web.Response:
    """Every reserved file in Slack's files.info shape, plus the sandbox's upload state."""
    ws = request.app[WORKSPACE_KEY]
    channel = request.query.get("channel")
    found = []
    for file in ws.state.files.values():
        if channel is not None and channel not in {c for c, _ in file.shares}:
            continue
        info = shared_file_json(ws, file)
        info["reserved_length"] = file.length
        info["uploaded"] = file.data is not None
        info["completed"] = file.completed
        info["content_url"] = f"/_sandbox/files/{file.id}/content"
        found.append(info)
    return web.json_response({"files": found})


async def file_content(request: web.Request) -> web.Response:
    """A file's bytes for the page, which has no token for `url_private` (`?download=1`)."""
    ws = request.app[WORKSPACE_KEY]
    file = ws.state.files.get(request.match_info["file_id"])
    if file is None or file.data is None:
        raise json_error(404, "file_not_found")
    return content_response(file, file.data, request.query.get("download") == "1")


async def list_channels(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    channels = []
    for channel in ws.state.channels.values():
        info = ws.state.channel_json(channel)
        info["display_name"] = f"#{channel.name}" if not channel.is_im else "DM: alice ↔ agent"
        info["messages"] = [ws.state.render_for_page(m) for m in ws.state.top_level(channel.id)]
        channels.append(info)
    return web.json_response({"channels": channels})


async def list_users(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    users = [ws.state.user_json(u) for u in ws.state.users.values()]
    return web.json_response({"users": users, "bot_user_id": ws.config.bot_user_id})


async def list_ephemerals(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    user = request.query.get("user")
    found = [e for e in ws.records.ephemerals if user is None or e["user"] == user]
    return web.json_response({"ephemerals": found})


async def set_config(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    data = await read_model(request, ConfigIn)
    ws.config.bot_url = data.bot_url
    return web.json_response({"ok": True, "bot_url": ws.config.bot_url})


async def set_install(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    data = await read_model(request, InstallIn)
    ws.state.enterprise_id = data.org_wide
    return web.json_response({"ok": True, "org_wide": data.org_wide})


async def get_config(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    cfg = ws.config
    out: JSON = {"bot_url": cfg.bot_url, "team_id": cfg.team_id, "bot_user_id": cfg.bot_user_id}
    out |= {"bot_id": cfg.bot_id, "app_id": cfg.app_id, "org_wide": ws.state.enterprise_id}
    # What the page may attach to a message, so it refuses a file before posting it.
    out |= {"max_upload_bytes": MAX_UPLOAD_BYTES, "max_uploads": MAX_UPLOADS}
    return web.json_response(out)


class LimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


async def get_limits(request: web.Request) -> web.Response:
    """Whether Slack's rate limits are enforced, and the 429s answered since the last reset."""
    return web.json_response(request.app[WORKSPACE_KEY].limits_json())


async def set_limits(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    data = await read_model(request, LimitsIn)
    ws.set_limits(data.enabled)
    return web.json_response({"ok": True, **ws.limits_json()})


async def add_fault(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    fault = await read_model(request, Fault)
    ws.faults.add(fault)
    return web.json_response({"ok": True, "faults": ws.faults.pending()})


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response({"faults": request.app[WORKSPACE_KEY].faults.pending()})


async def clear_faults(request: web.Request) -> web.Response:
    request.app[WORKSPACE_KEY].faults.clear()
    return web.json_response({"ok": True})


async def reset(request: web.Request) -> web.Response:
    request.app[WORKSPACE_KEY].reset()
    return web.json_response({"ok": True})


async def event_stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events feed of workspace changes for the page."""
    ws = request.app[WORKSPACE_KEY]
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    if ws.hub.closed:
        return resp
    queue = ws.hub.subscribe()
    try:
        await resp.write(b": connected\n\n")
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), SSE_PING_SECONDS)
            except TimeoutError:
                await resp.write(b": ping\n\n")
                continue
            if event is None:
                break
            data = json.dumps(event, ensure_ascii=False)
            await resp.write(f"event: {event['type']}\ndata: {data}\n\n".encode())
    except ConnectionResetError:
        pass  # the page went away
    finally:
        ws.hub.unsubscribe(queue)
    return resp


def register_control(app: web.Application) -> None:
    add = app.router.add_route
    add("POST", "/_sandbox/messages", post_message)
    add("GET", "/_sandbox/messages", list_messages)
    add("POST", "/_sandbox/deliver", deliver)
    add("GET", "/_sandbox/calls", list_calls)
    add("GET", "/_sandbox/deliveries", list_deliveries)
    add("GET", "/_sandbox/channels", list_channels)
    add("GET", "/_sandbox/users", list_users)
    add("GET", "/_sandbox/ephemerals", list_ephemerals)
    add("GET", "/_sandbox/files", list_files)
    add("GET", "/_sandbox/files/{file_id}/content", file_content)
    add("GET", "/_sandbox/config", get_config)
    add("POST", "/_sandbox/config", set_config)
    add("POST", "/_sandbox/install", set_install)
    add("GET", "/_sandbox/faults", list_faults)
    add("POST", "/_sandbox/faults", add_fault)
    add("DELETE", "/_sandbox/faults", clear_faults)
    add("GET", "/_sandbox/limits", get_limits)
    add("POST", "/_sandbox/limits", set_limits)
    add("POST", "/_sandbox/reset", reset)
    add("GET", "/_sandbox/events", event_stream)
