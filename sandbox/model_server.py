"""Offline, OpenAI-compatible model server: `POST /v1/chat/completions` and `GET /v1/models`.

It streams Server-Sent Events exactly as OpenAI's chat completions API does (text and tool
calls), slowly enough to interrupt, and records each request, including what it answered and
when the client hung up mid-stream. Tests script answers and failures through `/_model/...`;
unscripted requests that offer tools are worked by the demo agent (`sandbox.model_agent`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from sandbox.control_common import json_error, read_model
from sandbox.model_records import (
    Answer,
    RequestRecord,
    chunk_json,
    completion,
    compose,
    delta_choice,
    usage_json,
)
from sandbox.model_script import (
    PaceIn,
    ScriptIn,
    ScriptItem,
    error_body,
    tool_call_problem,
    tool_names,
    tools_problem,
)

JSON = dict[str, Any]


@dataclass
class ModelConfig:
    """Settings of the offline model; with `api_key` set, other keys get 401."""

    api_key: str | None = None
    chunk_delay: float = 0.15
    model: str = "sandbox-demo-model"
    # How often a stream checks, while waiting, whether its client went away.
    poll_interval: float = 0.01
    # Serve with aiohttp's handler cancellation: a client hanging up cancels its stream at
    # once (exact `client_closed_at`), so the poll above can be slow (cheap with many streams).
    cancel_on_disconnect: bool = False


class ModelServer:
    """State of one model server: the script queue, pace and request log."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.chunk_delay = config.chunk_delay
        self.min_chunks = 0
        self.script: deque[ScriptItem] = deque()
        self.requests: list[RequestRecord] = []
        self.stopping = False

    def next_item(self, messages: object) -> ScriptItem | None:
        """Take the first scripted reply that may answer a request with `messages`."""
        for item in self.script:
            if item.answers(messages):
                self.script.remove(item)
                return item
        return None


MODEL_KEY = web.AppKey("model_server", ModelServer)


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def pause(request: web.Request, server: ModelServer, seconds: float) -> str | None:
    """Sleep `seconds` unless the client leaves or the server stops; returns which happened."""
    deadline = time.monotonic() + seconds
    while True:
        if client_gone(request):
            return "client_closed"
        if server.stopping:
            return "aborted"
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        await asyncio.sleep(min(server.config.poll_interval, left))


def openai_error(status: int, retry_after: float | None = None, **kw: Any) -> web.Response:
    headers = {"x-request-id": f"req_{secrets.token_hex(12)}"}
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    return web.json_response(error_body(status, **kw), status=status, headers=headers)


def check_auth(request: web.Request, server: ModelServer) -> web.Response | None:
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
        return openai_error(401, message=message, code="")
    key = auth.removeprefix("Bearer ").strip()
    if server.config.api_key is not None and key != server.config.api_key:
        return openai_error(401, message="Incorrect API key provided.", code="invalid_api_key")
    return None


