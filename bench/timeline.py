"""Turns the offline model's request log and the workspace's call log into latencies.

Every message a benchmark sends carries a unique token (`bench-...`); the model sees it as the
last user turn of the requests the message's task makes, which is how streams are matched to
the interruptions that closed them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.clients import Control

JSON = dict[str, Any]

TOKEN = re.compile(r"bench-[a-z0-9-]+")
NOTICE_MARK = "Cancelled, restarting"


@dataclass(frozen=True)
class Interruption:
    """One interrupting message: its token, the token of the run it interrupts, and when it
    reached the system under test (the bot, the floor's ingress, or `task.cancel()`)."""

    token: str
    prev_token: str
    thread: str
    t0: float


@dataclass(frozen=True)
class Outcome:
    """What followed one interruption, in milliseconds after `t0` (None: not observed)."""

    closed_ms: float | None
    notice_ms: float | None
    new_request_ms: float | None
    wasted_chunks: int | None


def request_token(record: JSON) -> str | None:
    """The token of the message a model request was made for (its last user turn)."""
    for message in reversed(record.get("messages") or []):
        if message.get("role") == "user":
            found = TOKEN.findall(str(message.get("content", "")))
            return found[-1] if found else None
    return None


def by_token(records: Iterable[JSON]) -> dict[str, list[JSON]]:
    index: dict[str, list[JSON]] = defaultdict(list)
    for record in records:
        token = request_token(record)
        if token is not None:
            index[token].append(record)
    for found in index.values():
        found.sort(key=lambda r: r["received_at"])
    return index


def notices_by_thread(posts: Iterable[JSON], updates: Iterable[JSON]) -> dict[str, list[float]]:
    """When each "cancelled, restarting" notice reached Slack, per thread: posted, or written
    in place over the cancelled run's status message (found by the ts its post returned)."""
    out: dict[str, list[float]] = defaultdict(list)
    thread_of: dict[str, str] = {}
    for call in posts:
        args, response = call.get("args") or {}, call.get("response") or {}
        if response.get("ts"):
            thread_of[str(response["ts"])] = str(args.get("thread_ts"))
        if NOTICE_MARK in str(args.get("text", "")):
            out[str(args.get("thread_ts"))].append(float(call["wall"]))
    for call in updates:
        args = call.get("args") or {}
        if NOTICE_MARK in str(args.get("text", "")) and str(args.get("ts")) in thread_of:
            out[thread_of[str(args.get("ts"))]].append(float(call["wall"]))
    for walls in out.values():
        walls.sort()
    return out


def _ms(at: float | None, t0: float) -> float | None:
    return None if at is None else (at - t0) * 1e3


def resolve(
    item: Interruption, requests: dict[str, list[JSON]], notices: dict[str, list[float]]
) -> Outcome:
    """Match one interruption to the stream it closed, the notice and the next request."""
    old = [r for r in requests.get(item.prev_token, []) if r["received_at"] < item.t0]
    stream = old[-1] if old else None
    new = [r for r in requests.get(item.token, []) if r["received_at"] >= item.t0]
    notice = next((w for w in notices.get(item.thread, []) if w >= item.t0), None)
    return Outcome(
        closed_ms=_ms(stream.get("client_closed_at") if stream else None, item.t0),
        notice_ms=_ms(notice, item.t0),
        new_request_ms=_ms(new[0]["received_at"] if new else None, item.t0),
        wasted_chunks=sum(1 for c in stream["chunk_times"] if c > item.t0) if stream else None,
    )


async def harvest(
    control: Control, items: list[Interruption], since: float, with_notices: bool
) -> list[Outcome]:
    """Fetch the logs once and resolve every interruption against them."""
    requests = by_token(await control.model_requests(since=since))
    posts = await control.slack_calls("chat.postMessage") if with_notices else []
    updates = await control.slack_calls("chat.update") if with_notices else []
    notices = notices_by_thread(posts, updates)
    return [resolve(item, requests, notices) for item in items]


async def wait_streaming(
    control: Control, token: str, since: float, chunks: int = 2, limit: float = 30.0
) -> JSON:
    """Poll until a request made for `token` is open and has streamed `chunks` chunks."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for record in await control.model_requests(since=since):
            live = record["outcome"] == "pending" and record["chunks_sent"] >= chunks
            if live and request_token(record) == token:
                return record
        await asyncio.sleep(0.02)
    raise TimeoutError(f"no open stream for {token} after {limit:.0f}s")
