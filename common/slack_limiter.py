"""Keeps a process's Slack calls inside Slack's rate limits, most important calls first.

Slack limits each method per workspace by tier, and `chat.postMessage` per channel too
(`common/slack_limits.py`). Every Web API call of the process goes through one
`SlackLimiter`: a token bucket per method (and per channel for `chat.postMessage`), with
waiting callers served by lane, not by arrival:

- `URGENT`: notices of cancelled runs, status messages, answers. They wait for their turn.
- `BACKGROUND`: reactions. They wait behind the urgent calls, and give up after a minute.
- `PROGRESS`: live updates of a status message. They never wait: skipped when there is no
  token to spare (a few are kept for the urgent lane) or anyone is waiting.

A 429's `Retry-After` closes the method (for `chat.postMessage`, the channel) for every
caller in the process until it runs out; no call is made inside that window.

One app token is one budget at Slack. Processes sharing a token share it by `share` (set
`SLACK_RATE_SHARE` to 1/N for N `restate_app` replicas), and methods both the bot and
`restate_app` call are split between them (`SPLIT`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from common.slack_limits import POST_MESSAGE, POST_PER_CHANNEL, Rate, TokenBucket, method_rate

log = structlog.get_logger(__name__)

# Stay this far under each published rate: two clocks never agree exactly.
MARGIN = 0.9
# Methods the bot calls too: the bot's share of them (restate_app has the rest).
SPLIT: dict[str, float] = {"reactions.add": 0.5}
# Tokens a progress update leaves in the bucket for the urgent lane.
PROGRESS_KEEP = 2.0
# The part of a method's rate that live progress may use, shared by the active streams.
PROGRESS_SHARE = 0.6
MIN_PROGRESS_INTERVAL = 1.0
# How long a background call (a reaction) waits for its turn before it is dropped.
BACKGROUND_MAX_WAIT = 60.0
# 429s waited out in-process before the call's error goes to its durable step.
RATE_LIMIT_RETRIES = 3


class Lane(IntEnum):
    URGENT = 0
    BACKGROUND = 1
    PROGRESS = 2


class SlackBusy(Exception):
    """A call was skipped: a progress update with no token to spare, or a background call that
    waited too long. Never retried."""


@dataclass
class _Gate:
    bucket: TokenBucket
    blocked_until: float = 0.0
    waiters: list[tuple[int, int, asyncio.Future[None]]] = field(default_factory=list)
    pump: asyncio.Task[None] | None = None


@dataclass
class LimiterStats:
    """What the limiter did, for logs, metrics and benchmarks."""

    calls: int = 0
    waited: int = 0
    skipped: int = 0
    dropped: int = 0
    rate_limited: int = 0


class SlackLimiter:
    """Per-method (and per-channel) buckets with lanes and shared Retry-After windows."""

    def __init__(
        self,
        share: float = 1.0,
        split: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        observe: Callable[[str, str], None] | None = None,
        table: Callable[[str], Rate] = method_rate,
        background_wait: float = BACKGROUND_MAX_WAIT,
    ) -> None:
        self._background_wait = background_wait
        self._share, self._split, self._clock = share, dict(split or {}), clock
        self._table = table
        # Told (event, method) of each call skipped, dropped or rate limited: for metrics.
        self._observe = observe or (lambda _event, _method: None)
        self._gates: dict[str, _Gate] = {}
        self._seq = itertools.count()
        self._streams: dict[str, int] = {}
        self.stats = LimiterStats()

    # ------------------------------------------------------------------ buckets
    def rate(self, method: str) -> Rate:
        """This process's rate of a method: its share, under the margin."""
        rate = self._table(method).scaled(self._share * self._split.get(method, 1.0))
        return Rate(rate.per_minute * MARGIN, rate.burst)

    def _keys(self, method: str, channel: str | None) -> list[tuple[str, Rate]]:
        keys = [(method, self.rate(method))]
        if method == POST_MESSAGE and channel:
            # Each channel's own limit is not shared with other apps' processes.
            keys.append((f"{method}#{channel}", POST_PER_CHANNEL.scaled(MARGIN)))
        return keys

    def _gate(self, key: str, rate: Rate) -> _Gate:
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate(TokenBucket(rate, self._clock()))
        return gate

    # ------------------------------------------------------------------ taking turns
    async def acquire(self, method: str, channel: str | None, lane: Lane) -> None:
        """Wait for the call's turn; `SlackBusy` if it is skipped or dropped."""
        if lane == Lane.PROGRESS:
            if not self.try_acquire(method, channel):
                self.stats.skipped += 1
                self._observe("skipped", method)
                raise SlackBusy(f"{method}: no token to spare for progress")
            return
        timeout = self._background_wait if lane == Lane.BACKGROUND else None
        started = self._clock()
        for key, rate in self._keys(method, channel):
            left = None if timeout is None else timeout - (self._clock() - started)
            try:
                async with asyncio.timeout(left):
                    await self._turn(self._gate(key, rate), lane)
            except TimeoutError:
                self.stats.dropped += 1
                self._observe("dropped", method)
                raise SlackBusy(f"{method}: dropped after waiting {timeout:g} s") from None
        self.stats.calls += 1

    def try_acquire(self, method: str, channel: str | None) -> bool:
        """A token now from every bucket of the call, leaving some for the urgent lane."""
        now = self._clock()
        gates = [self._gate(key, rate) for key, rate in self._keys(method, channel)]
        for gate in gates:
            spare = gate.bucket.refill(now) >= 1 + PROGRESS_KEEP
            if gate.waiters or gate.blocked_until > now or not spare:
                return False
        for gate in gates:
            gate.bucket.take(now)
        self.stats.calls += 1
        return True

    async def _turn(self, gate: _Gate, lane: Lane) -> None:
        now = self._clock()
        if not gate.waiters and gate.blocked_until <= now and gate.bucket.take(now):
            return
        self.stats.waited += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(gate.waiters, (int(lane), next(self._seq), future))
        if gate.pump is None or gate.pump.done():
            gate.pump = asyncio.create_task(self._pump(gate))
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                gate.bucket.tokens += 1.0  # granted, but nobody will use it
            raise

    async def _pump(self, gate: _Gate) -> None:
        """Hand out the gate's tokens as they come, best lane first, never inside a block."""
        while gate.waiters:
            if gate.waiters[0][2].done():
                heapq.heappop(gate.waiters)
                continue
            now = self._clock()
            delay = max(gate.blocked_until - now, gate.bucket.wait(now))
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            gate.bucket.take(now)
            _, _, future = heapq.heappop(gate.waiters)
            future.set_result(None)

    # ------------------------------------------------------------------ Slack said no
    def rate_limited(self, method: str, channel: str | None, retry_after: float) -> None:
        """Slack answered 429: nobody in this process calls the method (for
        `chat.postMessage`, the channel) before `retry_after` has passed."""
        self.stats.rate_limited += 1
        self._observe("rate_limited", method)
        keys = self._keys(method, channel)
        key, rate = keys[-1]
        gate = self._gate(key, rate)
        until = self._clock() + max(retry_after, 1.0)
        gate.blocked_until = max(gate.blocked_until, until)
        gate.bucket.tokens = 0.0
        log.warning("slack_rate_limited", method=method, channel=channel, retry_after=retry_after)

    # ------------------------------------------------------------------ live progress
    @contextlib.contextmanager
    def stream(self, method: str) -> Iterator[None]:
        """An active stream of progress updates made with `method` while inside."""
        self._streams[method] = self._streams.get(method, 0) + 1
        try:
            yield
        finally:
            self._streams[method] -= 1

    def progress_interval(self, method: str) -> float:
        """Seconds between one stream's updates so all active streams fit the method's rate."""
        active = max(1, self._streams.get(method, 0))
        per_second = self.rate(method).per_second * PROGRESS_SHARE
        return max(MIN_PROGRESS_INTERVAL, active / per_second)


