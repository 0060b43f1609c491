"""The per-process bound on open model streams: bounded waits, refusals, release on cancel."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import pytest

from restate_app import metrics
from restate_app.model_slots import ModelSlots, SlotsBusy


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int, int]] = []

    def __call__(self, event: str, in_use: int, waiting: int) -> None:
        self.seen.append((event, in_use, waiting))

    @property
    def names(self) -> list[str]:
        return [name for name, _in_use, _waiting in self.seen]


async def until(check: Callable[[], bool], within: float = 2.0) -> None:
    """Let the loop run until `check()` holds, failing after `within` seconds."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def held(slots: ModelSlots) -> AsyncIterator[asyncio.Event]:
    """A task holding one slot until the yielded event is set."""
    done = asyncio.Event()

    async def holder() -> None:
        async with slots.hold():
            await done.wait()

    task = asyncio.create_task(holder())
    before = slots.in_use
    await until(lambda: slots.in_use > before)
    try:
        yield done
    finally:
        done.set()
        await task


async def hold_briefly(slots: ModelSlots, log: list[str], name: str) -> None:
    async with slots.hold():
        log.append(name)


async def test_a_call_beyond_the_limit_waits_and_gets_the_slot_once_it_is_freed() -> None:
    slots = ModelSlots(limit=1, queue_seconds=60)
    got: list[str] = []
    async with held(slots):
        waiter = asyncio.create_task(hold_briefly(slots, got, "b"))
        await until(lambda: slots.waiting == 1)
        assert got == []
        assert slots.in_use == 1
    await asyncio.wait_for(waiter, 2)
    assert got == ["b"]
    assert (slots.in_use, slots.waiting) == (0, 0)


async def test_a_call_that_waits_past_the_bound_is_refused() -> None:
    events = Events()
    slots = ModelSlots(limit=1, queue_seconds=0.05, observe=events)
    async with held(slots):
        started = time.monotonic()
        with pytest.raises(SlotsBusy) as refused:
            await hold_briefly(slots, [], "b")
        waited = time.monotonic() - started
        assert 0.05 <= waited < 1.0
        assert refused.value.waited_seconds == 0.05
        assert (slots.in_use, slots.waiting) == (1, 0)
    assert events.names == ["acquired", "waiting", "refused", "released"]
    assert slots.in_use == 0


async def test_with_no_queue_a_call_is_refused_at_once_when_every_slot_is_taken() -> None:
    slots = ModelSlots(limit=2, queue_seconds=0)
    async with held(slots), held(slots):
        started = time.monotonic()
        with pytest.raises(SlotsBusy):
            await hold_briefly(slots, [], "c")
        assert time.monotonic() - started < 0.05
    await hold_briefly(slots, [], "d")


async def test_a_call_cancelled_while_waiting_leaves_the_line_at_once() -> None:
    events = Events()
    slots = ModelSlots(limit=1, queue_seconds=60, observe=events)
    got: list[str] = []
    async with held(slots):
        waiter = asyncio.create_task(hold_briefly(slots, got, "b"))
        await until(lambda: slots.waiting == 1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert slots.waiting == 0
        assert events.seen[-1] == ("left", 1, 0)
    # The cancelled waiter took no slot with it: the next call gets one without waiting.
    await asyncio.wait_for(hold_briefly(slots, got, "c"), 0.5)
    assert got == ["c"]


async def test_a_slot_is_freed_when_its_holder_is_cancelled() -> None:
    slots = ModelSlots(limit=1, queue_seconds=60)
    inside = asyncio.Event()

    async def streaming() -> None:
        async with slots.hold():
            inside.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(streaming())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slots.in_use == 0
    await asyncio.wait_for(hold_briefly(slots, [], "next"), 0.5)


async def test_a_slot_handed_to_a_waiter_cancelled_in_the_same_moment_goes_to_the_next() -> None:
    slots = ModelSlots(limit=1, queue_seconds=60)
    got: list[str] = []
    async with slots.hold():
        first = asyncio.create_task(hold_briefly(slots, got, "first"))
        second = asyncio.create_task(hold_briefly(slots, got, "second"))
        await until(lambda: slots.waiting == 2)
    # The slot just went to `first`, which is cancelled before it could run: leaving the
    # block above did not give the loop a turn.
    first.cancel()
    await asyncio.wait_for(second, 2)
    with pytest.raises(asyncio.CancelledError):
        await first
    assert got == ["second"]
    assert (slots.in_use, slots.waiting) == (0, 0)


async def test_waiting_calls_get_slots_in_the_order_they_came() -> None:
    slots = ModelSlots(limit=1, queue_seconds=60)
    got: list[str] = []
    async with held(slots):
        tasks = []
        for name in "abcd":
            tasks.append(asyncio.create_task(hold_briefly(slots, got, name)))
            await until(lambda: slots.waiting == len(tasks))
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert got == list("abcd")


async def test_no_limit_lets_every_call_through_and_still_counts_them() -> None:
    slots = ModelSlots(limit=0, queue_seconds=0)
    async with held(slots), held(slots), held(slots):
        assert slots.in_use == 3
        await hold_briefly(slots, [], "more")
    assert slots.in_use == 0


def test_negative_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        ModelSlots(limit=-1, queue_seconds=1)


async def test_the_limiter_feeds_the_metrics_gauges_and_refusal_counter() -> None:
    def value(name: str, **labels: str) -> float:
        found = metrics.REGISTRY.get_sample_value(name, labels)
        return found or 0.0

    refused = value("agent_model_calls_refused_total")
    slots = ModelSlots(limit=1, queue_seconds=0.01, observe=metrics.model_slots_event)
    async with held(slots):
        assert value("agent_model_slots", state="in_use") == 1
        waiter = asyncio.create_task(hold_briefly(slots, [], "b"))
        await until(lambda: value("agent_model_slots", state="waiting") == 1)
        with pytest.raises(SlotsBusy):
            await waiter
    assert value("agent_model_calls_refused_total") == refused + 1
    assert value("agent_model_slots", state="in_use") == 0
    assert value("agent_model_slots", state="waiting") == 0
