"""Many sessions streaming at once, with replies interrupting a random tenth of them every second.

Every session's first run streams a long (padded) default answer at the scale pace, so all
of them stay mid-stream; replies then arrive open-loop, spread evenly over each second.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from bench.clients import Ack, Control, SlackEvents, thread_key
from bench.procs import Sampler, Usage
from bench.stats import Summary
from bench.timeline import Interruption, Outcome, harvest, request_token

STREAM_WAIT = 180.0
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


async def _send_all(events: SlackEvents, envelopes: list[dict[str, object]]) -> list[Ack]:
    return list(await asyncio.gather(*(events.send(e) for e in envelopes)))


async def open_sessions(
    events: SlackEvents, control: Control, sessions: int, ramp_rate: float
) -> tuple[list[str], dict[str, str], int]:
    """Start `sessions` threads at `ramp_rate` per second; wait for their streams to be open."""
    roots, tokens, sends = [], {}, []
    since = time.time()
    for i in range(sessions):
        root = events.new_ts()
        roots.append(root)
        tokens[root] = f"bench-s{i}x0"
        sends.append(asyncio.create_task(_send_all(events, events.mention(tokens[root], root))))
        await asyncio.sleep(1 / ramp_rate)
    await asyncio.gather(*sends)
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
    return roots, tokens, streaming


async def interrupt_for(
    events: SlackEvents, roots: list[str], tokens: dict[str, str], seconds: int, fraction: float
) -> tuple[list[Interruption], list[Ack]]:
    """Every second, replies to a random `fraction` of the threads, evenly spread in time."""
    items: list[Interruption] = []
    sends: list[asyncio.Task[Ack]] = []
    per_second = max(1, round(len(roots) * fraction))
    start = time.perf_counter()
    for second in range(seconds):
        picks = random.sample(roots, per_second)
        offsets = sorted(random.uniform(0, 1) for _ in picks)
        for root, offset in zip(picks, offsets, strict=True):
            delay = start + second + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            prev, token = tokens[root], f"bench-r{len(items) + 1}"
            tokens[root] = token
            reply = events.reply(f"{token} change of plan", events.new_ts(), root)
            items.append(Interruption(token, prev, root, time.time()))
            sends.append(asyncio.create_task(events.send(reply)))
    return items, list(await asyncio.gather(*sends))


async def settle(control: Control, items: list[Interruption], since: float) -> None:
    """Wait (bounded) until every reply's new run has asked the model."""
    wanted = {i.token for i in items}
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        seen = {request_token(r) for r in await control.model_requests(since=since)}
        if wanted <= seen:
            return
        await asyncio.sleep(1.0)


async def state_sizes(control: Control, roots: list[str]) -> Summary:
    """Bytes of Restate state per scale session (all entries of its `CodingAgent` object)."""
    rows = await control.sql(
        "SELECT service_key, sum(octet_length(value)) AS bytes FROM state "
        "WHERE service_name = 'CodingAgent' GROUP BY service_key"
    )
    keys = {thread_key(r) for r in roots}
    return Summary.of([float(str(r["bytes"])) for r in rows if r["service_key"] in keys])


async def run(
    events: SlackEvents,
    control: Control,
    pids: dict[str, int],
    sessions: int,
    seconds: int,
    chunk_delay: float,
) -> ScaleResult:
    since = time.time()
    await control.pace(chunk_delay, min_chunks=int((seconds + 240) / chunk_delay))
    roots, tokens, streaming = await open_sessions(events, control, sessions, ramp_rate=100)
    sampler = Sampler(pids)
    sampler.start()
    window = time.monotonic()
    items, acks = await interrupt_for(events, roots, tokens, seconds, fraction=0.1)
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
