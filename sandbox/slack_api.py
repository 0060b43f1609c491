"""Slack Web API stand-in: `/api/{method}` with Slack's argument parsing, auth and error codes.

Arguments come from the query string, form bodies or JSON bodies (token in the
`Authorization: Bearer` header, or as a `token` argument outside JSON bodies), exactly as
Slack accepts them. API-level errors are HTTP 200 `{"ok": false, "error": ...}`; a call past
Slack's rate limits is HTTP 429 `{"ok": false, "error": "ratelimited"}` with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

from common.slack_limits import POST_MESSAGE
from sandbox.slack_payloads import bot_profile
from sandbox.slack_records import Fault
from sandbox.slack_state import Channel, Message
from sandbox.workspace import WORKSPACE_KEY, Workspace

JSON = dict[str, Any]
Handler = Callable[[Workspace, JSON, web.Request], JSON]

log = structlog.get_logger("sandbox.slack_api")

MAX_TEXT = 40_000
MAX_BLOCKS = 50
NO_AUTH_METHODS = frozenset({"api.test"})


class SlackError(Exception):
    """An API-level error answered as {"ok": false, "error": code}."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


async def read_args(request: web.Request) -> tuple[JSON, str | None]:
    """Merge query and body arguments and find the token the way Slack does."""
    args: JSON = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = json.loads(await request.read())
            except (ValueError, UnicodeDecodeError) as exc:
                raise SlackError("invalid_json") from exc
            if not isinstance(body, dict):
                raise SlackError("invalid_json")
            body.pop("token", None)  # Slack ignores tokens inside JSON bodies
            args.update(body)
        else:
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
    token = args.pop("token", None)
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        token = auth.removeprefix("Bearer ").strip()
    return args, (str(token) if token else None)


def arg_str(args: JSON, name: str) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def parse_blocks(args: JSON) -> list[JSON] | None:
    """`blocks` as a list (JSON-encoded string in form bodies); adds missing block_ids."""
    raw = args.get("blocks")
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise SlackError("invalid_blocks_format") from exc
    if not isinstance(raw, list):
        raise SlackError("invalid_blocks_format")
    if len(raw) > MAX_BLOCKS or not all(
        isinstance(b, dict) and isinstance(b.get("type"), str) for b in raw
    ):
        raise SlackError("invalid_blocks")
    return [b if b.get("block_id") else {**b, "block_id": secrets.token_hex(3)} for b in raw]


def require_channel(ws: Workspace, args: JSON, name: str = "channel") -> Channel:
    channel = ws.state.resolve_channel(arg_str(args, name))
    if channel is None:
        raise SlackError("channel_not_found")
    return channel


def require_message(ws: Workspace, channel: Channel, ts: str | None) -> Message:
    message = ws.state.get(channel.id, ts)
    if message is None:
        raise SlackError("message_not_found")
    return message


def message_text(args: JSON) -> tuple[str | None, list[JSON] | None]:
    text = arg_str(args, "text")
    blocks = parse_blocks(args)
    if text is not None and len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    return text, blocks


def bot_message_json(ws: Workspace, message: Message) -> JSON:
    return ws.state.render(message) | {"bot_profile": bot_profile(ws.state)}


