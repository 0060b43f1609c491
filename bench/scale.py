"""Many sessions streaming at once, with replies interrupting a random tenth of them every second.

Every session's first run streams a long (padded) default answer at the scale pace, so all
of them stay mid-stream; replies then arrive open-loop, spread evenly over each second.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from bench.clients import Ack, Control, Posted, SlackEvents
from bench.procs import Sampler, Usage
from bench.stats import Summary
from bench.timeline import Interruption, Outcome, harvest, request_token

STREAM_WAIT = 180.0
RAMP_RATE = 100.0
SETTLE_TIMEOUT = 60.0


@dataclass(frozen=True)
class ScaleResult:
    sessions: int
    streaming: int
    seconds: float
    interruptions: int
    outcomes: list[Outcome]
    ack_ms: Summary
    non_2xx: int
    usage: list[Usage]
    state_bytes: Summary
    window_s: float


async def _open(events: SlackEvents, channel: str, token: str) -> Posted:
    """One new session: the mention and its twin event, as Slack sends them."""
    posted = await events.mention(channel, f"{token} write the migration")
    for envelope in posted.events:
        await events.send(envelope)
    return posted


async def open_sessions(
    events: SlackEvents, control: Control, sessions: int, channels: list[str]
) -> tuple[dict[Posted, str], int]:
    """Start `sessions` threads at `RAMP_RATE` per second (round robin over `channels`) and
    wait for their streams to be open. Returns each thread's latest token and how many
    streams were seen open."""
    since = time.time()
    opening: list[tuple[str, asyncio.Task[Posted]]] = []
    for i in range(sessions):
        token, channel = f"bench-s{i}", channels[i % len(channels)]
        opening.append((token, asyncio.create_task(_open(events, channel, token))))
        await asyncio.sleep(1 / RAMP_RATE)
    tokens = {await task: token for token, task in opening}
    wanted = set(tokens.values())
    deadline = time.monotonic() + STREAM_WAIT
    streaming = 0
    while time.monotonic() < deadline:
        records = await control.model_requests(since=since)
        live = {request_token(r) for r in records if r["outcome"] == "pending"}
        streaming = len(wanted & live)
        if streaming == len(wanted):
            break
        await asyncio.sleep(1.0)
    return tokens, streaming


async def _reply(
    events: SlackEvents, root: Posted, prev: str, token: str
) -> tuple[Interruption, Ack]:
    posted = await events.reply(root, f"{token} change of plan")
    ack = await events.send(posted.events[0])
    return Interruption(token, prev, root.ts, ack.sent_at), ack


async def interrupt_for(
    events: SlackEvents, tokens: dict[Posted, str], seconds: int, fraction: float
) -> tuple[list[Interruption], list[Ack]]:
    """Every second, replies to a random `fraction` of the threads, evenly spread in time."""
    roots = list(tokens)
    sends: list[asyncio.Task[tuple[Interruption, Ack]]] = []
    per_second = max(1, round(len(roots) * fraction))
    start = time.perf_counter()
    for second in range(seconds):
        picks = random.sample(roots, per_second)
        offsets = sorted(random.uniform(0, 1) for _ in picks)
        for root, offset in zip(picks, offsets, strict=True):
            delay = start + second + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            prev, tokens[root] = tokens[root], f"bench-r{len(sends) + 1}"
            sends.append(asyncio.create_task(_reply(events, root, prev, tokens[root])))
    done = await asyncio.gather(*sends)
    return [item for item, _ in done], [ack for _, ack in done]


async def settle(control: Control, items: list[Interruption], since: float) -> None:
    """Wait (bounded) until every reply's new run has asked the model."""
    wanted = {i.token for i in items}
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        seen = {request_token(r) for r in await control.model_requests(since=since)}
        if wanted <= seen:
            return
        await asyncio.sleep(1.0)


async def state_sizes(control: Control, roots: list[Posted]) -> Summary:
    """Bytes of Restate state per scale session (all entries of its `CodingAgent` object)."""
    rows = await control.sql(
        "SELECT service_key, sum(length(value)) AS bytes FROM state "
        "WHERE service_name = 'CodingAgent' GROUP BY service_key"
    )
    keys = {r.key for r in roots}
    return Summary.of([float(str(r["bytes"])) for r in rows if r["service_key"] in keys])


async def run(
    events: SlackEvents,
    control: Control,
    pids: dict[str, int],
    sessions: int,
    seconds: int,
    chunk_delay: float,
    channels: list[str],
) -> ScaleResult:
    since = time.time()
    await control.pace(chunk_delay, min_chunks=int((seconds + 240) / chunk_delay))
    tokens, streaming = await open_sessions(events, control, sessions, channels)
    roots = list(tokens)
    sampler = Sampler(pids)
    sampler.start()
    window = time.monotonic()
    items, acks = await interrupt_for(events, tokens, seconds, fraction=0.1)
    await settle(control, items, since)
    window_s = time.monotonic() - window
    usage = await sampler.stop()
    outcomes = await harvest(control, items, since, with_notices=True)
    return ScaleResult(
        sessions=sessions,
        streaming=streaming,
        seconds=seconds,
        interruptions=len(items),
        outcomes=outcomes,
        ack_ms=Summary.of([a.seconds * 1e3 for a in acks]),
        non_2xx=sum(1 for a in acks if not 200 <= a.status < 300),
        usage=usage,
        state_bytes=await state_sizes(control, roots),
        window_s=window_s,
    )
