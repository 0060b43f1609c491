"""How often a user and a channel may start runs: buckets, refusals, what counts, bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.run_rate import (
    MESSAGE_MEMORY_SECONDS,
    SWEEP_SECONDS,
    THREAD_MEMORY_SECONDS,
    RunLimits,
    RunRate,
    wait_words,
)
from common.settings import BotSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rate(limits: RunLimits, max_keys: int = 1000) -> tuple[RunRate, Clock]:
    clock = Clock()
    return RunRate(limits, clock=clock, max_keys=max_keys), clock


USER_ONLY = RunLimits(user_per_hour=60, user_burst=3, channel_per_hour=0)
CHANNEL_ONLY = RunLimits(user_per_hour=0, channel_per_hour=120, channel_burst=2)


def test_a_user_gets_the_burst_then_a_refusal_saying_when_to_try_again() -> None:
    runs, _clock = rate(USER_ONLY)
    assert [runs.check("U1", "C1") for _ in range(3)] == [None, None, None]
    refusal = runs.check("U1", "C1")
    assert refusal is not None
    assert refusal.scope == "user"
    assert refusal.retry_after == pytest.approx(60.0)
    assert "You have started a lot of runs" in refusal.text
    assert "about a minute" in refusal.text
    assert not refusal.repeat


def test_the_bucket_refills_at_the_hourly_rate() -> None:
    runs, clock = rate(USER_ONLY)
    for _ in range(3):
        runs.check("U1", "C1")
    clock.now += 59
    assert runs.check("U1", "C1") is not None
    clock.now += 1
    assert runs.check("U1", "C1") is None
    assert runs.check("U1", "C1") is not None


def test_users_have_buckets_of_their_own() -> None:
    runs, _clock = rate(USER_ONLY)
    for _ in range(3):
        runs.check("U1", "C1")
    assert runs.check("U1", "C1") is not None
    assert runs.check("U2", "C1") is None


def test_a_channel_is_limited_across_all_its_users() -> None:
    runs, _clock = rate(CHANNEL_ONLY)
    assert runs.check("U1", "C1") is None
    assert runs.check("U2", "C1") is None
    refusal = runs.check("U3", "C1")
    assert refusal is not None
    assert refusal.scope == "channel"
    assert refusal.retry_after == pytest.approx(30.0)
    assert "This channel has started" in refusal.text
    assert runs.check("U3", "C2") is None


def test_a_message_refused_for_its_channel_costs_its_author_nothing() -> None:
    runs, clock = rate(RunLimits(user_per_hour=60, user_burst=1, channel_per_hour=60))
    runs.check("U1", "C1")  # C1's burst (1) and U1's are spent ...
    runs.check("U2", "C1")  # ... and U2's attempt in C1 is refused for the channel
    clock.now += 60  # C1 and U1 have one again
    assert runs.check("U2", "C2") is None  # U2 still had its own
    assert runs.check("U1", "C1") is None


def test_zero_per_hour_turns_a_limit_off() -> None:
    runs, _clock = rate(RunLimits(user_per_hour=0, channel_per_hour=0))
    assert all(runs.check("U1", "C1") is None for _ in range(1000))
    assert runs.sizes()["users"] == runs.sizes()["channels"] == 0


def test_a_message_counts_once_however_often_slack_delivers_it() -> None:
    runs, _clock = rate(RunLimits(user_per_hour=60, user_burst=1, channel_per_hour=0))
    assert runs.check("U1", "C1", message="C1:1.0") is None
    assert runs.check("U1", "C1", message="C1:1.0") is None  # its twin event: not charged
    refused = runs.check("U1", "C1", message="C1:2.0")
    assert refused is not None
    assert not refused.repeat
    again = runs.check("U1", "C1", message="C1:2.0")
    assert again is not None
    assert again.repeat  # refused again, but said only once


def test_a_plain_reply_counts_only_in_a_thread_whose_mention_went_through() -> None:
    runs, _clock = rate(RunLimits(user_per_hour=60, user_burst=2, channel_per_hour=0))
    for _ in range(5):  # chatter in threads the agent is not in is free
        assert runs.check("U1", "C1", thread="T:C1:9.0", mention=False) is None
    assert runs.check("U1", "C1", thread="T:C1:1.0") is None  # a mention starts a session
    assert runs.check("U1", "C1", thread="T:C1:1.0", mention=False) is None
    assert runs.check("U1", "C1", thread="T:C1:1.0", mention=False) is not None


def test_a_refused_mention_does_not_make_its_thread_count() -> None:
    runs, _clock = rate(RunLimits(user_per_hour=60, user_burst=1, channel_per_hour=0))
    runs.check("U1", "C1", thread="T:C1:1.0")
    assert runs.check("U1", "C1", thread="T:C1:2.0") is not None
    assert runs.check("U2", "C1", thread="T:C1:2.0", mention=False) is None
    assert runs.check("U2", "C1", thread="T:C1:2.0", mention=False) is None


def test_a_thread_can_be_marked_as_the_agents_by_hand() -> None:
    runs, _clock = rate(RunLimits(user_per_hour=60, user_burst=1, channel_per_hour=0))
    runs.remember("T:C1:3.0")
    assert runs.check("U1", "C1", thread="T:C1:3.0", mention=False) is None
    assert runs.check("U1", "C1", thread="T:C1:3.0", mention=False) is not None


def test_refilled_buckets_are_dropped_and_the_result_is_the_same() -> None:
    runs, clock = rate(USER_ONLY)
    for user in ("U1", "U2", "U3"):
        runs.check(user, "C1")
    assert runs.sizes()["users"] == 3
    clock.now += SWEEP_SECONDS + 1  # each spent one of 3 at one a minute: full again
    assert runs.check("U4", "C1") is None
    assert runs.sizes()["users"] == 1
    assert [runs.check("U1", "C1") for _ in range(4)][-1] is not None  # a fresh burst of 3


def test_memory_stays_bounded_by_the_ceiling() -> None:
    runs, clock = rate(RunLimits(user_per_hour=1, user_burst=1, channel_per_hour=0), max_keys=50)
    for n in range(500):
        clock.now += 0.01
        runs.check(f"U{n}", "C1", message=f"C1:{n}", thread=f"T:C1:{n}")
    sizes = runs.sizes()
    assert sizes["users"] <= 50
    assert sizes["messages"] <= 51
    assert sizes["threads"] <= 51


def test_messages_and_threads_are_forgotten_when_idle() -> None:
    runs, clock = rate(USER_ONLY)
    runs.check("U1", "C1", message="C1:1.0", thread="T:C1:1.0")
    clock.now += MESSAGE_MEMORY_SECONDS + 1
    runs.check("U2", "C2")
    assert runs.sizes()["messages"] == 0
    assert runs.sizes()["threads"] == 1
    clock.now += THREAD_MEMORY_SECONDS
    runs.check("U2", "C2")
    assert runs.sizes()["threads"] == 0


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0.5, "about a minute"),
        (60, "about a minute"),
        (61, "about 2 minutes"),
        (89 * 60, "about 89 minutes"),
        (90 * 60, "about 2 hours"),
        (5 * 3600, "about 5 hours"),
    ],
)
def test_waits_are_said_in_words_rounded_up(seconds: float, words: str) -> None:
    assert wait_words(seconds) == words


def test_the_limits_come_from_the_bot_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNS_PER_USER_PER_HOUR", "12")
    monkeypatch.setenv("RUNS_PER_CHANNEL_BURST", "0")
    with pytest.raises(ValueError, match="runs_per_channel_burst"):
        BotSettings(slack_bot_token=SecretStr("xoxb-x"), _env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("RUNS_PER_CHANNEL_BURST", "7")
    settings = BotSettings(slack_bot_token=SecretStr("xoxb-x"), _env_file=None)  # type: ignore[call-arg]
    assert RunLimits.from_settings(settings) == RunLimits(
        user_per_hour=12, user_burst=10, channel_per_hour=200, channel_burst=7
    )


@given(
    gaps=st.lists(st.floats(min_value=0, max_value=120), min_size=1, max_size=80),
    burst=st.integers(min_value=1, max_value=5),
)
def test_no_window_of_time_lets_more_through_than_the_burst_and_the_rate(
    gaps: list[float], burst: int
) -> None:
    per_hour = 60.0
    runs, clock = rate(RunLimits(user_per_hour=per_hour, user_burst=burst, channel_per_hour=0))
    allowed: list[float] = []
    for gap in gaps:
        clock.now += gap
        if runs.check("U1", "C1") is None:
            allowed.append(clock.now)
    for i, start in enumerate(allowed):
        for j in range(i, len(allowed)):
            window = allowed[j] - start
            assert j - i + 1 <= burst + window * per_hour / 3600 + 1e-9
