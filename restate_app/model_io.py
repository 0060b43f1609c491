"""Streaming chat completions through one shared `AsyncOpenAI` client.

A `StreamTracker` follows the in-flight stream of one task run so that a cancellation can
close its HTTP connection at once instead of waiting for the model to finish. `ModelSlots`
bounds how many streams the process keeps open: a call waits for a slot (bounded), and its
tracker's close also ends that wait.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import structlog
from openai import AsyncStream
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall
from openai.types.completion_usage import CompletionUsage
from pydantic import BaseModel
from restate.exceptions import RetryableError

from common.contract import ToolCall
from restate_app import metrics
from restate_app.errors import classify_model_error, model_busy
from restate_app.model_slots import ModelSlots, SlotsBusy

log = structlog.get_logger(__name__)

OnText = Callable[[str], Awaitable[None]]


class StreamTracker:
    """The text streamed so far by one task run, and a handle to close its live stream."""

    def __init__(self) -> None:
        self.text = ""
        self.chunks = 0
        self.started = False
        self._task: asyncio.Task[object] | None = None

    def begin(self) -> None:
        self.text, self.chunks, self.started = "", 0, True
        self._task = asyncio.current_task()

    def end(self) -> None:
        self._task = None

    def close(self) -> bool:
        """Cancel the in-flight stream, if any; True when one was open."""
        task, self._task = self._task, None
        if task is None or task.done():
            return False
        task.cancel()
        return True


class Completion(BaseModel):
    """What one model step returns, and so what its journal entry holds: the assistant's
    text and the tool calls it asked for (assembled from the stream's deltas), and the tokens
    the call used: the server's usage, or an estimate (`estimated`) when it sent none."""

    text: str
    chunks: int
    tool_calls: list[ToolCall] = []
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# Without the server's count: about four characters a token, OpenAI's rule of thumb for English.
CHARS_PER_TOKEN = 4


def estimate_tokens(body: dict[str, Any], text: str, calls: list[ToolCall]) -> tuple[int, int]:
    """(prompt, completion) tokens of a call whose server sent no usage: its request's and its
    answer's characters over `CHARS_PER_TOKEN`, at least one each."""
    request = json.dumps([body.get("messages"), body.get("tools")], separators=(",", ":"))
    answer = len(text) + sum(len(call.name) + len(call.arguments) for call in calls)
    return max(1, len(request) // CHARS_PER_TOKEN), max(1, answer // CHARS_PER_TOKEN)


class ModelClient:
    """Streams one chat completion, with tools when given, and returns the whole turn; at
    most as many at once as `slots` allows (no limit without it)."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        max_tokens: int | None = None,
        slots: ModelSlots | None = None,
    ):
        self._client = client
        self._model = model
        self._max_tokens = max_tokens
        self.slots = slots or ModelSlots(limit=0, queue_seconds=0)

    async def stream(
        self,
        messages: list[ChatCompletionMessageParam],
        tracker: StreamTracker,
        on_text: OnText | None = None,
        tools: list[ChatCompletionToolParam] | None = None,
        model: str = "",
    ) -> Completion:
        """One model turn; `model` picks the session's model (empty: the client's own)."""
        tracker.begin()
        started = time.monotonic()
        try:
            async with self.slots.hold():
                completion = await self._consume(messages, tracker, on_text, tools, model)
        except SlotsBusy as exc:
            log.warning("model_busy", waited_seconds=exc.waited_seconds)
            raise model_busy(exc.waited_seconds) from None
        except openai.OpenAIError as exc:
            raise classify_model_error(exc) from exc
        finally:
            tracker.end()
        if completion.finish_reason is None:
            # The server closed the stream without a finish reason: the answer is cut short.
            raise RetryableError("model: stream ended before the answer was complete", 503)
        log.debug(
            "model_stream_done",
            chunks=tracker.chunks,
            tokens=completion.tokens,
            estimated=completion.estimated,
            seconds=time.monotonic() - started,
        )
        return completion

    async def _consume(
        self,
        messages: list[ChatCompletionMessageParam],
        tracker: StreamTracker,
        on_text: OnText | None,
        tools: list[ChatCompletionToolParam] | None,
        model: str,
    ) -> Completion:
        finish: str | None = None
        calls: dict[int, _CallParts] = {}
        meter = metrics.StreamMeter()
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        if self._max_tokens:
            extra["max_tokens"] = self._max_tokens
        # The request body goes as it is: the SDK's own transformation of typed parameters
        # costs milliseconds per call (on the restart path), and the bodies are built here.
        # `include_usage`: the stream ends with a chunk of its token counts (OpenAI's shape).
        body = {
            "model": model or self._model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            **extra,
        }
        stream = await self._client.post(
            "/chat/completions",
            cast_to=ChatCompletion,
            body=body,
            stream=True,
            stream_cls=AsyncStream[ChatCompletionChunk],
        )
        usage: CompletionUsage | None = None
        async with stream:
            async for chunk in stream:
                usage = chunk.usage or usage
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.delta.content:
                    tracker.text += choice.delta.content
                    tracker.chunks += 1
                    meter.chunk()
                    if on_text is not None:
                        await on_text(tracker.text)
                for delta in choice.delta.tool_calls or []:
                    _CallParts.add(calls, delta)
                    tracker.chunks += 1
                finish = choice.finish_reason or finish
        tool_calls = [calls[i].call(i) for i in sorted(calls)]
        if usage is not None:
            prompt, answer, estimated = usage.prompt_tokens, usage.completion_tokens, False
        else:
            (prompt, answer), estimated = estimate_tokens(body, tracker.text, tool_calls), True
        return Completion(
            text=tracker.text,
            chunks=tracker.chunks,
            tool_calls=tool_calls,
            finish_reason=finish,
            prompt_tokens=prompt,
            completion_tokens=answer,
            estimated=estimated,
        )


class _CallParts:
    """One tool call as its deltas arrive: an id and a name first, then argument fragments."""

    def __init__(self) -> None:
        self.id, self.name, self.arguments = "", "", ""

    @staticmethod
    def add(calls: dict[int, _CallParts], delta: ChoiceDeltaToolCall) -> None:
        parts = calls.setdefault(delta.index, _CallParts())
        parts.id = delta.id or parts.id
        if delta.function is not None:
            parts.name = delta.function.name or parts.name
            parts.arguments += delta.function.arguments or ""

    def call(self, index: int) -> ToolCall:
        return ToolCall(id=self.id or f"call_{index}", name=self.name, arguments=self.arguments)
