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

# Chunks of every answer; streamed more slowly where a thread's next reply comes later, so
# every reply cuts a run that is still streaming.
ANSWER_CHUNKS = 120
DRAIN_TIMEOUT = 420.0
# Settled: every agent idle, no run open, and the threads unchanged for this many polls.
STEADY_POLLS = 5
OPEN_RUNS = (
    "SELECT count(*) AS n FROM sys_invocation "
    "WHERE target_service_name = 'CodingTask' AND status != 'completed'"
)
_SKIPPED = re.compile(r'agent_slack_limiter_events_total\{event="skipped",[^}]*\} ([0-9.e+]+)')


@dataclass(frozen=True)
class Threads:
    """What the threads show once everything has settled, against what the agents did."""

    threads: int
    # Runs the agents cut (a reply after a run had ended cuts nothing) and notices shown.
    interrupted: int
    notices: int
    # Threads showing one final answer per run that completed.
    answers_right: int
    notice_below_answer: int
    # Status messages still showing "working" (with a Stop button) after everything ended.
    left_working: int


@dataclass(frozen=True)
class Shown:
    """One thread: its notices, its final answers, and what is wrong with its order."""

    notices: int
    answers: int
    notice_below: bool
    working: int


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


async def _show(control: Control, root: Posted) -> Shown:
    messages = await control.thread(root.channel, root.ts)
    bot = sorted(
        (m for m in messages if m.get("bot_id") and not m.get("files")), key=lambda m: m["ts"]
    )
    working = [m for m in bot if "stop_task" in str(m.get("blocks"))]
    notices = [m for m in bot if NOTICE_MARK in str(m.get("text", ""))]
    answers = [m for m in bot if m not in working and m not in notices]
    below = bool(notices and answers and notices[-1]["ts"] > answers[-1]["ts"])
    return Shown(len(notices), len(answers), below, len(working))


async def _threads(control: Control, roots: list[Posted]) -> Threads:
    shown = [await _show(control, root) for root in roots]
    states = [await control.agent(root.key, "status") for root in roots]
    completed = [
        int(st["tasks_started"]) - int(st["interruptions"]) - int(st["stops"]) for st in states
    ]
    return Threads(
        threads=len(roots),
        interrupted=sum(int(st["interruptions"]) for st in states),
        notices=sum(t.notices for t in shown),
        answers_right=sum(1 for t, n in zip(shown, completed, strict=True) if t.answers == n),
        notice_below_answer=sum(1 for t in shown if t.notice_below),
        left_working=sum(t.working for t in shown),
    )


async def _settled(control: Control, roots: list[Posted]) -> tuple[object, ...] | None:
    """What the threads show, once every agent is idle and no run is open; else None."""
    states = [(await control.agent(root.key, "status")).get("state") for root in roots]
    if any(state != "idle" for state in states):
        return None
    if int((await control.sql(OPEN_RUNS))[0]["n"]) > 0:
        return None
    return tuple([await _show(control, root) for root in roots])


@dataclass(frozen=True)
class Crowd:
    """What the busy-channel cases drive and read: the clients, the product's metrics, the
    model's pace."""

    events: SlackEvents
    control: Control
    http: aiohttp.ClientSession
    metrics_url: str
    chunk_delay: float

    async def open(
        self, channel: str, sessions: int, gap: float = 0.0
    ) -> tuple[float, Counts, dict[Posted, str]]:
        """`sessions` threads streaming in `channel`, each run long enough to outlast `gap`
        seconds twice: when, the counters before, the tokens."""
        since = time.time()
        limits = await self.control.slack_limits()
        before = Counts(
            int(limits["rate_limited"]),
            int(limits["during_retry_after"]),
            await skipped_updates(self.http, self.metrics_url),
        )
        # Slower chunks rather than more of them: a longer answer would be split over
        # several messages, and the threads are checked for one answer message per run.
        delay = max(self.chunk_delay, 2 * gap / ANSWER_CHUNKS)
        await self.control.pace(delay, min_chunks=ANSWER_CHUNKS)
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
        seen: tuple[object, ...] | None = None
        steady = 0
        while time.monotonic() - started < DRAIN_TIMEOUT and steady < STEADY_POLLS:
            # Notices and answers trail the restarts (behind Slack's limits): settled when
            # nothing runs and the threads have stopped changing.
            now = await _settled(control, roots)
            steady = steady + 1 if now is not None and now == seen else 0
            seen = now
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
    since, before, tokens = await crowd.open(channel, sessions, gap=sessions / per_second)
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
