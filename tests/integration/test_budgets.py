"""Budgets on the real stack: a run that reaches its step limit pauses with what it spent and
a Continue button; Continue lets it go on and finish, Stop here ends it as completed with the
budget sentence (no failure, no further model call); the tokens it used show in its answer,
in the session and in `/agent-status`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from common.contract import APPROVE_ACTION_ID, DENY_ACTION_ID
from sandbox.stack import Stack
from tests.integration.harness import BOT_MENTION, CHANNEL, Harness, eventually, open_harness
from tests.integration.test_approvals import (
    _buttons,
    _click,
    _ended,
    _request_message,
    _restart_restate_app,
)

USAGE = re.compile(r"_([\d,]+) tokens · (\d+) steps_")


@pytest.fixture
def two_steps(stack: Stack) -> Iterator[Harness]:
    """restate_app with runs of two model calls (`AGENT_MAX_STEPS=2`), as before afterwards."""
    _restart_restate_app(stack, AGENT_MAX_STEPS="2")
    try:
        with open_harness(stack) as harness:
            yield harness
    finally:
        _restart_restate_app(stack, AGENT_MAX_STEPS=None)


def _look(marker: str, number: int) -> dict[str, Any]:
    return {
        "text": f"Looking around ({marker}, {number}).",
        "tool_calls": [{"name": "list_files", "arguments": {}}],
    }


def _paused(harness: Harness, marker: str) -> tuple[str, dict[str, Any]]:
    """A run of two tool-calling model turns, paused at its step limit: its thread and the
    request to go on."""
    harness.script(_look(marker, 1), _look(marker, 2), {"text": f"All done {marker}."})
    ts = harness.post(f"{BOT_MENTION} look around {marker}")
    request = _request_message(harness, ts)
    text = json.dumps(request["blocks"])
    assert "The run has reached its budget:" in text
    assert re.search(
        r"This run has used [\d,]+ tokens in 2 steps \(limit 2 steps\)\. "
        r"Continue for another 2 steps\?",
        text,
    ), text
    labels = [b["text"]["text"] for b in _buttons(request)]
    assert labels == ["Continue", "Stop here"]
    assert len(harness.requests_mentioning(marker)) == 2, "no model call while it waits"
    eventually(
        lambda: harness.status(ts)["running_step"] == "Waiting for more budget",
        what="the timeline to say the run waits for more budget",
    )
    return ts, request


def test_continue_lets_a_paused_run_go_on_and_finish(two_steps: Harness) -> None:
    harness = two_steps
    marker = f"m{time.time_ns()}"
    ts, request = _paused(harness, marker)
    _click(harness, request, APPROVE_ACTION_ID, "U0ALICE")
    status = harness.idle_after(ts, tasks=1)
    assert status["last_outcome"] == "completed"
    _ended(harness, ts, request["ts"], "Continued by <@U0ALICE>")
    assert len(harness.requests_mentioning(marker)) == 3
    answer = next(t for t in harness.bot_texts(ts) if f"All done {marker}." in t)
    used = USAGE.search(answer)
    assert used is not None, answer
    tokens = int(used.group(1).replace(",", ""))
    assert tokens > 0
    assert used.group(2) == "3"
    run = status["last_run"]
    assert run["tokens"] == tokens
    assert not run["tokens_estimated"]
    assert status["tokens"] >= tokens
    assert status["token_budget"] > 0

    link = f"https://sandbox.slack.com/archives/{CHANNEL}/p{ts.replace('.', '')}"
    detail = harness.interact("command", command="/agent-status", text=link, channel=CHANNEL)
    shown = detail["json"]["text"]
    assert f"Tokens: {tokens:,} in the latest run · {status['tokens']:,} in this thread" in shown


def test_stop_here_ends_the_run_as_completed_at_its_budget(two_steps: Harness) -> None:
    harness = two_steps
    marker = f"m{time.time_ns()}"
    ts, request = _paused(harness, marker)
    _click(harness, request, DENY_ACTION_ID, "U0ALICE")
    status = harness.idle_after(ts, tasks=1)
    assert status["last_outcome"] == "completed"
    _ended(harness, ts, request["ts"], "Stopped here by <@U0ALICE>")
    assert len(harness.requests_mentioning(marker)) == 2, "no model call after Stop here"
    answer = eventually(
        lambda: next((t for t in harness.bot_texts(ts) if "stopped at the budget" in t), None),
        what="the answer saying the run stopped at its budget",
    )
    assert "I stopped at the budget (stopped by <@U0ALICE>)" in answer
    assert "in 2 steps, with 2 tool calls so far" in answer
    assert f"Looking around ({marker}, 2)." in answer
    assert USAGE.search(answer) is not None
    assert status["last_run"]["tokens"] > 0
    # The next run's conversation has the stopped run's work and its answer.
    kinds = [t["kind"] for t in harness.turns(ts)]
    assert kinds == ["user", "answer"]
