"""Budgets on the real stack: a run that reaches its step limit, its token limit or its
thread's token budget pauses with what it spent and a Continue button; Continue lets it go on
and finish (the thread's budget grows by one budget), Stop here or no answer in time ends it
as completed with a sentence that says so (no failure, no further model call); a Stop or a
reply while it waits ends the pause cleanly; the tokens it used show in its answer, in the
session and in `/agent-status`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bot.listeners.approvals import NOT_WAITING
from common.contract import APPROVE_ACTION_ID, DENY_ACTION_ID
from sandbox.stack import Stack
from tests.integration.harness import BOT_MENTION, CHANNEL, Harness, eventually, open_harness
from tests.integration.test_approvals import (
    _buttons,
    _click,
    _current,
    _ended,
    _request_message,
    _restart_restate_app,
    _stale_click,
    _told,
)

USAGE = re.compile(r"_([\d,]+) tokens · (\d+) steps_")


@contextmanager
def _configured(stack: Stack, **env: str) -> Iterator[Harness]:
    """restate_app with `env` set, as before afterwards."""
    _restart_restate_app(stack, **env)
    try:
        with open_harness(stack) as harness:
            yield harness
    finally:
        _restart_restate_app(stack, **dict.fromkeys(env))


@pytest.fixture
def two_steps(stack: Stack) -> Iterator[Harness]:
    """Runs of two model calls (`AGENT_MAX_STEPS=2`)."""
    with _configured(stack, AGENT_MAX_STEPS="2") as harness:
        yield harness


@pytest.fixture
def run_tokens(stack: Stack) -> Iterator[Harness]:
    """Runs of 10 tokens (`RUN_MAX_TOKENS=10`): one model call uses them up."""
    with _configured(stack, RUN_MAX_TOKENS="10") as harness:
        yield harness


@pytest.fixture
def thread_tokens(stack: Stack) -> Iterator[Harness]:
    """Threads of 10 tokens (`SESSION_MAX_TOKENS=10`): one model call uses them up."""
    with _configured(stack, SESSION_MAX_TOKENS="10") as harness:
        yield harness


@pytest.fixture
def unanswered(stack: Stack) -> Iterator[Harness]:
    """Runs of two model calls whose pause waits 2 s for an answer (`APPROVAL_TIMEOUT=2`)."""
    with _configured(stack, AGENT_MAX_STEPS="2", APPROVAL_TIMEOUT="2") as harness:
        yield harness


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


def _latest_request(harness: Harness, ts: str, before: set[str]) -> dict[str, Any]:
    """A request for more budget posted after those in `before`, once it shows its buttons."""
    return eventually(
        lambda: next(
            (m for m in harness.thread(ts) if m["ts"] not in before and _buttons(m)),
            None,
        ),
        what="a new request for more budget",
    )


def _answer(harness: Harness, ts: str, text: str) -> str:
    return eventually(
        lambda: next((t for t in harness.bot_texts(ts) if text in t), None),
        what=f"an answer saying {text!r}",
    )


def test_the_threads_token_budget_pauses_its_runs_and_continue_adds_one_budget(
    thread_tokens: Harness,
) -> None:
    harness = thread_tokens
    marker = f"m{time.time_ns()}"
    harness.script(_look(marker, 1), {"text": f"All done {marker}."})
    ts = harness.post(f"{BOT_MENTION} look around {marker}")
    request = _request_message(harness, ts)
    text = json.dumps(request["blocks"])
    assert re.search(
        r"This run has used [\d,]+ tokens in 1 step\. This thread has used [\d,]+ tokens "
        r"\(budget 10 tokens\)\. Continue for another 10\?",
        text,
    ), text
    assert len(harness.requests_mentioning(marker)) == 1, "no model call while it waits"
    _click(harness, request, APPROVE_ACTION_ID, "U0ALICE")
    status = harness.idle_after(ts, tasks=1)
    assert status["last_outcome"] == "completed"
    assert status["token_budget"] == 20, "Continue added one budget to the thread's"
    assert len(harness.requests_mentioning(marker)) == 2
    _ended(harness, ts, request["ts"], "Continued by <@U0ALICE>")

    # The thread's budget is used up: its next run asks before its first model call.
    harness.post(f"now the tests {marker}", thread_ts=ts)
    again = _latest_request(harness, ts, {request["ts"]})
    assert "(budget 20 tokens)" in json.dumps(again["blocks"])
    _click(harness, again, DENY_ACTION_ID, "U0ALICE")
    status = harness.idle_after(ts, tasks=2)
    assert status["last_outcome"] == "completed"
    assert status["token_budget"] == 20
    assert not harness.requests_mentioning(f"now the tests {marker}")
    answer = _answer(harness, ts, "stopped at the budget")
    assert "(stopped by <@U0ALICE>): this run used 0 tokens in 0 steps" in answer


def test_the_runs_token_limit_pauses_it_before_its_next_model_call(run_tokens: Harness) -> None:
    harness = run_tokens
    marker = f"m{time.time_ns()}"
    harness.script(_look(marker, 1), {"text": f"All done {marker}."})
    ts = harness.post(f"{BOT_MENTION} look around {marker}")
    request = _request_message(harness, ts)
    text = json.dumps(request["blocks"])
    assert re.search(
        r"This run has used [\d,]+ tokens in 1 step \(limit 10 tokens\)\. "
        r"Continue for another 10\?",
        text,
    ), text
    assert len(harness.requests_mentioning(marker)) == 1, "no model call while it waits"
    _click(harness, request, APPROVE_ACTION_ID, "U0ALICE")
    assert harness.idle_after(ts, tasks=1)["last_outcome"] == "completed"
    assert len(harness.requests_mentioning(marker)) == 2
    _answer(harness, ts, f"All done {marker}.")
    _ended(harness, ts, request["ts"], "Continued by <@U0ALICE>")


def test_a_pause_nobody_answers_in_time_ends_the_run_saying_so(unanswered: Harness) -> None:
    harness = unanswered
    marker = f"m{time.time_ns()}"
    ts, request = _paused(harness, marker)
    assert "No answer within 2 s counts as stopping here." in json.dumps(request["blocks"])
    status = harness.idle_after(ts, tasks=1, timeout=60)
    assert status["last_outcome"] == "completed"
    assert len(harness.requests_mentioning(marker)) == 2, "no model call after the timeout"
    _ended(harness, ts, request["ts"], "No answer within 2 s: stopped here.")
    answer = _answer(harness, ts, "stopped at the budget")
    assert "I stopped at the budget (nobody answered within 2 s)" in answer
    texts = harness.bot_texts(ts)
    assert not [t for t in texts if "Sorry" in t or "Stopped" in t or "Working on it" in t]


@pytest.mark.parametrize("how", ["stop", "reply"])
def test_a_stop_or_a_reply_while_paused_ends_the_pause_cleanly(
    two_steps: Harness, how: str
) -> None:
    harness = two_steps
    marker = f"m{time.time_ns()}"
    ts, request = _paused(harness, marker)
    if how == "stop":
        _click(harness, harness.status_message(ts), "stop_task", "U0ALICE")
        assert harness.idle_after(ts, tasks=1)["last_outcome"] == "stopped"
        line, notice = "No longer needed: the run was stopped.", "Stopped by <@U0ALICE>"
    else:
        harness.post(f"never mind {marker}", thread_ts=ts)
        assert harness.idle_after(ts, tasks=2)["last_outcome"] == "completed"
        line, notice = "No longer needed: the run was interrupted.", "Cancelled, restarting"
        assert len(harness.requests_mentioning(f"never mind {marker}")) == 1
        _answer(harness, ts, f"All done {marker}.")  # the replacement's, the script's last
    _ended(harness, ts, request["ts"], line)
    eventually(
        lambda: len([t for t in harness.bot_texts(ts) if notice in t]) == 1,
        what=f"one {notice!r} notice",
    )
    texts = harness.bot_texts(ts)
    assert not [t for t in texts if "stopped at the budget" in t or "Working on it" in t]
    assert len(harness.requests_mentioning(f"look around {marker}")) == 2 + (how == "reply")
    assert not _buttons(_current(harness, ts, request["ts"]))
    before = len(harness.ephemerals("U0ALICE"))
    _stale_click(harness, request, APPROVE_ACTION_ID, "U0ALICE")
    _told(harness, "U0ALICE", NOT_WAITING, before)
