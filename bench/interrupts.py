"""Interruption latency, side by side: the product, the bare Restate pattern, plain asyncio.

Each driver runs one session at a time: it starts a run whose answer streams from the offline
model, waits until the stream is live, lets a random fraction of a chunk interval pass, then
interrupts it and waits for the replacement's stream before interrupting again. The three
drivers take turns in blocks, so slow drifts of this noisy machine hit all of them alike.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field

import openai
from openai.types.chat import ChatCompletionMessageParam

from bench.clients import Control, SlackEvents
from bench.floor_app import AGENT as FLOOR_AGENT
from bench.timeline import Interruption, Outcome, harvest, wait_streaming

JSON = dict[str, object]

# A long answer is interrupted after a few chunks; it only has to outlast one cycle.
ANSWER_CHUNKS = 80
_ids = itertools.count(1)


def new_token(kind: str) -> str:
    return f"bench-{kind}{next(_ids)}"


def long_answer(chunk_delay: float) -> JSON:
    return {"chunks": [f" w{i}" for i in range(ANSWER_CHUNKS)], "chunk_delay": chunk_delay}


SHORT_PLAN: JSON = {"chunks": ["1.", " read", " 2.", " fix"], "chunk_delay": 0}


@dataclass
class Drivers:
    """What the drivers share: the clients, the pace, and the interruptions they made."""

    events: SlackEvents
    control: Control
    model_url: str
    chunk_delay: float
    product: list[Interruption] = field(default_factory=list)
    floor: list[Interruption] = field(default_factory=list)
    naive: list[Interruption] = field(default_factory=list)

    async def _jitter(self) -> None:
        await asyncio.sleep(random.uniform(0, self.chunk_delay))

    async def product_block(self, count: int) -> None:
        """A new thread, then `count` replies in it, each interrupting the running task."""
        root, prev = self.events.new_ts(), new_token("p")
        await self.control.script(SHORT_PLAN, long_answer(self.chunk_delay))
        for envelope in self.events.mention(f"{prev} write the migration", root):
            await self.events.send(envelope)
        await wait_streaming(self.control, prev, time.time() - 5)
        for _ in range(count):
            await self._jitter()
            token = new_token("p")
            await self.control.script(SHORT_PLAN, long_answer(self.chunk_delay))
            reply = self.events.reply(f"{token} use PostgreSQL instead", self.events.new_ts(), root)
            ack = await self.events.send(reply)
            self.product.append(Interruption(token, prev, root, ack.sent_at))
            await wait_streaming(self.control, token, ack.sent_at)
            prev = token

    async def floor_block(self, count: int) -> None:
        """The same through `BenchAgent` on the same Restate server, from its ingress call."""
        key, prev = f"floor-{next(_ids)}", new_token("f")
        await self._floor_send(key, prev)
        await wait_streaming(self.control, prev, time.time() - 5)
        for _ in range(count):
            await self._jitter()
            token = new_token("f")
            t0 = await self._floor_send(key, token)
            self.floor.append(Interruption(token, prev, key, t0))
            await wait_streaming(self.control, token, t0)
            prev = token

    async def _floor_send(self, key: str, token: str) -> float:
        await self.control.script(long_answer(self.chunk_delay))
        t0 = time.time()
        await self.control.ingress_send(FLOOR_AGENT, key, "message", {"text": token})
        return t0

    async def naive_block(self, count: int) -> None:
        """In-process asyncio: cancel the streaming task, start another. No durability."""
        model = openai.AsyncOpenAI(base_url=self.model_url, api_key="sk-bench", max_retries=0)
        try:
            prev = new_token("n")
            task = await self._naive_start(model, prev)
            for _ in range(count):
                await self._jitter()
                token = new_token("n")
                await self.control.script(long_answer(self.chunk_delay))
                t0 = time.time()
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                task = asyncio.create_task(_naive_stream(model, token))
                self.naive.append(Interruption(token, prev, "naive", t0))
                await wait_streaming(self.control, token, t0)
                prev = token
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            await model.close()

    async def _naive_start(self, model: openai.AsyncOpenAI, token: str) -> asyncio.Task[str]:
        await self.control.script(long_answer(self.chunk_delay))
        since = time.time()
        task = asyncio.create_task(_naive_stream(model, token))
        await wait_streaming(self.control, token, since)
        return task


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


async def run(drivers: Drivers, count: int, per_block: int) -> InterruptResults:
    """`count` interruptions of each kind, in interleaved blocks of `per_block`."""
    since = time.time()
    await drivers.control.pace(drivers.chunk_delay, 0)
    done = 0
    while done < count:
        block = min(per_block, count - done)
        await drivers.product_block(block)
        await drivers.floor_block(block)
        await drivers.naive_block(block)
        done += block
    await drivers.control.clear_script()
    return InterruptResults(
        product=await harvest(drivers.control, drivers.product, since, with_notices=True),
        floor=await harvest(drivers.control, drivers.floor, since, with_notices=False),
        naive=await harvest(drivers.control, drivers.naive, since, with_notices=False),
    )
