"""Interruption latency, side by side: the product, the bare Restate pattern, plain asyncio.

Each driver keeps a few sessions streaming long answers from the offline model and interrupts
them one at a time, round robin: wait until the session's stream is live, let a random part of
a chunk interval pass, interrupt, wait for the replacement's stream. One interruption is in
flight at a time, so the figures are latencies, not queueing. The drivers take turns in blocks,
so slow drifts of this noisy machine hit all three alike.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import openai
from openai.types.chat import ChatCompletionMessageParam

from bench.clients import Control, Posted, SlackEvents
from bench.floor_app import AGENT as FLOOR_AGENT
from bench.timeline import Interruption, Outcome, harvest, wait_streaming

JSON = dict[str, object]

# Long enough to outlast a round of the other sessions' interruptions.
ANSWER_CHUNKS = 100
# A first model turn with one quick tool call: the long answer is the run's second model call.
SHORT_PLAN: JSON = {
    "chunks": ["1.", " read", " 2.", " fix"],
    "chunk_delay": 0,
    "tool_calls": [{"name": "list_files", "arguments": {}}],
}
_ids = itertools.count(1)


def new_token(kind: str) -> str:
    return f"bench-{kind}{next(_ids)}"


def long_answer(chunk_delay: float) -> JSON:
    return {"chunks": [f" w{i}" for i in range(ANSWER_CHUNKS)], "chunk_delay": chunk_delay}


# Starts a run for a token in a session; returns when the message reached the system.
Start = Callable[[int, str], Awaitable[float]]


@dataclass
class Drivers:
    """What the drivers share: the clients, the pace, the channels, and the interruptions."""

    events: SlackEvents
    control: Control
    model_url: str
    chunk_delay: float
    channels: list[str]
    product: list[Interruption] = field(default_factory=list)
    floor: list[Interruption] = field(default_factory=list)
    naive: list[Interruption] = field(default_factory=list)
    _channel: itertools.cycle[str] | None = None
    _roots: list[Posted] = field(default_factory=list)

    def next_channel(self) -> str:
        if self._channel is None:
            self._channel = itertools.cycle(self.channels)
        return next(self._channel)

    async def round_robin(
        self, kind: str, sessions: int, count: int, start: Start, out: list[Interruption]
    ) -> None:
        """Open `sessions` streaming sessions, then `count` interruptions spread over them."""
        tokens = []
        for session in range(sessions):
            tokens.append(new_token(kind))
            since = time.time()
            await start(session, tokens[session])
            await wait_streaming(self.control, tokens[session], since)
        for i in range(count):
            session = i % sessions
            await asyncio.sleep(random.uniform(0, self.chunk_delay))
            token = new_token(kind)
            t0 = await start(session, token)
            out.append(Interruption(token, tokens[session], self.thread_of(kind, session), t0))
            await wait_streaming(self.control, token, t0)
            tokens[session] = token

    def thread_of(self, kind: str, session: int) -> str:
        return self._roots[session].ts if kind == "p" else f"{kind}{session}"

    async def product_block(self, sessions: int, count: int) -> None:
        """Threads in distinct channels; each reply interrupts its thread's running task."""
        self._roots = []

        async def start(session: int, token: str) -> float:
            await self.control.script(SHORT_PLAN, long_answer(self.chunk_delay))
            if session == len(self._roots):
                root = await self.events.mention(self.next_channel(), f"{token} write the code")
                self._roots.append(root)
                acks = [await self.events.send(e) for e in root.events]
                return acks[0].sent_at
            reply = await self.events.reply(self._roots[session], f"{token} use PostgreSQL")
            return (await self.events.send(reply.events[0])).sent_at

        await self.round_robin("p", sessions, count, start, self.product)

    async def floor_block(self, sessions: int, count: int) -> None:
        """The same through `BenchAgent` on the same Restate server, from its ingress call."""
        block = next(_ids)

        async def start(session: int, token: str) -> float:
            await self.control.script(long_answer(self.chunk_delay))
            t0 = time.time()
            key = f"floor-{block}-{session}"
            await self.control.ingress_send(FLOOR_AGENT, key, "message", {"text": token})
            return t0

        await self.round_robin("f", sessions, count, start, self.floor)

    async def naive_block(self, sessions: int, count: int) -> None:
        """In-process asyncio: cancel the streaming task, start another. No durability."""
        model = openai.AsyncOpenAI(base_url=self.model_url, api_key="sk-bench", max_retries=0)
        tasks: dict[int, asyncio.Task[str]] = {}

        async def start(session: int, token: str) -> float:
            await self.control.script(long_answer(self.chunk_delay))
            t0 = time.time()
            if session in tasks:
                tasks[session].cancel()
                await asyncio.gather(tasks[session], return_exceptions=True)
            tasks[session] = asyncio.create_task(_naive_stream(model, token))
            return t0

        try:
            await self.round_robin("n", sessions, count, start, self.naive)
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            await model.close()


async def _naive_stream(model: openai.AsyncOpenAI, token: str) -> str:
    text = ""
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": token}]
    stream = await model.chat.completions.create(model="naive", messages=messages, stream=True)
    async with stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
    return text


@dataclass(frozen=True)
class InterruptResults:
    product: list[Outcome]
    floor: list[Outcome]
    naive: list[Outcome]


async def run(drivers: Drivers, count: int, per_block: int, sessions: int) -> InterruptResults:
    """`count` interruptions of each kind, in interleaved blocks of `per_block`."""
    since = time.time()
    await drivers.control.pace(drivers.chunk_delay, 0)
    done = 0
    while done < count:
        block = min(per_block, count - done)
        await drivers.product_block(sessions, block)
        await drivers.floor_block(sessions, block)
        await drivers.naive_block(sessions, block)
        done += block
    await drivers.control.clear_script()
    return InterruptResults(
        product=await harvest(drivers.control, drivers.product, since, with_notices=True),
        floor=await harvest(drivers.control, drivers.floor, since, with_notices=False),
        naive=await harvest(drivers.control, drivers.naive, since, with_notices=False),
    )