# The lane of the calls made in this context (set by the caller, read by the client).
_LANE: ContextVar[Lane] = ContextVar("slack_lane", default=Lane.URGENT)
# Set once the call made in this context has its turn and goes on the wire.
_ON_SEND: ContextVar[asyncio.Event | None] = ContextVar("slack_on_send", default=None)


@contextlib.contextmanager
def lane(value: Lane, on_send: asyncio.Event | None = None) -> Iterator[None]:
    """Calls made inside go in `value`'s lane; `on_send` is set when one goes out."""
    lane_token, send_token = _LANE.set(value), _ON_SEND.set(on_send)
    try:
        yield
    finally:
        _LANE.reset(lane_token)
        _ON_SEND.reset(send_token)


def _channel_of(*sources: Any) -> str | None:
    for source in sources:
        if isinstance(source, Mapping):
            value = source.get("channel") or source.get("channel_id")
            if isinstance(value, str):
                return value
    return None


def retry_after_seconds(exc: SlackApiError) -> float:
    value = exc.response.headers.get("Retry-After") if exc.response is not None else None
    try:
        return max(1.0, float(value)) if value is not None else 1.0
    except (TypeError, ValueError):
        return 1.0


class LimitedWebClient(AsyncWebClient):
    """`AsyncWebClient` whose every call, the SDK's helpers' too (file uploads, chat
    streams), takes its turn from the limiter and honours Slack's 429s."""

    def __init__(
        self,
        *args: Any,
        limiter: SlackLimiter,
        rate_limit_retries: int = RATE_LIMIT_RETRIES,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.limiter, self._retries = limiter, rate_limit_retries

    async def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[str, Any] | None = None,
        data: Any = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        auth: dict[str, Any] | None = None,
    ) -> Any:
        channel, current = _channel_of(json, data, params), _LANE.get()
        for attempt in range(self._retries + 1):
            await self.limiter.acquire(api_method, channel, current)
            on_send = _ON_SEND.get()
            if on_send is not None:
                on_send.set()
            try:
                return await super().api_call(
                    api_method,
                    http_verb=http_verb,
                    files=files,
                    data=data,
                    params=params,
                    json=json,
                    headers=headers,
                    auth=auth,
                )
            except SlackApiError as exc:
                if exc.response is None or exc.response.status_code != 429:
                    raise
                self.limiter.rate_limited(api_method, channel, retry_after_seconds(exc))
                if current == Lane.PROGRESS or attempt == self._retries:
                    raise
        raise AssertionError("unreachable")


def make_limiter(
    share: float, for_bot: bool, observe: Callable[[str, str], None] | None = None
) -> SlackLimiter:
    """The limiter of the bot or of `restate_app`: its share of the app's budget."""
    split = {method: (part if for_bot else 1.0 - part) for method, part in SPLIT.items()}
    return SlackLimiter(share=share, split=split, observe=observe)
