"""The offline model, driven by the real openai AsyncOpenAI client and by raw HTTP: text and
tool calls, OpenAI's checks of tools and tool messages, the request log and the script API."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from openai import AsyncStream
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

from sandbox.model_server import MODEL_KEY, ModelConfig, create_model_app

Client = TestClient[Any, Any]
Eventually = Callable[..., Awaitable[Any]]
USER: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Please refactor the billing module and add tests"}
]


@pytest.fixture
async def llm(model_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=model_url, api_key="x", max_retries=0)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def served_model() -> AsyncIterator[str]:
    """The model app behind a plain AppRunner, as `python -m sandbox` serves it."""
    runner = web.AppRunner(create_model_app(ModelConfig(chunk_delay=0.01)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def script(model: Client, *responses: dict[str, Any]) -> None:
    resp = await model.post("/_model/script", json={"responses": list(responses)})
    assert resp.status == 200, await resp.text()


async def requests_log(model: Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await (await model.get("/_model/requests")).json())["requests"]
    return found


async def test_streams_a_scripted_answer_chunk_by_chunk(
    llm: openai.AsyncOpenAI, model: Client
) -> None:
    await script(model, {"chunks": ["Hel", "lo ", "world"], "chunk_delay": 0.02})
    stream = await llm.chat.completions.create(model="demo", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert contents == ["Hel", "lo ", "world"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.id for c in chunks} == {chunks[0].id}
    assert chunks[0].object == "chat.completion.chunk"
    [record] = await requests_log(model)
    assert record["outcome"] == "completed"
    assert record["chunks_sent"] == 3
    assert len(record["chunk_times"]) == 3
    assert record["messages"] == USER
    assert record["first_chunk_at"] == record["chunk_times"][0] <= record["finished_at"]


async def test_include_usage_adds_a_final_usage_chunk(
    llm: openai.AsyncOpenAI, model: Client
) -> None:
    await script(model, {"text": "one two three"})
    stream = await llm.chat.completions.create(
        model="demo",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    assert all(c.usage is None for c in chunks[:-1])


async def test_wire_format_matches_openai_sse(model: Client) -> None:
    await script(model, {"text": "hi there"})
    body = {"model": "demo", "messages": USER, "stream": True}
    resp = await model.post(
        "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}
    )
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    raw = (await resp.read()).decode()
    events = raw.split("\n\n")
    assert events[-1] == ""
    assert events[-2] == "data: [DONE]"
    first = json.loads(events[0].removeprefix("data: "))
    assert first["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    assert first["system_fingerprint"] is None
    assert isinstance(first["created"], int)
    last = json.loads(events[-3].removeprefix("data: "))
    assert last["choices"][0]["delta"] == {}
    assert last["choices"][0]["finish_reason"] == "stop"


async def test_rate_limit_is_an_openai_rate_limit_error(
    llm: openai.AsyncOpenAI, model: Client
) -> None:
    await script(model, {"status": 429, "retry_after": 3})
    with pytest.raises(openai.RateLimitError) as info:
        await llm.chat.completions.create(model="demo", messages=USER, stream=True)
    assert info.value.response.headers["retry-after"] == "3"
    assert info.value.code == "rate_limit_exceeded"
    [record] = await requests_log(model)
    assert (record["status"], record["outcome"]) == (429, "error")


async def test_server_error_is_an_openai_internal_server_error(
    llm: openai.AsyncOpenAI, model: Client
) -> None:
    await script(model, {"status": 500})
    with pytest.raises(openai.InternalServerError):
        await llm.chat.completions.create(model="demo", messages=USER)


async def test_closing_the_stream_early_is_recorded_promptly(
    llm: openai.AsyncOpenAI, model: Client, eventually: Eventually
) -> None:
    await script(model, {"text": " ".join(["word"] * 40), "chunk_delay": 0.1})
    stream = await llm.chat.completions.create(model="demo", messages=USER, stream=True)
    received = 0
    async for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received == 2:
            break
    await stream.close()
    closed_at = time.time()
    [record] = await eventually(lambda: _closed(requests_log(model)), within=3)
    assert record["outcome"] == "client_closed"
    assert record["client_closed_at"] - closed_at < 0.5
    assert 2 <= record["chunks_sent"] < 40


async def test_disconnect_is_noticed_without_handler_cancellation(
    served_model: str, eventually: Eventually
) -> None:
    async with httpx.AsyncClient(base_url=served_model) as http:
        body = {"responses": [{"text": " ".join(["w"] * 50), "chunk_delay": 0.2}]}
        await http.post("/_model/script", json=body)
        llm = openai.AsyncOpenAI(base_url=f"{served_model}/v1", api_key="x", max_retries=0)
        stream = await llm.chat.completions.create(model="demo", messages=USER, stream=True)
        async for _ in stream:
            break
        await stream.close()
        closed_at = time.time()

        async def log() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (await http.get("/_model/requests")).json()["requests"]
            return found

        try:
            [record] = await eventually(lambda: _closed(log()), within=3)
        finally:
            await llm.close()
    assert record["client_closed_at"] - closed_at < 0.3
    assert record["chunks_sent"] <= 2


async def test_shutdown_cuts_running_streams_at_once(eventually: Eventually) -> None:
    app = create_model_app(ModelConfig(chunk_delay=0.5))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=30)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    llm = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
    try:
        stream = await llm.chat.completions.create(model="demo", messages=USER, stream=True)
        started = time.monotonic()
        await runner.cleanup()
        assert time.monotonic() - started < 2
        with pytest.raises(openai.APIConnectionError):
            await collect_content(stream, [])
    finally:
        await llm.close()
    [record] = app[MODEL_KEY].requests
    assert record.outcome == "aborted"


async def _closed(pending: Awaitable[list[dict[str, Any]]]) -> list[dict[str, Any]] | None:
    records = await pending
    return records if records and records[0]["outcome"] == "client_closed" else None


async def collect_content(stream: AsyncStream[ChatCompletionChunk], into: list[str]) -> None:
    async for chunk in stream:
        into.append(chunk.choices[0].delta.content or "")


async def test_close_after_cuts_the_connection_without_done(
    llm: openai.AsyncOpenAI, model: Client
) -> None:
    await script(model, {"text": "a b c d e", "close_after": 2})
    stream = await llm.chat.completions.create(model="demo", messages=USER, stream=True)
    contents: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        await collect_content(stream, contents)
    assert "".join(contents) == "a b"
    [record] = await requests_log(model)
    assert record["outcome"] == "aborted"
    assert record["chunks_sent"] == 2


async def test_client_leaving_during_a_hang_is_noticed(
    model_url: str, model: Client, eventually: Eventually
) -> None:
    await script(model, {"hang": 30})
    async with httpx.AsyncClient(timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                f"{model_url}/chat/completions",
                json={"model": "demo", "messages": USER, "stream": True},
                headers={"Authorization": "Bearer k"},
            )
    [record] = await eventually(lambda: _closed(requests_log(model)), within=3)
    assert record["client_closed_at"] is not None


async def test_default_answer_is_deterministic_labelled_and_derived(
    llm: openai.AsyncOpenAI,
) -> None:
    history: list[ChatCompletionMessageParam] = [
        *USER,
        {"role": "assistant", "content": "[interrupted] I was halfway"},
        {"role": "user", "content": "<@U0BOT> also update the docs please, thanks a lot"},
    ]
    answers = [
        (await llm.chat.completions.create(model="demo", messages=history))
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert answers[0] == answers[1]
    text = answers[0] or ""
    assert text.startswith("(offline demo model) **Your request**")
    assert "\n> also update the docs please, thanks a lot\n" in text
    assert "user turn 2" in text
    assert "A run of mine was interrupted before this answer" in text
    assert "\n1. " in text
    assert "\n```sh\npython3 -m unittest -v\n```\n" in text
    assert 40 <= len(text.split()) <= 100


async def test_default_answer_claims_no_partial_that_is_not_there(
    llm: openai.AsyncOpenAI,
) -> None:
    long_request = "please " + "really " * 200 + "refactor"
    history: list[ChatCompletionMessageParam] = [
        *USER,
        {"role": "assistant", "content": "Done, nothing was interrupted."},
        {"role": "user", "content": long_request},
    ]
    done = await llm.chat.completions.create(model="demo", messages=history)
    text = done.choices[0].message.content or ""
    assert "interrupted" not in text
    assert "> please really really" in text
    assert "refactor" not in text  # quoted up to a bound, at a word
    assert "really…" in text


async def test_pace_sets_the_default_chunk_delay(llm: openai.AsyncOpenAI, model: Client) -> None:
    await model.post("/_model/pace", json={"chunk_delay": 0.05})
    await script(model, {"text": "a b c d"})
    stream = await llm.chat.completions.create(model="demo", messages=USER, stream=True)
    _ = [chunk async for chunk in stream]
    [record] = await requests_log(model)
    gaps = [b - a for a, b in zip(record["chunk_times"], record["chunk_times"][1:], strict=False)]
    assert min(gaps) >= 0.04


@pytest.mark.parametrize("model_config", [ModelConfig(api_key="right", chunk_delay=0)])
async def test_wrong_or_missing_api_key_is_rejected(model_url: str, model: Client) -> None:
    wrong = openai.AsyncOpenAI(base_url=model_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        await wrong.chat.completions.create(model="demo", messages=USER)
    await wrong.close()
    assert info.value.code == "invalid_api_key"
    resp = await model.post("/v1/chat/completions", json={"model": "demo", "messages": USER})
    assert resp.status == 401
    assert (await resp.json())["error"]["type"] == "invalid_request_error"


async def test_bad_requests_get_openai_errors(llm: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await llm.chat.completions.create(model="demo", messages=[])
    assert info.value.param == "messages"


async def test_models_are_listed(llm: openai.AsyncOpenAI) -> None:
    models = [m.id async for m in llm.models.list()]
    assert models == ["sandbox-demo-model"]


# ----------------------------------------------------------------------------- tool calls

TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The {name} tool.",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    for name in ("list_files", "read_file", "edit_file", "run_command", "show_diff")
]
READ = {"name": "read_file", "arguments": {"path": "dates.py", "start_line": 1, "end_line": 40}}
RUN = {"name": "run_command", "arguments": {"command": "python3 -m unittest -v"}}


@dataclass
class Collected:
    """A streamed turn put back together the way a client accumulates deltas."""

    text: str = ""
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None
    chunks: list[ChatCompletionChunk] = field(default_factory=list)


async def collect(stream: AsyncStream[ChatCompletionChunk]) -> Collected:
    out = Collected()
    async for chunk in stream:
        out.chunks.append(chunk)
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        out.text += choice.delta.content or ""
        for delta in choice.delta.tool_calls or []:
            slot = out.calls.setdefault(
                delta.index, {"id": None, "name": "", "arguments": "", "fragments": 0}
            )
            slot["id"] = delta.id or slot["id"]
            if delta.function is not None:
                slot["name"] += delta.function.name or ""
                slot["arguments"] += delta.function.arguments or ""
                slot["fragments"] += bool(delta.function.arguments)
        out.finish_reason = choice.finish_reason or out.finish_reason
    return out


async def test_tool_calls_stream_as_openai_deltas_after_the_text(
    llm: openai.AsyncOpenAI, model: Client
) -> None:
    await script(model, {"text": "Let me look at the code.", "tool_calls": [READ, RUN]})
    stream = await llm.chat.completions.create(
        model="demo", messages=USER, tools=TOOLS, stream=True
    )
    got = await collect(stream)
    assert got.text == "Let me look at the code."
    assert got.finish_reason == "tool_calls"
    assert [c["name"] for c in got.calls.values()] == ["read_file", "run_command"]
    assert [json.loads(c["arguments"]) for c in got.calls.values()] == [
        READ["arguments"],
        RUN["arguments"],
    ]
    ids = [c["id"] for c in got.calls.values()]
    assert all(i.startswith("call_") for i in ids)
    assert len(set(ids)) == 2
    assert all(c["fragments"] > 1 for c in got.calls.values())
    first = got.chunks[0].choices[0].delta
    assert (first.role, first.content) == ("assistant", "")
    [record] = await requests_log(model)
    assert record["tool_calls"] == [
        {
            "id": ids[0],
            "type": "function",
            "function": {"name": "read_file", "arguments": json.dumps(READ["arguments"])},
        },
        {
            "id": ids[1],
            "type": "function",
            "function": {"name": "run_command", "arguments": json.dumps(RUN["arguments"])},
        },
    ]
    assert record["answer_text"] == "Let me look at the code."
    assert record["finish_reason"] == "tool_calls"
    assert record["tools"] == ["list_files", "read_file", "edit_file", "run_command", "show_diff"]
    assert record["chunks_sent"] == len(got.chunks) - 2


async def test_the_openai_stream_helper_assembles_the_tool_calls(
    llm: openai.AsyncOpenAI, model: Client
) -> None:
    await script(model, {"tool_calls": [RUN]})
    async with llm.chat.completions.stream(model="demo", messages=USER, tools=TOOLS) as stream:
        final = await stream.get_final_completion()
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    [call] = message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "run_command"
    assert json.loads(call.function.arguments) == RUN["arguments"]


async def test_tool_call_chunks_on_the_wire(model: Client) -> None:
    await script(model, {"tool_calls": [{"name": "show_diff"}]})
    body = {"model": "demo", "messages": USER, "tools": TOOLS, "stream": True}
    resp = await model.post(
        "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}
    )
    events = (await resp.read()).decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": None}
    [header] = deltas[1]["tool_calls"]
    assert header == {
        "index": 0,
        "id": header["id"],
        "type": "function",
        "function": {"name": "show_diff", "arguments": ""},
    }
    assert deltas[2] == {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}
    assert deltas[-1] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_a_non_streaming_answer_carries_message_tool_calls(
    llm: openai.AsyncOpenAI, model: Client
) -> None:
    await script(model, {"tool_calls": [READ]})
    done = await llm.chat.completions.create(model="demo", messages=USER, tools=TOOLS)
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "read_file",
        READ["arguments"],
    )
    assert call.id.startswith("call_")


def _asked(*ids: str) -> ChatCompletionMessageParam:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": "show_diff", "arguments": "{}"}}
            for i in ids
        ],
    }


def _answered(call_id: str) -> ChatCompletionMessageParam:
    return {"role": "tool", "tool_call_id": call_id, "content": "killed by interruption"}


async def test_dangling_tool_calls_are_rejected_like_openai(
    llm: openai.AsyncOpenAI, model: Client
) -> None:
    await script(model, {"text": "kept for the next valid request"})
    messages = [*USER, _asked("call_a", "call_b"), _answered("call_a"), *USER]
    with pytest.raises(openai.BadRequestError) as info:
        await llm.chat.completions.create(model="demo", messages=messages, tools=TOOLS)
    assert info.value.message.endswith(
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        "call_b"
    )
    assert info.value.param == "messages.[1].role"
    [record] = await requests_log(model)
    assert (record["outcome"], record["status"]) == ("rejected", 400)
    assert "call_b" in record["error"]
    closed = [*USER, _asked("call_a", "call_b"), _answered("call_a"), _answered("call_b")]
    done = await llm.chat.completions.create(model="demo", messages=closed, tools=TOOLS)
    assert done.choices[0].message.content == "kept for the next valid request"


@pytest.mark.parametrize(
    ("messages", "param", "says"),
    [
        ([*USER, _answered("call_x")], "messages.[1].role", "must be a response to a preceeding"),
        (
            [*USER, _asked("call_a"), _answered("call_zzz")],
            "messages.[2].tool_call_id",
            "'tool_call_id' of 'call_zzz' not found",
        ),
        ([*USER, _asked("call_a"), _answered("call_a"), _answered("call_a")], None, None),
        ([*USER, _asked("call_a")], "messages.[1].role", "did not have response messages"),
    ],
)
async def test_tool_messages_must_answer_the_calls_just_before(
    llm: openai.AsyncOpenAI,
    messages: list[ChatCompletionMessageParam],
    param: str | None,
    says: str | None,
) -> None:
    if says is None:
        await llm.chat.completions.create(model="demo", messages=messages, tools=TOOLS)
        return
    with pytest.raises(openai.BadRequestError) as info:
        await llm.chat.completions.create(model="demo", messages=messages, tools=TOOLS)
    assert info.value.param == param
    assert says in info.value.message


@pytest.mark.parametrize(
    ("tools", "param", "code"),
    [
        ("list_files", "tools", "invalid_type"),
        ([], "tools", "empty_array"),
        (["list_files"], "tools[0]", "invalid_type"),
        ([{"type": "retrieval"}], "tools[0].type", "invalid_value"),
        ([{"type": "function"}], "tools[0].function", "missing_required_parameter"),
        ([{"type": "function", "function": {"name": "a b"}}], "tools[0].function.name", None),
    ],
)
async def test_tools_must_be_function_tools(
    model: Client, tools: Any, param: str, code: str | None
) -> None:
    body = {"model": "demo", "messages": USER, "tools": tools}
    resp = await model.post(
        "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}
    )
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert error["code"] == (code or "invalid_value")


async def test_script_tool_calls_need_a_valid_name(model: Client) -> None:
    body = {"responses": [{"tool_calls": [{"name": "not a name", "arguments": {}}]}]}
    resp = await model.post("/_model/script", json=body)
    assert resp.status == 400


async def test_unscripted_requests_with_tools_get_the_demo_agent_deterministically(
    llm: openai.AsyncOpenAI, model: Client
) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "<@U0ALICE>: please fix the failing test"}
    ]
    turns = [
        await collect(
            await llm.chat.completions.create(
                model="demo", messages=messages, tools=TOOLS, stream=True
            )
        )
        for _ in range(2)
    ]
    assert turns[0].text == turns[1].text
    assert turns[0].text.startswith("(offline demo model) **Plan** for your request:")
    assert "\n> please fix the failing test\n" in turns[0].text
    assert turns[0].calls == turns[1].calls
    [call] = turns[0].calls.values()
    assert (call["name"], call["arguments"]) == ("list_files", "{}")
    records = await requests_log(model)
    assert [r["scripted"] for r in records] == [False, False]


async def test_tool_choice_none_gets_a_text_answer(llm: openai.AsyncOpenAI) -> None:
    done = await llm.chat.completions.create(
        model="demo", messages=USER, tools=TOOLS, tool_choice="none"
    )
    assert done.choices[0].message.tool_calls is None
    assert (done.choices[0].message.content or "").startswith("(offline demo model)")


async def test_without_include_usage_no_chunk_carries_usage(model: Client) -> None:
    """As OpenAI: no `usage` key at all unless `stream_options.include_usage` is true."""
    for options in (None, {"include_usage": False}):
        await script(model, {"text": "one two"})
        body: dict[str, Any] = {"model": "demo", "messages": USER, "stream": True}
        if options is not None:
            body["stream_options"] = options
        resp = await model.post(
            "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}
        )
        events = (await resp.read()).decode().split("\n\n")
        chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
        assert all("usage" not in chunk for chunk in chunks)
        assert all(chunk["choices"] for chunk in chunks)


async def test_the_usage_chunk_has_openais_shape(model: Client) -> None:
    await script(model, {"text": "one two three"})
    body = {
        "model": "demo",
        "messages": USER,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    resp = await model.post(
        "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}
    )
    events = (await resp.read()).decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    *chunks, last = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(chunk["usage"] is None for chunk in chunks)
    assert last["choices"] == []
    assert last["object"] == "chat.completion.chunk"
    assert last["id"] == chunks[0]["id"]
    usage = last["usage"]
    assert set(usage) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert usage["completion_tokens"] == 3
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"stream_options": {"include_usage": True}},
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        ),
        (
            {"stream": True, "stream_options": "usage"},
            "Invalid type for 'stream_options': expected an object, but got a string instead.",
        ),
        (
            {"stream": True, "stream_options": {"include_usage": "yes"}},
            "Invalid type for 'stream_options.include_usage': expected a boolean, but got a "
            "string instead.",
        ),
    ],
)
async def test_stream_options_are_checked_as_openai_does(
    model: Client, extra: dict[str, Any], message: str
) -> None:
    body = {"model": "demo", "messages": USER} | extra
    resp = await model.post(
        "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}
    )
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["message"] == message
    assert error["type"] == "invalid_request_error"
    assert error["param"].startswith("stream_options")


async def test_a_reply_scripted_for_one_conversation_is_not_taken_by_another(
    llm: openai.AsyncOpenAI, model: Client
) -> None:
    await script(model, {"text": "for mine", "when": "mine-42"}, {"text": "for anyone"})
    other = [{"role": "user", "content": "someone else's run"}]
    mine = [{"role": "user", "content": "my run mine-42"}]
    first = await llm.chat.completions.create(model="demo", messages=other)
    second = await llm.chat.completions.create(model="demo", messages=mine)
    third = await llm.chat.completions.create(model="demo", messages=other)
    assert first.choices[0].message.content == "for anyone"
    assert second.choices[0].message.content == "for mine"
    assert [r["scripted"] for r in await requests_log(model)] == [True, True, False]
    assert third.choices[0].message.content != "for mine"
