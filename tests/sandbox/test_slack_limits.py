"""The sandbox's rate limiter on its own, on a clock the tests move: buckets, bursts, refill,
the per-channel `chat.postMessage` limit and Retry-After windows."""

from __future__ import annotations

import pytest

from sandbox.slack_limits import RateLimiter, Refusal, whole_seconds
from tests.sandbox.conftest import FakeClock


@pytest.fixture
def limiter(clock: FakeClock) -> RateLimiter:
    return RateLimiter(clock=clock)


def admitted(limiter: RateLimiter, method: str, calls: int, channel: str | None = None) -> int:
    """How many of `calls` calls made at once get through."""
    return sum(limiter.admit(method, channel) is None for _ in range(calls))


def test_a_tier_2_method_takes_its_burst_then_waits_for_the_next_token(
    limiter: RateLimiter,
) -> None:
    assert admitted(limiter, "reactions.remove", 4) == 4
    # Tier 2 is 20 a minute: the next token is 3 s away.
    assert limiter.admit("reactions.remove") == Refusal(3, during_retry_after=False)


def test_tokens_come_back_as_time_passes(limiter: RateLimiter, clock: FakeClock) -> None:
    assert admitted(limiter, "reactions.remove", 5) == 4
    clock.advance(3)
    assert admitted(limiter, "reactions.remove", 2) == 1
    clock.advance(60)
    assert admitted(limiter, "reactions.remove", 10) == 4  # refilled up to the burst, no more


def test_a_refused_call_takes_no_token(limiter: RateLimiter, clock: FakeClock) -> None:
    assert admitted(limiter, "reactions.remove", 4) == 4
    assert limiter.admit("reactions.remove") is not None
    clock.advance(1)
    assert limiter.admit("reactions.remove") is not None
    clock.advance(2)  # one token's time in all: it is there only if neither 429 took one
    assert limiter.admit("reactions.remove") is None


def test_methods_are_limited_separately(limiter: RateLimiter) -> None:
    assert admitted(limiter, "reactions.remove", 5) == 4
    assert limiter.admit("reactions.add") is None
    assert limiter.admit("auth.test") is None


def test_post_message_is_limited_per_channel(limiter: RateLimiter) -> None:
    assert admitted(limiter, "chat.postMessage", 3, "C1") == 3
    assert limiter.admit("chat.postMessage", "C1") == Refusal(1, during_retry_after=False)
    assert admitted(limiter, "chat.postMessage", 3, "C2") == 3


def test_post_message_without_a_known_channel_counts_only_against_the_workspace_cap(
    limiter: RateLimiter,
) -> None:
    assert admitted(limiter, "chat.postMessage", 30) == 30
    assert limiter.admit("chat.postMessage") is not None


def test_the_workspace_cap_on_posts_covers_every_channel(limiter: RateLimiter) -> None:
    assert sum(limiter.admit("chat.postMessage", f"C{i}") is None for i in range(31)) == 30
    refused = limiter.admit("chat.postMessage", "CNEW")
    assert refused == Refusal(1, during_retry_after=True)


def test_a_call_inside_the_retry_after_window_is_refused_and_marked(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    assert admitted(limiter, "chat.postMessage", 3, "C1") == 3
    clock.advance(0.5)
    # Half a token is there: the next comes in 0.5 s, but Slack says whole seconds.
    assert limiter.admit("chat.postMessage", "C1") == Refusal(1, during_retry_after=False)
    clock.advance(0.7)  # the bucket has a token again, the window has 0.3 s left
    assert limiter.admit("chat.postMessage", "C1") == Refusal(1, during_retry_after=True)
    assert limiter.admit("chat.postMessage", "C2") is None
    clock.advance(0.3)
    assert limiter.admit("chat.postMessage", "C1") is None


def test_a_disabled_limiter_admits_everything(limiter: RateLimiter) -> None:
    limiter.enabled = False
    assert admitted(limiter, "reactions.remove", 100) == 100
    assert admitted(limiter, "chat.postMessage", 100, "C1") == 100


def test_clear_fills_the_buckets_and_closes_the_windows(limiter: RateLimiter) -> None:
    assert admitted(limiter, "reactions.remove", 6) == 4
    limiter.clear()
    assert admitted(limiter, "reactions.remove", 5) == 4


@pytest.mark.parametrize(
    ("wait", "header"), [(0.01, 1), (1.0, 1), (2.5, 3), (60 / 20, 3), (1 / (20 / 60), 3)]
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(wait: float, header: int) -> None:
    assert whole_seconds(wait) == header
