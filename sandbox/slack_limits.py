"""Slack's published Web API rate limits, enforced by the sandbox workspace as Slack does.

One token bucket per method (its tier's rate), and for `chat.postMessage` one more per
channel. A call past either limit takes no token and is refused with the whole seconds to
wait, which the Web API answers as HTTP 429 with `Retry-After`. A call for the same limit
before that wait has run out is refused too, and marked as made during the Retry-After window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from common.slack_limits import POST_MESSAGE, POST_PER_CHANNEL, TokenBucket, method_rate

# A limit is a method's (channel None) or `chat.postMessage`'s in one channel.
Key = tuple[str, str | None]


@dataclass(frozen=True)
class Refusal:
    """A call refused: the `Retry-After` to answer, and whether an earlier one was ignored."""

    retry_after: int
    during_retry_after: bool


def whole_seconds(wait: float) -> int:
    """Slack's `Retry-After`: whole seconds, rounded up, at least 1."""
    # Rounding first keeps float noise (20/min is 3.0000000000000004 s a token) from adding 1.
    return max(1, math.ceil(round(wait, 6)))


class RateLimiter:
    """The buckets and open Retry-After windows of one workspace; `clock` gives seconds."""

    def __init__(self, enabled: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self._clock = clock
        self._buckets: dict[Key, TokenBucket] = {}
        self._retry_until: dict[Key, float] = {}

    def admit(self, method: str, channel: str | None = None) -> Refusal | None:
        """Take a token from every limit the call counts against, or refuse it taking none.

        `channel` is the resolved channel id of a `chat.postMessage` (ignored otherwise).
        """
        if not self.enabled:
            return None
        now = self._clock()
        keys: list[Key] = [(method, None)]
        if method == POST_MESSAGE and channel is not None:
            keys.append((method, channel))
        windows = [until - now for key in keys if (until := self._retry_until.get(key, 0)) > now]
        if windows:
            return Refusal(whole_seconds(max(windows)), during_retry_after=True)
        waits = {key: self._bucket(key, now).wait(now) for key in keys}
        refused = {key: wait for key, wait in waits.items() if wait > 0}
        if refused:
            retry_after = whole_seconds(max(refused.values()))
            for key in refused:
                self._retry_until[key] = now + retry_after
            return Refusal(retry_after, during_retry_after=False)
        for key in keys:
            self._buckets[key].take(now)
        return None

    def clear(self) -> None:
        """Full buckets and no open windows, as for a workspace that has had no calls."""
        self._buckets.clear()
        self._retry_until.clear()

    def _bucket(self, key: Key, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            method, channel = key
            rate = POST_PER_CHANNEL if channel is not None else method_rate(method)
            bucket = self._buckets[key] = TokenBucket(rate, now)
        return bucket