async def parse_request(request: web.Request) -> JSON | web.Response:
    try:
        body = json.loads(await request.read())
    except ValueError:
        message = "We could not parse the JSON body of your request."
        return openai_error(400, message=message)
    if not isinstance(body, dict):
        return openai_error(400, message="The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        message = "you must provide a model parameter"
        return openai_error(400, message=message, code="missing_required_parameter", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        message = "Missing required parameter: 'messages'."
        return openai_error(
            400, message=message, code="missing_required_parameter", param="messages"
        )
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        return openai_error(
            400, message="Invalid 'messages': each needs a 'role'.", param="messages"
        )
    return stream_options_problem(body) or body


_JSON_TYPES = {str: "a string", bool: "a boolean", int: "an integer", float: "a decimal"}


def _json_type(value: object) -> str:
    """How OpenAI names a JSON value's type in its errors."""
    if isinstance(value, list):
        return "an array"
    return _JSON_TYPES.get(type(value), "an object")


def stream_options_problem(body: JSON) -> web.Response | None:
    """OpenAI's checks of `stream_options`: an object, only with `stream`, and its
    `include_usage` a boolean."""
    options = body.get("stream_options")
    if options is None:
        return None
    param = "stream_options"
    if not isinstance(options, dict):
        kind = _json_type(options)
        message = f"Invalid type for 'stream_options': expected an object, but got {kind} instead."
        return openai_error(400, message=message, code="invalid_type", param=param)
    if not body.get("stream"):
        message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        return openai_error(400, message=message, param=param)
    usage = options.get("include_usage")
    if usage is not None and not isinstance(usage, bool):
        kind = _json_type(usage)
        message = (
            "Invalid type for 'stream_options.include_usage': expected a boolean, but got "
            f"{kind} instead."
        )
        return openai_error(
            400, message=message, code="invalid_type", param="stream_options.include_usage"
        )
    return None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    server = request.app[MODEL_KEY]
    denied = check_auth(request, server)
    if denied is not None:
        return denied
    body = await parse_request(request)
    if isinstance(body, web.Response):
        return body
    record = RequestRecord(
        id=f"chatcmpl-{secrets.token_hex(12)}",
        received_at=time.time(),
        messages=body["messages"],
        model=body["model"],
        stream=bool(body.get("stream")),
    )
    server.requests.append(record)
    problem = tools_problem(body.get("tools")) or tool_call_problem(body["messages"])
    if problem is not None:
        record.error = problem.message
        record.finish("rejected", status=400)
        return openai_error(400, message=problem.message, code=problem.code, param=problem.param)
    if body.get("tool_choice") != "none":
        record.tools = tool_names(body.get("tools"))
    item = server.next_item(body["messages"])
    record.scripted = item is not None
    try:
        return await answer(request, server, record, item or ScriptItem(), body)
    except asyncio.CancelledError:
        # Servers running with handler_cancellation=True cancel us when the client leaves.
        if record.outcome == "pending" and client_gone(request):
            record.client_closed_at = time.time()
            record.finish("client_closed")
        elif record.outcome == "pending":
            record.finish("aborted")
        raise


async def answer(
    request: web.Request, server: ModelServer, record: RequestRecord, item: ScriptItem, body: JSON
) -> web.StreamResponse:
    interrupted = await pause(request, server, item.hang) if item.hang else None
    if interrupted == "client_closed":
        record.client_closed_at = time.time()
        record.finish("client_closed", status=499)
        return web.Response(status=499)
    if interrupted:
        record.finish("aborted", status=503)
        return openai_error(503)
    if item.status is not None:
        record.finish("error", status=item.status)
        return openai_error(item.status, retry_after=item.retry_after)
    reply = compose(record, item, server.min_chunks)
    record.answer_text, record.tool_calls = reply.text, reply.tool_calls
    record.finish_reason = reply.finish_reason
    deltas = reply.deltas()
    if not record.stream:
        record.finish("completed")
        return web.json_response(completion(record, reply, len(deltas)))
    delay = item.chunk_delay if item.chunk_delay is not None else server.chunk_delay
    usage = (body.get("stream_options") or {}).get("include_usage") is True
    pacing = Pacing(delay, item.close_after, usage)
    return await stream(request, server, record, reply, deltas, pacing)


async def send_event(request: web.Request, resp: web.StreamResponse, data: JSON | str) -> bool:
    """Write one SSE `data:` line; False if the client is gone."""
    if client_gone(request):
        return False
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    try:
        await resp.write(f"data: {payload}\n\n".encode())
    except ConnectionResetError:
        return False
    return True


async def sse_response(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "x-request-id": f"req_{secrets.token_hex(12)}",
        }
    )
    await resp.prepare(request)
    return resp


@dataclass(frozen=True)
class Pacing:
    """How a stream is paced and ended: delay per chunk, a cut, a usage chunk."""

    delay: float
    close_after: int | None
    usage: bool


async def stream(
    request: web.Request,
    server: ModelServer,
    record: RequestRecord,
    reply: Answer,
    deltas: list[JSON],
    pacing: Pacing,
) -> web.StreamResponse:
    """Stream the answer as chat.completion.chunk events, ending with `data: [DONE]`."""
    resp = await sse_response(request)
    first = chunk_json(record, delta_choice(reply.first_delta()), pacing.usage)
    if not await send_event(request, resp, first):
        return client_closed(record, resp)
    for index, delta in enumerate(deltas):
        if pacing.close_after is not None and index >= pacing.close_after:
            return aborted(request, record, resp)
        interrupted = await pause(request, server, pacing.delay)
        if interrupted == "client_closed":
            return client_closed(record, resp)
        if interrupted:
            return aborted(request, record, resp)
        if not await send_event(
            request, resp, chunk_json(record, delta_choice(delta), pacing.usage)
        ):
            return client_closed(record, resp)
        now = time.time()
        record.chunks_sent += 1
        record.chunk_times.append(now)
        record.first_chunk_at = record.first_chunk_at or now
    return await finish_stream(request, record, resp, reply.finish_reason, len(deltas), pacing)


async def finish_stream(
    request: web.Request,
    record: RequestRecord,
    resp: web.StreamResponse,
    finish_reason: str,
    completion_tokens: int,
    pacing: Pacing,
) -> web.StreamResponse:
    usage = pacing.usage
    tail: list[JSON | str] = [chunk_json(record, delta_choice({}, finish_reason), usage)]
    if usage:
        tail.append(
            chunk_json(record, [], False) | {"usage": usage_json(record, completion_tokens)}
        )
    tail.append("[DONE]")
    for data in tail:
        if not await send_event(request, resp, data):
            return client_closed(record, resp)
    try:
        await resp.write_eof()
    except ConnectionResetError:
        return client_closed(record, resp)
    record.finish("completed")
    return resp


def client_closed(record: RequestRecord, resp: web.StreamResponse) -> web.StreamResponse:
    record.client_closed_at = time.time()
    record.finish("client_closed")
    return resp


def aborted(
    request: web.Request, record: RequestRecord, resp: web.StreamResponse
) -> web.StreamResponse:
    # Closing the transport mid-body (no final chunk, no [DONE]) is what a crashed or
    # overloaded upstream looks like to the client.
    if request.transport is not None:
        request.transport.close()
    record.finish("aborted")
    return resp


async def list_models(request: web.Request) -> web.Response:
    server = request.app[MODEL_KEY]
    denied = check_auth(request, server)
    if denied is not None:
        return denied
    model = {"id": server.config.model, "object": "model", "created": 1_700_000_000}
    return web.json_response({"object": "list", "data": [model | {"owned_by": "sandbox"}]})


async def add_script(request: web.Request) -> web.Response:
    server = request.app[MODEL_KEY]
    data = await read_model(request, ScriptIn)
    server.script.extend(data.responses)
    return web.json_response({"ok": True, "queued": len(server.script)})


async def clear_script(request: web.Request) -> web.Response:
    request.app[MODEL_KEY].script.clear()
    return web.json_response({"ok": True})


async def set_pace(request: web.Request) -> web.Response:
    server = request.app[MODEL_KEY]
    pace = await read_model(request, PaceIn)
    server.chunk_delay = pace.chunk_delay
    if pace.min_chunks is not None:
        server.min_chunks = pace.min_chunks
    out = {"chunk_delay": server.chunk_delay, "min_chunks": server.min_chunks}
    return web.json_response({"ok": True, **out})


async def list_requests(request: web.Request) -> web.Response:
    """The request log; `?since=UNIX_SECONDS` keeps only requests received at or after it."""
    server = request.app[MODEL_KEY]
    try:
        since = float(request.query.get("since", "0"))
    except ValueError:
        raise json_error(400, "invalid_since") from None
    found = [asdict(r) for r in server.requests if r.received_at >= since]
    return web.json_response({"requests": found})


async def clear_requests(request: web.Request) -> web.Response:
    request.app[MODEL_KEY].requests.clear()
    return web.json_response({"ok": True})


async def _stop_streams(app: web.Application) -> None:
    # Cut running streams at shutdown instead of waiting out the server's grace period.
    app[MODEL_KEY].stopping = True


def create_model_app(config: ModelConfig) -> web.Application:
    """Build the offline model server application for `config`."""
    app = web.Application()
    app[MODEL_KEY] = ModelServer(config)
    app.on_shutdown.append(_stop_streams)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_post("/_model/script", add_script)
    app.router.add_delete("/_model/script", clear_script)
    app.router.add_post("/_model/pace", set_pace)
    app.router.add_get("/_model/requests", list_requests)
    app.router.add_delete("/_model/requests", clear_requests)
    return app
