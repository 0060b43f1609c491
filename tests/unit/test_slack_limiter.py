"""The Slack rate limiter: lanes, skipped progress, shared Retry-After windows, stretching."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from common.slack_limiter import (
    MIN_PROGRESS_INTERVAL,
    Lane,
    SlackBusy,
    SlackLimiter,
    make_limiter,
)
from common.slack_limits import (
    POST_MESSAGE,
    Rate,
    TokenBucket,
    method_rate,
    tier_of,
)

FAST = Rate(per_minute=60 * 50, burst=1)  # a token every 20 ms


def fast_limiter(burst: float = 1) -> SlackLimiter:
    return SlackLimiter(table=lambda _method: Rate(FAST.per_minute, burst))


def test_the_tiers_are_the_ones_slack_publishes() -> None:
    assert tier_of("chat.update") == 3
    assert tier_of("reactions.add") == 3
    assert tier_of("reactions.remove") == 2
    assert tier_of("chat.postEphemeral") == 4
    assert tier_of("chat.getPermalink") == 4
    assert tier_of(POST_MESSAGE) is None
    assert method_rate("reactions.remove").per_minute == 20


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(Rate(per_minute=60, burst=3), now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait(0.0) == pytest.approx(1.0)
    assert bucket.take(1.0)
    assert not bucket.take(1.5)


async def test_urgent_calls_go_before_background_ones_that_waited_longer() -> None:
    limiter = fast_limiter()
    await limiter.acquire("chat.update", "C1", Lane.URGENT)  # the only token
    order: list[str] = []

    async def call(name: str, which: Lane) -> None:
        await limiter.acquire("chat.update", "C1", which)
        order.append(name)

    background = asyncio.create_task(call("reaction", Lane.BACKGROUND))
    await asyncio.sleep(0)
    urgent = [asyncio.create_task(call(f"notice {i}", Lane.URGENT)) for i in range(3)]
    await asyncio.gather(background, *urgent)
    assert order == ["notice 0", "notice 1", "notice 2", "reaction"]


async def test_progress_is_skipped_never_queued_when_others_wait_or_tokens_are_short() -> None:
    limiter = SlackLimiter(table=lambda _m: Rate(per_minute=1, burst=3))
    assert limiter.try_acquire("chat.update", "C1")  # 3 tokens: one spare above the two kept
    assert not limiter.try_acquire("chat.update", "C1")  # 2 left: kept for the urgent lane
    with pytest.raises(SlackBusy):
        await limiter.acquire("chat.update", "C1", Lane.PROGRESS)
    assert limiter.stats.skipped == 1
    # The urgent lane still has its tokens.
    await limiter.acquire("chat.update", "C1", Lane.URGENT)
    await limiter.acquire("chat.update", "C1", Lane.URGENT)


async def test_a_retry_after_closes_the_method_for_every_caller() -> None:
    limiter = fast_limiter(burst=10)
    loop = asyncio.get_running_loop()
    limiter.rate_limited("chat.update", "C1", retry_after=1.0)
    closed_until = loop.time() + 1.0
    assert not limiter.try_acquire("chat.update", "C2")  # another channel: same method
    assert limiter.try_acquire("reactions.add", "C1")  # another method: open
    await limiter.acquire("chat.update", "C3", Lane.URGENT)
    assert loop.time() >= closed_until - 0.05


async def test_a_post_messages_retry_after_closes_its_channel_only() -> None:
    limiter = SlackLimiter()
    limiter.rate_limited(POST_MESSAGE, "C1", retry_after=30)
    assert not limiter.try_acquire(POST_MESSAGE, "C1")
    await limiter.acquire(POST_MESSAGE, "C2", Lane.URGENT)


async def test_a_background_call_is_dropped_after_its_bound() -> None:
    limiter = SlackLimiter(table=lambda _m: Rate(per_minute=1, burst=1), background_wait=0.05)
    await limiter.acquire("reactions.add", "C1", Lane.BACKGROUND)
    with pytest.raises(SlackBusy):
        await limiter.acquire("reactions.add", "C1", Lane.BACKGROUND)
    assert limiter.stats.dropped == 1
    assert not limiter._gates["reactions.add"].waiters or all(
        future.done() for _, _, future in limiter._gates["reactions.add"].waiters
    )


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    limiter = fast_limiter()
    await limiter.acquire("chat.delete", "C1", Lane.URGENT)
    first = asyncio.create_task(limiter.acquire("chat.delete", "C1", Lane.URGENT))
    await asyncio.sleep(0)
    second = asyncio.create_task(limiter.acquire("chat.delete", "C1", Lane.URGENT))
    first.cancel()
    await second
    assert first.cancelled()


def test_progress_intervals_stretch_with_the_streams_to_fit_the_tier() -> None:
    limiter = SlackLimiter()
    assert limiter.progress_interval("chat.update") >= MIN_PROGRESS_INTERVAL
    with contextlib.ExitStack() as streams:
        for _ in range(5):
            streams.enter_context(limiter.stream("chat.update"))
        five = limiter.progress_interval("chat.update")
    # Five streams' updates together stay inside chat.update's Tier 3 (50 per minute).
    assert 60 * 5 / five <= 50
    assert limiter.progress_interval("chat.update") < five


def test_the_bot_and_restate_app_split_the_methods_both_call() -> None:
    bot, app = make_limiter(1.0, for_bot=True), make_limiter(1.0, for_bot=False)
    both = bot.rate("reactions.add").per_minute + app.rate("reactions.add").per_minute
    assert both <= method_rate("reactions.add").per_minute
    assert app.rate("chat.update").per_minute <= method_rate("chat.update").per_minute
    half = make_limiter(0.5, for_bot=False)
    assert half.rate("chat.update").per_minute == pytest.approx(
        app.rate("chat.update").per_minute / 2
    )
