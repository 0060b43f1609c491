"""Ack latency and throughput of the bot's Events API endpoint under paced, open-loop load.

Each message is a new mention (a new thread), sent as Slack does: an `app_mention` and a
`message` twin, and every tenth message once more as a Slack retry. Events go out on a fixed
schedule whatever the answers (open loop), over many connections. Afterwards Restate must hold
exactly one task per distinct message: none lost, none duplicated.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench.clients import Ack, Control, SlackEvents
from bench.stats import Summary

JSON = dict[str, object]

RETRY_EVERY = 10
EVENTS_PER_MESSAGE = 2 + 1 / RETRY_EVERY
DRAIN_TIMEOUT = 180.0


@dataclass(frozen=True)
class AckResult:
    """One rate: ack latency (ms), refusals, and what Restate made of the messages."""

    rate: int
    events: int
    messages: int
    ack_ms: Summary
    non_2xx: int
    send_lag_ms: float
    drain_s: float
    min_tasks: int
    max_tasks: int
    lost: int
    duplicated: int


def plan_events(events: SlackEvents, messages: int) -> tuple[list[tuple[JSON, int]], list[str]]:
    """The event schedule (envelope, retry number) and the thread of each message."""
    planned: list[tuple[JSON, int]] = []
    threads = []
    for i in range(messages):
        ts = events.new_ts()
        threads.append(ts)
        mention, twin = events.mention(f"bench-a{i} summarise the design doc", ts)
        planned += [(mention, 0), (twin, 0)]
        if i % RETRY_EVERY == RETRY_EVERY - 1:
            planned.append((twin, 1))
    return planned, threads


async def send_paced(
    events: SlackEvents, planned: list[tuple[JSON, int]], rate: float
) -> tuple[list[Ack], float]:
    """Send on schedule (event i at i/rate s); returns the acks and the worst send lag."""
    start = time.perf_counter()
    tasks: list[asyncio.Task[Ack]] = []
    worst_lag = 0.0
    for i, (envelope, retry) in enumerate(planned):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        worst_lag = max(worst_lag, time.perf_counter() - due)
        tasks.append(asyncio.create_task(events.send(envelope, retry)))
    return list(await asyncio.gather(*tasks)), worst_lag


async def drained(control: Control, limit: float = DRAIN_TIMEOUT) -> float:
    """Wait until no `CodingAgent`/`CodingTask` invocation is left unfinished; seconds waited."""
    started = time.monotonic()
    query = (
        "SELECT count(*) AS n FROM sys_invocation WHERE status != 'completed' "
        "AND target_service_name IN ('CodingAgent', 'CodingTask')"
    )
    while time.monotonic() - started < limit:
        rows = await control.sql(query)
        if not rows or int(str(rows[0]["n"])) == 0:
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    raise TimeoutError(f"invocations still running after {limit:.0f}s")


async def tasks_per_thread(control: Control, threads: list[str]) -> list[int]:
    """`tasks_started` of each thread's session, read through the shared `status` handler."""
    gate = asyncio.Semaphore(32)

    async def one(ts: str) -> int:
        async with gate:
            return int(str((await control.agent(ts, "status"))["tasks_started"]))

    return list(await asyncio.gather(*(one(ts) for ts in threads)))


async def run_rate(events: SlackEvents, control: Control, rate: int, seconds: float) -> AckResult:
    messages = max(1, round(rate * seconds / EVENTS_PER_MESSAGE))
    planned, threads = plan_events(events, messages)
    acks, lag = await send_paced(events, planned, rate)
    drain = await drained(control)
    tasks = await tasks_per_thread(control, threads)
    return AckResult(
        rate=rate,
        events=len(planned),
        messages=messages,
        ack_ms=Summary.of([a.seconds * 1e3 for a in acks]),
        non_2xx=sum(1 for a in acks if not 200 <= a.status < 300),
        send_lag_ms=lag * 1e3,
        drain_s=drain,
        min_tasks=min(tasks),
        max_tasks=max(tasks),
        lost=sum(1 for n in tasks if n == 0),
        duplicated=sum(n - 1 for n in tasks if n > 1),
    )


async def run(
    events: SlackEvents, control: Control, rates: list[int], seconds: float
) -> list[AckResult]:
    """Each rate in turn, with quick model answers so the backlog drains between rates."""
    await control.pace(0.0, 0)
    await drained(control)
    return [await run_rate(events, control, rate, seconds) for rate in rates]
