"""Budgets: which limit a run has reached before its next model call, what the request to go
on says and how Continue raises the limits, what a run stopped at its budget answers, the
Continue and Stop here buttons, and the thread's ledger of tokens and Continues."""

from __future__ import annotations

import json

import pytest

from common.contract import (
    Answer,
    ApprovalRef,
    IncomingMessage,
    PendingApproval,
    RunBudget,
    TaskProgress,
    TaskReport,
)
from restate_app.approval_view import answer_line, request_blocks
from restate_app.budgets import Spent, pause_text, raised, reached, stop_text, usage_line
from restate_app.session import (
    Limits,
    ProgressReported,
    StartTask,
    TaskEnded,
    UserMessage,
    decide,
)
from tests.unit.test_session_rules import KEY, Thread

BASE = RunBudget(steps=30, tokens=400_000, session_tokens=2_000_000)


@pytest.mark.parametrize(
    ("spent", "found"),
    [
        (Spent(steps=29, tokens=399_999), []),
        (Spent(steps=30, tokens=10), ["steps"]),
        (Spent(steps=3, tokens=400_000), ["tokens"]),
        (Spent(steps=30, tokens=400_000), ["steps", "tokens"]),
    ],
)
def test_a_run_reaches_its_step_and_token_limits_at_them(spent: Spent, found: list[str]) -> None:
    assert reached(BASE, spent) == found


def test_the_thread_budget_counts_what_earlier_runs_spent() -> None:
    budget = BASE.model_copy(update={"session_spent": 1_900_000})
    assert reached(budget, Spent(steps=2, tokens=99_999)) == []
    assert reached(budget, Spent(steps=2, tokens=100_000)) == ["session"]


def test_a_limit_of_zero_is_off() -> None:
    off = RunBudget(session_spent=10**9)
    assert reached(off, Spent(steps=10_000, tokens=10**9)) == []


def test_the_request_says_what_was_spent_and_what_continue_adds() -> None:
    spent = Spent(steps=30, tokens=412_345)
    assert pause_text(BASE, spent, ["tokens"], BASE) == (
        "This run has used 412,345 tokens in 30 steps (limit 400,000 tokens). "
        "Continue for another 400,000?"
    )
    assert pause_text(BASE, spent, ["steps", "tokens"], BASE) == (
        "This run has used 412,345 tokens in 30 steps (limit 30 steps, limit 400,000 tokens). "
        "Continue for another 30 steps and 400,000 tokens?"
    )
    thread = BASE.model_copy(update={"session_spent": 1_990_000})
    assert pause_text(thread, Spent(steps=1, tokens=12_000), ["session"], thread) == (
        "This run has used 12,000 tokens in 1 step. This thread has used 2,002,000 tokens "
        "(budget 2,000,000 tokens). Continue for another 2,000,000?"
    )


def test_continue_adds_one_more_budget_to_each_limit_reached() -> None:
    base = BASE.model_copy(update={"session_tokens": 2_500_000, "session_added": 500_000})
    budget = base.model_copy(update={"steps": 60})
    after = raised(budget, ["steps", "session"], base)
    assert (after.steps, after.tokens, after.session_tokens) == (90, 400_000, 4_500_000)


def test_a_run_stopped_at_its_budget_says_what_it_spent_and_where_it_was() -> None:
    said = "Now the <@U2> tests."
    text = stop_text(Spent(steps=3, tokens=1_234), "stopped by <@U1>", said, 2)
    assert text.startswith(
        ":octagonal_sign: I stopped at the budget (stopped by <@U1>): this run used 1,234 "
        "tokens in 3 steps, with 2 tool calls so far."
    )
    assert text.endswith("Where I was:\n>Now the &lt;@U2&gt; tests."), "the model's words, escaped"
    assert usage_line(Spent(steps=7, tokens=12_345)) == "_12,345 tokens · 7 steps_"
    assert usage_line(Spent(steps=1, tokens=80, estimated=True)) == "_~80 tokens · 1 step_"


def test_a_budget_request_offers_continue_and_stop_here() -> None:
    shown = PendingApproval(ts="1.2", kind="budget", what="This run has used 5 tokens in 1 step.")
    ref = ApprovalRef(
        thread_key="T0:C0:1.000001", task_id="inv_1abc", awakeable_id="sign_1" + "a" * 38
    )
    blocks = request_blocks(shown, ref)
    labels = [e["text"]["text"] for e in blocks[-1]["elements"]]
    assert labels == ["Continue", "Stop here"]
    assert "```" not in json.dumps(blocks), "a sentence, not a command to check verbatim"
    assert "counts as stopping here" in json.dumps(blocks)
    assert answer_line(shown, Answer(outcome="approved", by_user="U0ALICE")) == (
        ":arrow_forward: Continued by <@U0ALICE>."
    )
    assert "Stopped here" in answer_line(shown, Answer(outcome="denied", by_user="U0ALICE"))


def test_the_thread_counts_each_runs_tokens_once_and_passes_its_budget_on() -> None:
    limits = Limits(run_steps=5, run_tokens=100, session_tokens=1_000)
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True)
    (start,) = t.of(StartTask)
    assert isinstance(start, StartTask)
    assert start.request.budget is not None  # the default limits of `Thread`
    for tokens in (300, 300, 700):  # a repeated progress adds nothing
        progress = TaskProgress(task_id="inv_1", step="x", tokens=tokens, budget_added=1_000)
        t.session = decide(t.session, KEY, ProgressReported(progress), 1.0, limits).session
    report = TaskReport(task_id="inv_1", outcome="completed", tokens=900, budget_added=1_000)
    t.session = decide(t.session, KEY, TaskEnded(report), 2.0, limits).session
    assert (t.session.tokens, t.session.budget_added) == (900, 1_000)
    assert (t.session.runs[-1].tokens, t.session.runs[-1].budget_added) == (900, 1_000)
    reply = IncomingMessage(
        team_id="T0",
        channel_id="C0",
        thread_ts="100.000001",
        ts="100.000002",
        user_id="U1",
        text="go on",
    )
    d = decide(t.session, KEY, UserMessage(reply), 3.0, limits)
    (start,) = [e for e in d.effects if isinstance(e, StartTask)]
    assert start.request.budget == RunBudget(
        steps=5, tokens=100, session_tokens=2_000, session_spent=900, session_added=1_000
    )
