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
# Slack retries an event that was not acked with a 2xx within 3 s (as the sandbox does).
SLACK_RETRY_DELAYS = (1.0, 5.0, 10.0)
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


async def plan_events(
    events: SlackEvents, messages: int, channels: list[str]
) -> tuple[list[tuple[JSON, int]], list[str]]:
    """Store the messages (round robin over `channels`); the event schedule (envelope, retry
    number) and each message's thread key."""
    planned: list[tuple[JSON, int]] = []
    threads = []
    for i in range(messages):
        channel = channels[i % len(channels)]
        posted = await events.mention(channel, f"bench-a{i} summarise the design doc")
        threads.append(posted.key)
        mention, twin = posted.events
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


async def redeliver(events: SlackEvents, envelope: JSON) -> bool:
    """Slack's retries of an event that failed its first delivery; True once one is acked."""
    for retry_num, delay in enumerate(SLACK_RETRY_DELAYS, start=1):
        await asyncio.sleep(delay)
        if 200 <= (await events.send(envelope, retry_num)).status < 300:
            return True
    return False


async def drained(control: Control, limit: float = DRAIN_TIMEOUT) -> float:
    """Wait until every message has been taken and its task started (no `CodingAgent`
    invocation left unfinished); seconds waited. The runs themselves are not waited for: their
    answers queue behind Slack's limits (`chat.update`: 50 a minute per workspace), so a burst
    of a thousand new threads takes about twenty minutes to answer in one workspace."""
    started = time.monotonic()
    query = (
        "SELECT count(*) AS n FROM sys_invocation WHERE status != 'completed' "
        "AND target_service_name = 'CodingAgent'"
    )
    while time.monotonic() - started < limit:
        rows = await control.sql(query)
        if not rows or int(str(rows[0]["n"])) == 0:
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    stuck = await control.sql(
        "SELECT target, status, last_failure FROM sys_invocation WHERE status != 'completed' "
        "AND target_service_name = 'CodingAgent' LIMIT 5"
    )
    raise TimeoutError(f"invocations still running after {limit:.0f}s, e.g. {stuck}")


async def tasks_per_thread(control: Control, threads: list[str]) -> list[int]:
    """`tasks_started` of each thread's session, read through the shared `status` handler."""
    gate = asyncio.Semaphore(32)

    async def one(key: str) -> int:
        async with gate:
            return int(str((await control.agent(key, "status"))["tasks_started"]))

    return list(await asyncio.gather(*(one(key) for key in threads)))


async def run_rate(
    events: SlackEvents, control: Control, rate: int, seconds: float, channels: list[str]
) -> AckResult:
    messages = max(1, round(rate * seconds / EVENTS_PER_MESSAGE))
    planned, threads = await plan_events(events, messages, channels)
    acks, lag = await send_paced(events, planned, rate)
    failed = [e for (e, _), a in zip(planned, acks, strict=True) if not 200 <= a.status < 300]
    await asyncio.gather(*(redeliver(events, e) for e in failed))
    drain = await drained(control)
    tasks = await tasks_per_thread(control, threads)
    return AckResult(
        rate=rate,
        events=len(planned),
        messages=messages,
        ack_ms=Summary.of([a.seconds * 1e3 for a in acks]),
        non_2xx=len(failed),
        send_lag_ms=lag * 1e3,
        drain_s=drain,
        min_tasks=min(tasks),
        max_tasks=max(tasks),
        lost=sum(1 for n in tasks if n == 0),
        duplicated=sum(n - 1 for n in tasks if n > 1),
    )


async def run(
    events: SlackEvents, control: Control, rates: list[int], seconds: float, channels: list[str]
) -> list[AckResult]:
    """Each rate in turn, with quick model answers so the backlog drains between rates."""
    await control.pace(0.0, 0)
    await drained(control)
    return [await run_rate(events, control, rate, seconds, channels) for rate in rates]
