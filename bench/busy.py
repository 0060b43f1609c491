"""One busy channel under Slack's published rate limits (the sandbox answers 429 past them).

`run`: sessions streaming in one channel, replies arriving open-loop at a steady rate spread
over them round robin. `all_at_once`: many threads in one channel, every one interrupted in the
same instant. Both report the restart latencies, what Slack said (429s, calls made inside a
`Retry-After` window), the progress updates the limiter skipped, and what the threads show at
the end: one notice per interrupted run, above its replacement, and one final answer.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import aiohttp

from bench.clients import Control, Posted, SlackEvents
from bench.scale import _reply, open_sessions
from bench.timeline import NOTICE_MARK, Interruption, Outcome, harvest

# Long enough that every session is still streaming when its next reply comes.
ANSWER_CHUNKS = 120
DRAIN_TIMEOUT = 420.0
NOTICE_STEADY_POLLS = 5
_SKIPPED = re.compile(r'agent_slack_limiter_events_total\{event="skipped",[^}]*\} ([0-9.e+]+)')


@dataclass(frozen=True)
class Threads:
    """What the threads show once everything has settled."""

    threads: int
    notices: int
    answers_exactly_once: int
    notice_below_answer: int


@dataclass(frozen=True)
class BusyResult:
    label: str
    sessions: int
    replies: int
    outcomes: list[Outcome]
    rate_limited: int
    during_retry_after: int
    skipped: int
    shown: Threads
    settle_s: float


async def skipped_updates(http: aiohttp.ClientSession, metrics_url: str) -> int:
    """Progress updates the product's limiter skipped so far (its Prometheus counter)."""
    async with http.get(metrics_url) as resp:
        text = await resp.text()
    return int(sum(float(m) for m in _SKIPPED.findall(text)))


async def _notice_count(control: Control, roots: list[Posted]) -> int:
    return sum([(await _show(control, root))[0] for root in roots])


async def _show(control: Control, root: Posted) -> tuple[int, int, bool]:
    """Notices, final answers, and whether a notice sits below the answer, in one thread."""
    messages = await control.thread(root.channel, root.ts)
    bot = sorted(
        (m for m in messages if m.get("bot_id") and not m.get("files")), key=lambda m: m["ts"]
    )
    notices = [m for m in bot if NOTICE_MARK in str(m.get("text", ""))]
    answers = [
        m
        for m in bot
        if NOTICE_MARK not in str(m.get("text", "")) and "stop_task" not in str(m.get("blocks"))
    ]
    below = bool(notices and answers and notices[-1]["ts"] > answers[-1]["ts"])
    return len(notices), len(answers), below


async def _threads(control: Control, roots: list[Posted]) -> Threads:
    shown = [await _show(control, root) for root in roots]
    return Threads(
        threads=len(roots),
        notices=sum(n for n, _, _ in shown),
        answers_exactly_once=sum(1 for _, a, _ in shown if a == 1),
        notice_below_answer=sum(1 for _, _, below in shown if below),
    )


@dataclass(frozen=True)
class Crowd:
    """What the busy-channel cases drive and read: the clients, the product's metrics, the
    model's pace."""

    events: SlackEvents
    control: Control
    http: aiohttp.ClientSession
    metrics_url: str
    chunk_delay: float

    async def open(self, channel: str, sessions: int) -> tuple[float, Counts, dict[Posted, str]]:
        """`sessions` threads streaming in `channel`: when, the counters before, the tokens."""
        since = time.time()
        limits = await self.control.slack_limits()
        before = Counts(
            int(limits["rate_limited"]),
            int(limits["during_retry_after"]),
            await skipped_updates(self.http, self.metrics_url),
        )
        await self.control.pace(self.chunk_delay, min_chunks=ANSWER_CHUNKS)
        tokens, _ = await open_sessions(self.events, self.control, sessions, [channel])
        return since, before, tokens

    async def measure(
        self,
        label: str,
        roots: list[Posted],
        items: list[Interruption],
        since: float,
        before: Counts,
    ) -> BusyResult:
        """Wait for the threads to settle, then read what happened."""
        control = self.control
        started = time.monotonic()
        seen, steady = -1, 0
        while time.monotonic() - started < DRAIN_TIMEOUT and steady < NOTICE_STEADY_POLLS:
            states = [(await control.agent(root.key, "status")).get("state") for root in roots]
            if all(state == "idle" for state in states):
                # Notices trail the restarts (their own invocations, behind Slack's limits); a
                # run cut before its status message showed has none: done when the count holds.
                notices = await _notice_count(control, roots)
                steady = steady + 1 if notices == seen else 0
                seen = notices
                if notices >= len(items):
                    break
            await asyncio.sleep(1.0)
        settle_s = time.monotonic() - started
        limits = await control.slack_limits()
        return BusyResult(
            label=label,
            sessions=len(roots),
            replies=len(items),
            outcomes=await harvest(control, items, since, with_notices=True),
            rate_limited=int(limits["rate_limited"]) - before.rate_limited,
            during_retry_after=int(limits["during_retry_after"]) - before.during_retry_after,
            skipped=await skipped_updates(self.http, self.metrics_url) - before.skipped,
            shown=await _threads(control, roots),
            settle_s=settle_s,
        )


@dataclass(frozen=True)
class Counts:
    rate_limited: int
    during_retry_after: int
    skipped: int


async def run(
    crowd: Crowd, channel: str, sessions: int, replies: int, per_second: float
) -> BusyResult:
    """`sessions` streaming in `channel`; `replies` replies, `per_second`, round robin."""
    since, before, tokens = await crowd.open(channel, sessions)
    roots = list(tokens)
    sends = []
    start = time.perf_counter()
    for i in range(replies):
        delay = start + i / per_second - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        root = roots[i % len(roots)]
        prev, tokens[root] = tokens[root], f"bench-b{sessions}x{i}"
        sends.append(asyncio.create_task(_reply(crowd.events, root, prev, tokens[root])))
    items = [item for item, _ in await asyncio.gather(*sends)]
    label = f"{sessions} sessions in one channel, {per_second:g} reply/s"
    return await crowd.measure(label, roots, items, since, before)


async def all_at_once(crowd: Crowd, channel: str, threads: int) -> BusyResult:
    """`threads` streaming in `channel`, every one interrupted at the same moment."""
    since, before, tokens = await crowd.open(channel, threads)
    roots = list(tokens)
    sends = []
    for i, root in enumerate(roots):
        prev, tokens[root] = tokens[root], f"bench-a{i}"
        sends.append(_reply(crowd.events, root, prev, tokens[root]))
    items = [item for item, _ in await asyncio.gather(*sends)]
    label = f"{threads} threads in one channel, all interrupted at once"
    return await crowd.measure(label, roots, items, since, before)
