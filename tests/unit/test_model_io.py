"""The model client against the offline model over HTTP: the token bound goes with every request,
and streams take a slot of the process's limit, wait for one (bounded), or are refused."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam
from pydantic import AnyHttpUrl, SecretStr
from restate.exceptions import TerminalError

from common.settings import AppSettings
from restate_app.app import build_deps, open_clients
from restate_app.errors import MODEL_BUSY_TEXT, model_busy, user_text
from restate_app.model_io import ModelClient, StreamTracker
from restate_app.model_slots import ModelSlots
from restate_app.tools.registry import TOOL_SCHEMAS
from sandbox.model_script import ScriptItem, ScriptToolCall
from sandbox.model_server import MODEL_KEY, ModelConfig, create_model_app

ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What does main.py do?"}]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Model:
    """The offline model served on a free port, with the bodies of the requests it got."""

    def __init__(self) -> None:
        self.app = create_model_app(ModelConfig(chunk_delay=0.0))
        self.bodies: list[dict[str, Any]] = []
        self.url = ""

        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.endswith("/chat/completions"):
                self.bodies.append(json.loads(await request.read()))
            return await handler(request)

        self.app.middlewares.append(record)

    def script(self, *items: ScriptItem) -> None:
        self.app[MODEL_KEY].script.extend(items)


@pytest.fixture
async def model() -> AsyncIterator[Model]:
    served = Model()
    server = TestServer(served.app, host="127.0.0.1", port=0)
    await server.start_server()
    served.url = str(server.make_url("/v1"))
    try:
        yield served
    finally:
        await server.close()


@pytest.fixture
async def llm(model: Model) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=model.url, api_key="x", max_retries=0)
    try:
        yield client
    finally:
        await client.close()


async def until(check: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_every_model_request_carries_the_max_tokens_bound(
    model: Model, llm: openai.AsyncOpenAI
) -> None:
    model.script(
        ScriptItem(tool_calls=[ScriptToolCall(name="list_files", arguments={})]),
        ScriptItem(chunks=["It prints ", "hello."]),
    )
    client = ModelClient(llm, "demo", max_tokens=321)
    first = await client.stream(ASK, StreamTracker(), tools=TOOL_SCHEMAS)
    second = await client.stream(ASK, StreamTracker())
    assert [c.name for c in first.tool_calls] == ["list_files"]
    assert second.text == "It prints hello."
    assert [body.get("max_tokens") for body in model.bodies] == [321, 321]
    assert "tools" in model.bodies[0]
    assert "tools" not in model.bodies[1]


async def test_the_app_sends_model_max_tokens_from_its_settings(
    model: Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_MAX_TOKENS", "777")
    settings = _settings(model, tmp_path)
    model.script(ScriptItem(text="ok"))
    async with open_clients(settings) as clients:
        deps = build_deps(settings, clients)
        await deps.model.stream(ASK, StreamTracker())
    assert model.bodies[0]["max_tokens"] == 777


async def test_the_app_bounds_model_calls_as_its_settings_say(
    model: Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_MAX_CONCURRENCY", "3")
    monkeypatch.setenv("MODEL_QUEUE_SECONDS", "45")
    settings = _settings(model, tmp_path)
    async with open_clients(settings) as clients:
        slots = build_deps(settings, clients).model.slots
    assert (slots.limit, slots.queue_seconds) == (3, 45)


def test_model_call_bounds_have_safe_defaults() -> None:
    settings = AppSettings(
        slack_bot_token=SecretStr("xoxb-x"),
        openai_api_key=SecretStr("sk-x"),
        _env_file=None,  # type: ignore[call-arg]
    )
    assert settings.model_max_concurrency == 16
    assert settings.model_queue_seconds == 120
    assert settings.model_max_tokens == 4096


async def test_a_call_finding_no_free_slot_in_time_fails_with_the_busy_sentence(
    model: Model, llm: openai.AsyncOpenAI
) -> None:
    slots = ModelSlots(limit=1, queue_seconds=0.05)
    client = ModelClient(llm, "demo", 100, slots)
    async with slots.hold():
        with pytest.raises(TerminalError) as failed:
            await client.stream(ASK, StreamTracker())
    assert failed.value.status_code == 503
    assert user_text(failed.value) == MODEL_BUSY_TEXT
    assert model.bodies == []


async def test_interrupting_a_call_waiting_for_a_slot_ends_its_wait_at_once(
    model: Model, llm: openai.AsyncOpenAI
) -> None:
    slots = ModelSlots(limit=1, queue_seconds=60)
    client = ModelClient(llm, "demo", 100, slots)
    tracker = StreamTracker()
    async with slots.hold():
        call = asyncio.create_task(client.stream(ASK, tracker))
        await until(lambda: slots.waiting == 1)
        assert tracker.close()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(call, 0.5)
        assert slots.waiting == 0
    assert slots.in_use == 0
    assert model.bodies == []


async def test_a_stream_holds_its_slot_while_open_and_frees_it_when_closed(
    model: Model, llm: openai.AsyncOpenAI
) -> None:
    model.script(ScriptItem(chunks=["a", "b", "c"], chunk_delay=0.01))
    slots = ModelSlots(limit=1, queue_seconds=60)
    client = ModelClient(llm, "demo", 100, slots)
    held: list[int] = []

    async def on_text(_text: str) -> None:
        held.append(slots.in_use)

    await client.stream(ASK, StreamTracker(), on_text=on_text)
    assert held == [1, 1, 1]
    assert slots.in_use == 0


async def test_closing_an_open_stream_frees_its_slot_for_the_next_call(
    model: Model, llm: openai.AsyncOpenAI
) -> None:
    model.script(ScriptItem(chunks=["slow"] * 50, chunk_delay=0.2), ScriptItem(text="next"))
    slots = ModelSlots(limit=1, queue_seconds=60)
    client = ModelClient(llm, "demo", 100, slots)
    tracker = StreamTracker()
    first = asyncio.create_task(client.stream(ASK, tracker))
    await until(lambda: tracker.chunks > 0)
    second = asyncio.create_task(client.stream(ASK, StreamTracker()))
    await until(lambda: slots.waiting == 1)
    tracker.close()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert (await asyncio.wait_for(second, 2)).text == "next"
    assert (slots.in_use, slots.waiting) == (0, 0)


def test_the_busy_error_keeps_its_sentence_through_the_journal() -> None:
    """Restate keeps a failed step's message and code, not its type: the sentence follows
    from those alone."""
    raised = model_busy(120)
    replayed = TerminalError(raised.message, raised.status_code)
    assert user_text(replayed) == MODEL_BUSY_TEXT
    assert user_text(TerminalError("model: status 400", 502)) is None


async def test_a_sessions_model_from_agent_models_is_what_the_request_names(
    model: Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_MODELS", "fast=demo-mini, smart=demo-large")
    settings = _settings(model, tmp_path)
    model.script(ScriptItem(text="one"), ScriptItem(text="two"))
    async with open_clients(settings) as clients:
        deps = build_deps(settings, clients)
        chosen = deps.models.resolve("smart")
        assert chosen == "demo-large"
        await deps.model.stream(ASK, StreamTracker(), model=chosen)
        await deps.model.stream(ASK, StreamTracker(), model=deps.models.resolve(None) or "")
    assert [body["model"] for body in model.bodies] == ["demo-large", "demo"]
    assert deps.models.resolve("huge") is None


def _settings(model: Model, tmp_path: Path) -> AppSettings:
    return AppSettings(
        slack_bot_token=SecretStr("xoxb-test"),
        openai_api_key=SecretStr("sk-test"),
        openai_base_url=AnyHttpUrl(model.url),
        openai_model="demo",
        workspaces_dir=str(tmp_path),
        _env_file=None,  # type: ignore[call-arg]
    )


async def test_a_call_counts_the_tokens_the_servers_usage_chunk_reports(
    model: Model, llm: openai.AsyncOpenAI
) -> None:
    model.script(
        ScriptItem(chunks=["It ", "prints ", "hello."]),
        ScriptItem(tool_calls=[ScriptToolCall(name="list_files", arguments={})]),
    )
    client = ModelClient(llm, "demo")
    answer = await client.stream(ASK, StreamTracker())
    calls = await client.stream(ASK, StreamTracker(), tools=TOOL_SCHEMAS)
    assert [body["stream_options"] for body in model.bodies] == [{"include_usage": True}] * 2
    # The offline model counts words of the request, and one token a chunk of the answer.
    assert (answer.prompt_tokens, answer.completion_tokens, answer.estimated) == (11, 3, False)
    assert answer.tokens == 14
    assert calls.completion_tokens > 0
    assert not calls.estimated


async def test_without_a_usage_chunk_the_tokens_are_estimated_and_marked_so() -> None:
    """A server that ignores `stream_options`: about four characters a token, each way."""
    answer = "x" * 400

    async def no_usage(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        for delta, finish in (({"role": "assistant", "content": answer}, None), ({}, "stop")):
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            await resp.write(f"data: {json.dumps(base | {'choices': [choice]})}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", no_usage)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    llm = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="x", max_retries=0)
    try:
        completion = await ModelClient(llm, "demo").stream(ASK, StreamTracker())
    finally:
        await llm.close()
        await server.close()
    assert completion.text == answer
    assert completion.estimated
    assert completion.completion_tokens == 100
    request = json.dumps([ASK, None], separators=(",", ":"))
    assert completion.prompt_tokens == len(request) // 4
