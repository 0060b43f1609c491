"""How often one person, and one channel, may start or restart a run of the agent.

Every run spends model calls, and with open allowlists anyone may open many threads and restart
each with every reply. Token buckets per user and per channel (`RUNS_PER_USER_PER_HOUR`,
`RUNS_PER_CHANNEL_PER_HOUR`, each with a burst; 0 turns one off) bound that; a message over
either gets a polite refusal that says when to try again. Pure: time comes from an injected
clock, nothing is sent.

What a message costs is the caller's question, answered here with what this process saw: a
mention (or a DM) always counts, as it starts or restarts a run; a plain reply counts in a
thread where this process let a mention through, as it restarts that thread's run; a reply
in any other thread is chatter the agent ignores, and is free. So is a reply that joins the
task running in its thread (the `steer` policy): it starts nothing. One message counts once,
however often Slack delivers it (retries, and the `app_mention`/`message` twin events).

Memory stays bounded: a bucket that has refilled is dropped (a new one would be the same), and
every table has a ceiling past which its least recently used entries go first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

from common.settings import BotSettings
from common.slack_limits import Rate, TokenBucket

Clock = Callable[[], float]
Scope = Literal["user", "channel"]
V = TypeVar("V")

# How long a message's verdict is kept for its repeats: Slack retries within minutes.
MESSAGE_MEMORY_SECONDS = 15 * 60
# How long a thread whose mention passed stays one whose replies count, since its last one.
THREAD_MEMORY_SECONDS = 3 * 86_400
# Ceilings on each table (buckets per scope, messages, threads); a few MB at most.
MAX_KEYS = 20_000
# How often refilled buckets are swept out.
SWEEP_SECONDS = 60.0

_TEXTS = {
    "user": "You have started a lot of runs of the agent in a short time",
    "channel": "This channel has started a lot of runs of the agent in a short time",
}


@dataclass(frozen=True)
class RunLimits:
    """Runs per hour and the burst on top, per user and per channel; 0 per hour: no limit."""

    user_per_hour: float = 60.0
    user_burst: int = 10
    channel_per_hour: float = 200.0
    channel_burst: int = 30

    @classmethod
    def from_settings(cls, settings: BotSettings) -> RunLimits:
        return cls(
            user_per_hour=settings.runs_per_user_per_hour,
            user_burst=settings.runs_per_user_burst,
            channel_per_hour=settings.runs_per_channel_per_hour,
            channel_burst=settings.runs_per_channel_burst,
        )


@dataclass(frozen=True)
class Refusal:
    """Why a message may not start a run now, and the sentence that tells its author.

    `repeat` is set on a repeat delivery of a refused message: refuse it, but say nothing
    more (the first delivery said it)."""

    scope: Scope
    retry_after: float
    text: str
    repeat: bool = False


def wait_words(seconds: float) -> str:
    """`about a minute`, `about 5 minutes`, `about 2 hours`: a wait, rounded up."""
    minutes = max(1, math.ceil(seconds / 60))
    if minutes == 1:
        return "about a minute"
    if minutes < 90:
        return f"about {minutes} minutes"
    return f"about {math.ceil(minutes / 60)} hours"


def refusal(scope: Scope, retry_after: float) -> Refusal:
    text = (
        f":hourglass: {_TEXTS[scope]}. Please try again in {wait_words(retry_after)} "
        "(this message was not passed on to the agent)."
    )
    return Refusal(scope=scope, retry_after=retry_after, text=text)


class _Buckets:
    """One token bucket per key, the least recently used first."""

    def __init__(self, rate: Rate | None, max_keys: int) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self.table: OrderedDict[str, TokenBucket] = OrderedDict()

    def get(self, key: str, now: float) -> TokenBucket | None:
        if self.rate is None:
            return None
        bucket = self.table.get(key)
        if bucket is None:
            bucket = self.table[key] = TokenBucket(self.rate, now)
            if len(self.table) > self.max_keys:
                # The least recently used goes, forgiven what it still owed: a ceiling on
                # memory matters more than one key's debt.
                self.table.popitem(last=False)
        self.table.move_to_end(key)
        return bucket

    def sweep(self, now: float) -> None:
        """Drop the buckets that have refilled: a new one would be the same."""
        full = [k for k, b in self.table.items() if b.refill(now) >= b.rate.burst]
        for key in full:
            del self.table[key]


def _rate(per_hour: float, burst: int) -> Rate | None:
    return Rate(per_minute=per_hour / 60.0, burst=float(burst)) if per_hour > 0 else None


class RunRate:
    """The per-user and per-channel buckets of one bot process."""

    def __init__(
        self, limits: RunLimits, clock: Clock = time.monotonic, max_keys: int = MAX_KEYS
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._users = _Buckets(_rate(limits.user_per_hour, limits.user_burst), max_keys)
        self._channels = _Buckets(_rate(limits.channel_per_hour, limits.channel_burst), max_keys)
        self._messages: OrderedDict[str, tuple[float, Refusal | None]] = OrderedDict()
        self._threads: OrderedDict[str, float] = OrderedDict()
        self._swept = clock()

    def check(
        self,
        user: str,
        channel: str,
        *,
        message: str = "",
        thread: str = "",
        mention: bool = True,
        starts_run: bool = True,
    ) -> Refusal | None:
        """May this message start or restart a run? None: yes (and it is counted).

        `message` names the message across deliveries (its idempotency key), `thread` its
        thread key; `mention` is True for a mention or a DM, False for a plain thread reply;
        `starts_run` False for a reply that joins the running task (`steer`): free.
        """
        now = self._clock()
        self._forget(now)
        if message and message in self._messages:
            seen = self._messages[message][1]
            return replace(seen, repeat=True) if seen is not None else None
        counts = starts_run and (mention or self._known(thread, now))
        verdict = self._charge(user, channel, now) if counts else None
        if verdict is None and mention and thread:
            self._remember(thread, now)
        if message:
            self._messages[message] = (now, verdict)
        return verdict

    def remember(self, thread: str) -> None:
        """Count this thread's plain replies from now on (its session is the agent's)."""
        self._remember(thread, self._clock())

    def _remember(self, thread: str, now: float) -> None:
        self._threads[thread] = now
        self._threads.move_to_end(thread)

    def _known(self, thread: str, now: float) -> bool:
        if not thread or thread not in self._threads:
            return False
        self._remember(thread, now)
        return True

    def _charge(self, user: str, channel: str, now: float) -> Refusal | None:
        """Take a token from both buckets, or from neither when one is empty."""
        pairs: list[tuple[Scope, TokenBucket | None]] = [
            ("user", self._users.get(user, now)),
            ("channel", self._channels.get(channel, now)),
        ]
        for scope, bucket in pairs:
            if bucket is not None and bucket.refill(now) < 1.0:
                return refusal(scope, bucket.wait(now))
        for _scope, bucket in pairs:
            if bucket is not None:
                bucket.take(now)
        return None

    def _forget(self, now: float) -> None:
        """Drop expired messages and threads, and now and then refilled buckets."""
        _expire(self._messages, now - MESSAGE_MEMORY_SECONDS, self._max_keys, key=lambda v: v[0])
        _expire(self._threads, now - THREAD_MEMORY_SECONDS, self._max_keys, key=lambda v: v)
        if now - self._swept >= SWEEP_SECONDS:
            self._swept = now
            self._users.sweep(now)
            self._channels.sweep(now)

    def sizes(self) -> dict[str, int]:
        """How many entries each table holds (for tests and metrics)."""
        return {
            "users": len(self._users.table),
            "channels": len(self._channels.table),
            "messages": len(self._messages),
            "threads": len(self._threads),
        }


def _expire(
    table: OrderedDict[str, V], before: float, max_keys: int, key: Callable[[V], float]
) -> None:
    """Drop the oldest entries of a table kept in use order: expired ones, then any over the
    ceiling."""
    while table and (len(table) > max_keys or key(next(iter(table.values()))) < before):
        table.popitem(last=False)
