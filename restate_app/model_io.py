"""Streaming chat completions through one shared `AsyncOpenAI` client.

A `StreamTracker` follows the in-flight stream of one task run so that a cancellation can
close its HTTP connection at once instead of waiting for the model to finish.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import openai
import structlog
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel
from restate.exceptions import RetryableError

from restate_app import metrics
from restate_app.errors import classify_model_error

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
    """What one model step returns, and so what its journal entry holds."""

    text: str
    chunks: int


class ModelClient:
    """Streams one chat completion and returns its whole text."""

    def __init__(self, client: openai.AsyncOpenAI, model: str) -> None:
        self._client = client
        self._model = model

    async def stream(
        self,
        messages: list[ChatCompletionMessageParam],
        tracker: StreamTracker,
        on_text: OnText | None = None,
    ) -> Completion:
        tracker.begin()
        started = time.monotonic()
        try:
            finish = await self._consume(messages, tracker, on_text)
        except openai.OpenAIError as exc:
            raise classify_model_error(exc) from exc
        finally:
            tracker.end()
        if finish is None:
            # The server closed the stream without a finish reason: the answer is cut short.
            raise RetryableError("model: stream ended before the answer was complete", 503)
        log.debug("model_stream_done", chunks=tracker.chunks, seconds=time.monotonic() - started)
        return Completion(text=tracker.text, chunks=tracker.chunks)

    async def _consume(
        self,
        messages: list[ChatCompletionMessageParam],
        tracker: StreamTracker,
        on_text: OnText | None,
    ) -> str | None:
        finish: str | None = None
        meter = metrics.StreamMeter()
        stream = await self._client.chat.completions.create(
            model=self._model, messages=messages, stream=True
        )
        async with stream:
            async for chunk in stream:
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.delta.content:
                    tracker.text += choice.delta.content
                    tracker.chunks += 1
                    meter.chunk()
                    if on_text is not None:
                        await on_text(tracker.text)
                finish = choice.finish_reason or finish
        return finish
