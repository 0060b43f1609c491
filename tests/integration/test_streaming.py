"""With SLACK_STREAMING on, answers stream through Slack's chat.*Stream methods."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.stack import Stack
from tests.conftest import product_env
from tests.integration.harness import BOT_MENTION, Harness, eventually, open_harness, plan_step


@pytest.fixture(scope="module")
def streaming_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    stack = Stack(
        workdir=Path(tmp_path_factory.mktemp("streaming")),
        env=product_env(SLACK_STREAMING="true", DASHBOARD_PORT="0"),
    )
    try:
        stack.start_restate()
        stack.start_product(chunk_delay=0.01)
        with open_harness(stack) as harness:
            yield harness
    finally:
        stack.stop()


def test_the_answer_streams_with_slacks_streaming_methods(streaming_harness: Harness) -> None:
    harness = streaming_harness
    words = " ".join(f"part{i}" for i in range(60))
    harness.script(plan_step("plan"), {"text": words, "chunk_delay": 0.05})
    ts = harness.post(f"{BOT_MENTION} stream it")
    assert harness.idle_after(ts, tasks=1)["last_outcome"] == "completed"
    methods = {c["method"] for c in harness.calls("chat.startStream")}
    assert methods == {"chat.startStream"}
    assert harness.calls("chat.appendStream")
    assert harness.calls("chat.stopStream")
    texts = harness.bot_texts(ts)
    assert any(t.strip() == words for t in texts)
    assert any("Answered below" in t for t in texts)


def test_an_interruption_closes_the_stream_and_restarts(streaming_harness: Harness) -> None:
    harness = streaming_harness
    harness.script(
        plan_step("plan"), {"text": " ".join(f"w{i}" for i in range(300)), "chunk_delay": 0.05}
    )
    before = len(harness.calls("chat.appendStream"))
    ts = harness.post(f"{BOT_MENTION} long stream")
    eventually(
        lambda: len(harness.calls("chat.appendStream")) > before + 1, what="this answer streaming"
    )
    harness.post("shorter please", thread_ts=ts)
    status = harness.idle_after(ts, tasks=2)
    assert status["last_outcome"] == "completed"
    assert any("_(interrupted by a new message)_" in t for t in harness.bot_texts(ts))
    assert any("restarting" in t for t in harness.bot_texts(ts))


def _streamed_answer(harness: Harness, ts: str, words: str) -> None:
    """The thread holds the whole answer exactly once, in a stream, every stream of the thread
    is stopped, and the status message says it is answered."""
    texts = harness.bot_texts(ts)
    holding = [t for t in texts if words.split()[0] in t]
    assert [t.strip() for t in holding] == [words], holding
    assert any("Answered below" in t for t in texts)
    started = {
        c["response"]["ts"]
        for c in harness.calls("chat.startStream")
        if c["args"].get("thread_ts") == ts and c["response"].get("ok")
    }
    stopped = {c["args"]["ts"] for c in harness.calls("chat.stopStream") if c["response"]["ok"]}
    assert started, "the answer streamed"
    assert started <= stopped


def _long_answer(word: str) -> tuple[str, dict[str, Any]]:
    """An answer that streams for about ten seconds: long enough for the stream to start
    within it, whatever earlier tests left of chat.startStream's rate."""
    words = " ".join(f"{word}{i}" for i in range(200))
    return words, {"text": words, "chunk_delay": 0.05}


def test_a_retried_answer_step_keeps_the_streamed_answer_whole_and_once(
    streaming_harness: Harness,
) -> None:
    """Slack fails the stop of the answer's stream once: the step that posts the answer runs
    again (replayed: the model call comes from the journal and streams nothing) and stops the
    stream the text went to, with what it lacked, once."""
    harness = streaming_harness
    words, answer = _long_answer("retry")
    harness.script(answer)
    harness.fault("chat.stopStream", error="internal_error")  # retryable, not by the client
    ts = harness.post(f"{BOT_MENTION} stream it, then retry")
    status = harness.idle_after(ts, tasks=1)
    assert status["last_outcome"] == "completed"
    _streamed_answer(harness, ts, words)


def _faults(harness: Harness) -> list[dict[str, object]]:
    resp = harness.http.get(f"{harness.workspace}/_sandbox/faults")
    resp.raise_for_status()
    return list(resp.json()["faults"])


def test_a_streamed_answer_replayed_after_a_crash_holds_the_whole_text_once(
    streaming_harness: Harness,
) -> None:
    """restate_app is SIGKILLed while the answer's stream is being stopped: the process that
    picks the run up replays the model call from the journal (streaming nothing) and finishes
    the stream the text went to, with what it lacked."""
    harness = streaming_harness
    stack = harness.stack
    words, answer = _long_answer("crash")
    harness.script(answer)
    # The stop hangs (then fails, changing nothing) until the process is gone.
    harness.fault("chat.stopStream", status=500, delay=20)
    ts = harness.post(f"{BOT_MENTION} stream it, then crash")
    eventually(lambda: not _faults(harness), what="the answer's stop to be under way")
    stack.procs["restate_app"].kill()
    stack.start_restate_app()
    status = harness.idle_after(ts, tasks=1, timeout=90)
    assert status["last_outcome"] == "completed"
    assert status["tasks_started"] == 1
    _streamed_answer(harness, ts, words)


def test_a_run_that_fails_after_streaming_leaves_no_stream_open(
    streaming_harness: Harness,
) -> None:
    """The plan streamed, then the model refused the next call for good: the thread says
    sorry, and the plan's stream is stopped rather than left open in Slack."""
    harness = streaming_harness
    plan = " ".join(f"plan{i}" for i in range(60))
    harness.script(
        {**plan_step(plan), "chunk_delay": 0.05}, {"status": 400}, when="fail after streaming"
    )
    ts = harness.post(f"{BOT_MENTION} fail after streaming")
    assert harness.idle_after(ts, tasks=1)["last_outcome"] == "failed"
    started = {
        c["response"]["ts"]
        for c in harness.calls("chat.startStream")
        if c["args"].get("thread_ts") == ts and c["response"].get("ok")
    }
    stopped = {c["args"]["ts"] for c in harness.calls("chat.stopStream") if c["response"]["ok"]}
    assert started, "the plan streamed"
    assert started <= stopped
    assert any("Sorry" in t for t in harness.bot_texts(ts))
