"""Slack's agent sessions, as an app declared an agent uses them: `agents.sessions.setStatus`
(a thread's session `processing` while the agent works, then `active`, `suspended` or
`closed`), and the stop button Slack shows while a session is processing, which sends the app
`agent_session_stopped` (with the ts of its streams Slack stopped).

The button is pressed through the control API (`POST /_sandbox/agent_stop`), as a person
would press it in Slack.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from sandbox.control_common import json_error, read_model
from sandbox.slack_api import JSON, SlackError, arg_str, require_channel
from sandbox.slack_payloads import envelope
from sandbox.workspace import WORKSPACE_KEY, Workspace

STATUSES = frozenset({"active", "processing", "suspended", "closed"})
MAX_TITLE = 200


def agents_sessions_set_status(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    status = arg_str(args, "status")
    if status is None:
        raise SlackError("invalid_arguments")
    if status not in STATUSES:
        raise SlackError("invalid_status")
    channel = require_channel(ws, args, "channel_id")
    thread_ts = arg_str(args, "thread_ts")
    if thread_ts is None or ws.state.get(channel.id, thread_ts) is None:
        raise SlackError("thread_not_found")
    title = arg_str(args, "title")
    if title is not None and len(title) > MAX_TITLE:
        raise SlackError("invalid_title")
    session = ws.agent_sessions.setdefault((channel.id, thread_ts), {"title": title or ""})
    session["status"] = status
    ws.hub.publish("agent_session", {"channel": channel.id, "thread_ts": thread_ts, **session})
    return {"status": status, "title": session["title"]}


AGENT_SESSION_METHODS = {"agents.sessions.setStatus": agents_sessions_set_status}


class AgentStopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str
    thread_ts: str
    user: str


async def agent_stop(request: web.Request) -> web.Response:
    """A person presses Slack's stop button on a processing session: Slack stops the app's
    streams in the thread and sends it `agent_session_stopped`."""
    ws = request.app[WORKSPACE_KEY]
    data = await read_model(request, AgentStopIn)
    session = ws.agent_sessions.get((data.channel, data.thread_ts))
    if session is None or session.get("status") != "processing":
        raise json_error(409, "not_processing")
    streams = sorted(ts for channel, ts in ws.streams if channel == data.channel)
    event: JSON = {
        "type": "agent_session_stopped",
        "channel": data.channel,
        "thread_ts": data.thread_ts,
        "user": data.user,
        "streaming_message_ts": [
            ts for ts in streams if _in_thread(ws, data.channel, ts, data.thread_ts)
        ],
        "event_ts": ws.state.next_ts(),
    }
    deliveries = await ws.deliverer.deliver_events([envelope(ws.state, event)])
    return web.json_response({"ok": True, "deliveries": deliveries})


def _in_thread(ws: Workspace, channel: str, ts: str, thread_ts: str) -> bool:
    message = ws.state.get(channel, ts)
    return message is not None and message.thread_ts == thread_ts


async def list_agent_sessions(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE_KEY]
    sessions = [
        {"channel": channel, "thread_ts": ts, **session}
        for (channel, ts), session in ws.agent_sessions.items()
    ]
    return web.json_response({"sessions": sessions})


def register_agent_sessions(app: web.Application) -> None:
    app.router.add_get("/_sandbox/agent_sessions", list_agent_sessions)
    app.router.add_post("/_sandbox/agent_stop", agent_stop)
