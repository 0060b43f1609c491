"""With SLACK_STREAMING on, answers stream through Slack's chat.*Stream methods."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