def api_test(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    if "error" in args:
        raise SlackError(str(args["error"]), args=args)
    return {"args": args}


def auth_test(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    return {
        "url": f"{request.url.origin()}/",
        "team": "Sandbox Workspace",
        "user": "agent",
        "team_id": ws.config.team_id,
        "user_id": ws.config.bot_user_id,
        "bot_id": ws.config.bot_id,
        "is_enterprise_install": ws.state.enterprise_id is not None,
        **({"enterprise_id": ws.state.enterprise_id} if ws.state.enterprise_id else {}),
    }


def chat_post_message(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    channel = require_channel(ws, args)
    text, blocks = message_text(args)
    if text is None and blocks is None and not args.get("attachments"):
        raise SlackError("no_text")
    message = ws.post_bot_message(channel, text or "", blocks, arg_str(args, "thread_ts"))
    return {"channel": channel.id, "ts": message.ts, "message": bot_message_json(ws, message)}


def chat_update(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    channel = require_channel(ws, args)
    message = require_message(ws, channel, arg_str(args, "ts"))
    if message.bot_id != ws.config.bot_id:
        raise SlackError("cant_update_message")
    text, blocks = message_text(args)
    if text is None and blocks is None:
        raise SlackError("no_text")
    ws.update_message(channel, message, text, blocks)
    return {
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": bot_message_json(ws, message),
    }


def chat_post_ephemeral(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    channel = require_channel(ws, args)
    user = arg_str(args, "user")
    if user is None or user not in ws.state.users:
        raise SlackError("user_not_found")
    if not ws.state.is_member(channel, user):
        raise SlackError("user_not_in_channel")
    text, blocks = message_text(args)
    if text is None and blocks is None and not args.get("attachments"):
        raise SlackError("no_text")
    payload = {"text": text or "", "blocks": blocks}
    return {"message_ts": ws.add_ephemeral(channel.id, user, payload, arg_str(args, "thread_ts"))}


def chat_delete(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    channel = require_channel(ws, args)
    message = require_message(ws, channel, arg_str(args, "ts"))
    if message.bot_id != ws.config.bot_id:
        raise SlackError("cant_delete_message")
    ws.delete_message(channel, message)
    return {"channel": channel.id, "ts": message.ts}


def chat_get_permalink(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    channel = require_channel(ws, args)
    message = require_message(ws, channel, arg_str(args, "message_ts"))
    link = f"{request.url.origin()}/archives/{channel.id}/p{message.ts.replace('.', '')}"
    if message.is_reply:
        link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
    return {"channel": channel.id, "permalink": link}


def _reaction(ws: Workspace, args: JSON, add: bool) -> JSON:
    channel = require_channel(ws, args)
    ts = arg_str(args, "timestamp")
    if ts is None:
        raise SlackError("no_item_specified")
    name = (arg_str(args, "name") or "").strip(":")
    if not name:
        raise SlackError("invalid_name")
    message = require_message(ws, channel, ts)
    error = ws.set_reaction(message, name, ws.config.bot_user_id, add)
    if error:
        raise SlackError(error)
    return {}


def reactions_add(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    return _reaction(ws, args, add=True)


def reactions_remove(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    return _reaction(ws, args, add=False)


def conversations_replies(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    channel = require_channel(ws, args)
    ts = arg_str(args, "ts")
    if ts is None:
        raise SlackError("invalid_arguments")
    if ws.state.get(channel.id, ts) is None:
        raise SlackError("thread_not_found")
    root_ts = ws.state.thread_root_ts(channel.id, ts)
    found = [m for m in ws.state.thread(channel.id, root_ts) if _in_window(m.ts, args)]
    limit = _page_limit(args)
    start = _cursor_offset(args.get("cursor"))
    page = found[start : start + limit]
    more = start + limit < len(found)
    cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
    return {
        "messages": [ws.state.render(m) for m in page],
        "has_more": more,
        "response_metadata": {"next_cursor": cursor},
    }


def _in_window(ts: str, args: JSON) -> bool:
    """`oldest` / `latest` bound the messages, exclusive unless `inclusive` is true."""
    inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
    try:
        at = float(ts)
        oldest = float(arg_str(args, "oldest") or "-inf")
        latest = float(arg_str(args, "latest") or "inf")
    except ValueError as exc:
        raise SlackError("invalid_ts_latest") from exc
    if inclusive:
        return oldest <= at <= latest
    return oldest < at < latest


def _page_limit(args: JSON) -> int:
    try:
        limit = int(arg_str(args, "limit") or 1000)
    except ValueError as exc:
        raise SlackError("invalid_limit") from exc
    return max(1, min(limit, 1000))


def _cursor_offset(cursor: object) -> int:
    if not cursor:
        return 0
    try:
        kind, _, offset = base64.b64decode(str(cursor)).decode().partition(":")
        if kind != "offset":
            raise ValueError(kind)
        return int(offset)
    except ValueError as exc:
        raise SlackError("invalid_cursor") from exc


def conversations_history(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    channel = require_channel(ws, args)
    try:
        limit = int(arg_str(args, "limit") or 100)
    except ValueError as exc:
        raise SlackError("invalid_limit") from exc
    newest_first = [ws.state.render(m) for m in reversed(ws.state.top_level(channel.id))]
    return {
        "messages": newest_first[:limit],
        "has_more": len(newest_first) > limit,
        "pin_count": 0,
        "response_metadata": {"next_cursor": ""},
    }


def conversations_info(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    return {"channel": ws.state.channel_json(require_channel(ws, args))}


def users_info(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    user = ws.state.users.get(arg_str(args, "user") or "")
    if user is None:
        raise SlackError("user_not_found")
    return {"user": ws.state.user_json(user)}


def assistant_threads_set_status(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    channel = require_channel(ws, args, "channel_id")
    thread_ts = arg_str(args, "thread_ts")
    if thread_ts is None:
        raise SlackError("invalid_arguments")
    status = arg_str(args, "status") or ""
    ws.hub.publish(
        "assistant_status", {"channel": channel.id, "thread_ts": thread_ts, "status": status}
    )
    return {}


METHODS: dict[str, Handler] = {
    "api.test": api_test,
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.delete": chat_delete,
    "chat.getPermalink": chat_get_permalink,
    "reactions.add": reactions_add,
    "reactions.remove": reactions_remove,
    "conversations.replies": conversations_replies,
    "conversations.history": conversations_history,
    "conversations.info": conversations_info,
    "users.info": users_info,
    "assistant.threads.setStatus": assistant_threads_set_status,
}


async def apply_fault(fault: Fault) -> tuple[int, JSON, dict[str, str]] | None:
    """Answer for an injected fault, or None to proceed normally after its delay."""
    if fault.delay:
        await asyncio.sleep(fault.delay)
    headers = {}
    if fault.retry_after is not None or fault.status == 429:
        retry_after = fault.retry_after if fault.retry_after is not None else 1
        headers["Retry-After"] = str(round(retry_after))
    if fault.status is not None:
        default = "ratelimited" if fault.status == 429 else "fatal_error"
        return fault.status, {"ok": False, "error": fault.error or default}, headers
    if fault.error:
        return 200, {"ok": False, "error": fault.error}, {}
    return None


def all_methods() -> dict[str, Handler]:
    # These modules build on this one, so they are imported here rather than at the top.
    from sandbox.slack_conversations import CONVERSATION_METHODS
    from sandbox.slack_files import FILE_METHODS
    from sandbox.slack_streaming import STREAMING_METHODS

    return {**METHODS, **STREAMING_METHODS, **FILE_METHODS, **CONVERSATION_METHODS}


def post_channel(ws: Workspace, method: str, args: JSON) -> str | None:
    """The channel a `chat.postMessage` counts against; None for other methods, or no channel."""
    if method != POST_MESSAGE:
        return None
    channel = ws.state.resolve_channel(arg_str(args, "channel"))
    return channel.id if channel is not None else None


async def dispatch(
    ws: Workspace, method: str, request: web.Request, args: JSON, token: str | None
) -> tuple[int, JSON, dict[str, str]]:
    handler = all_methods().get(method)
    if handler is None:
        return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
    if method not in NO_AUTH_METHODS:
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token != ws.config.bot_token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
    refusal = ws.limits.admit(method, post_channel(ws, method, args))
    if refusal is not None:
        ws.count_rate_limited(method, refusal.during_retry_after)
        headers = {"Retry-After": str(refusal.retry_after)}
        return 429, {"ok": False, "error": "ratelimited"}, headers
    fault = ws.faults.take(method)
    if fault is not None:
        answer = await apply_fault(fault)
        if answer is not None:
            return answer
    try:
        return 200, {"ok": True, **handler(ws, args, request)}, {}
    except SlackError as exc:
        return 200, {"ok": False, "error": exc.code, **exc.extra}, {}


async def handle_api(request: web.Request) -> web.Response:
    """Entry point for every `/api/{method}` request; records the call."""
    ws = request.app[WORKSPACE_KEY]
    method = request.match_info["method"]
    started, wall = time.monotonic(), time.time()
    args: JSON = {}
    try:
        args, token = await read_args(request)
        status, body, headers = await dispatch(ws, method, request, args, token)
    except SlackError as exc:
        status, body, headers = 200, {"ok": False, "error": exc.code}, {}
    ws.records.calls.append(
        {
            "id": len(ws.records.calls) + 1,
            "method": method,
            "args": args,
            "monotonic": started,
            "wall": wall,
            "duration": round(time.monotonic() - started, 4),
            "http_status": status,
            "response": body,
        }
    )
    log.info("api_call", method=method, status=status, ok=body.get("ok"), error=body.get("error"))
    return web.json_response(body, status=status, headers=headers)


def register_api(app: web.Application) -> None:
    """The Web API, and the file upload and download URLs its file methods hand out."""
    from sandbox.slack_files import register_files  # it builds on this module

    app.router.add_route("*", "/api/{method}", handle_api)
    register_files(app)
