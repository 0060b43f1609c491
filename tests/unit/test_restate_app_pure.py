"""Pure parts of the durable side: error classification, prompts, message splitting, reports."""

from __future__ import annotations

from datetime import timedelta

import httpx2
import openai
import pytest
from restate.exceptions import RetryableError, TerminalError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from common.contract import TaskReport, Turn
from restate_app.coding_agent import Session, record_outcome
from restate_app.coding_task import report_from_error
from restate_app.errors import classify_model_error, classify_slack_error
from restate_app.prompts import INTERRUPTED_PREFIX, answer_messages, plan_messages
from restate_app.slack_io import split_for_slack


def _slack_error(status: int, error: str, headers: dict[str, str] | None = None) -> SlackApiError:
    response = AsyncSlackResponse(
        client=None,
        http_verb="POST",
        api_url="http://127.0.0.1/api/chat.postMessage",
        req_args={},
        data={"ok": False, "error": error},
        headers=headers or {},
        status_code=status,
    )
    return SlackApiError(error, response)


def test_slack_rate_limits_are_retried_after_the_time_slack_asks() -> None:
    err = classify_slack_error(_slack_error(429, "ratelimited", {"Retry-After": "3"}), "x")
    assert isinstance(err, RetryableError)
    assert err.retry_after == timedelta(seconds=3)


@pytest.mark.parametrize("code", ["channel_not_found", "not_in_channel", "invalid_auth"])
def test_permanent_slack_errors_are_terminal(code: str) -> None:
    assert isinstance(classify_slack_error(_slack_error(200, code), "x"), TerminalError)


def test_slack_server_errors_are_retried() -> None:
    assert isinstance(
        classify_slack_error(_slack_error(503, "service_unavailable"), "x"), RetryableError
    )


def _model_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(status, headers=headers, request=request)
    cls = {429: openai.RateLimitError, 500: openai.InternalServerError}.get(
        status, openai.BadRequestError
    )
    return cls("error", response=response, body=None)


def test_model_errors_are_classified_for_retry() -> None:
    limited = classify_model_error(_model_error(429, {"Retry-After": "2"}))
    assert isinstance(limited, RetryableError)
    assert limited.retry_after == timedelta(seconds=2)
    assert isinstance(classify_model_error(_model_error(500)), RetryableError)
    assert isinstance(classify_model_error(_model_error(400)), TerminalError)


def test_interrupted_work_reaches_the_model_marked_as_interrupted() -> None:
    turns = [
        Turn(kind="user", text="write the migration", user_id="U1"),
        Turn(kind="partial", text="ALTER TABLE"),
        Turn(kind="user", text="use PostgreSQL", user_id="U2"),
        Turn(kind="error", text="The run failed."),
    ]
    plan = plan_messages(turns)
    contents = [str(m.get("content")) for m in plan]
    assert INTERRUPTED_PREFIX + "ALTER TABLE" in contents
    assert not any("The run failed." in c for c in contents)
    answer = answer_messages(turns, "the plan")
    assert "the plan" in str(answer[0]["content"])
    assert answer[-1] == {"role": "user", "content": "<@U2>: use PostgreSQL"}


def test_long_answers_are_split_on_breaks_within_the_limit() -> None:
    text = "\n\n".join(f"paragraph {i} " + "x" * 90 for i in range(20))
    parts = split_for_slack(text, limit=500)
    assert all(len(p) <= 500 for p in parts)
    assert "".join(p.replace("\n", "") for p in parts) == text.replace("\n", "")


def test_a_cancelled_task_report_survives_the_terminal_error() -> None:
    report = TaskReport(task_id="inv_1", outcome="cancelled", text="partial")
    assert report_from_error(TerminalError(report.model_dump_json(), 409), "inv_1") == report
    cancelled_early = report_from_error(TerminalError("cancelled", 409), "inv_2")
    assert cancelled_early is not None
    assert cancelled_early.outcome == "cancelled"
    assert report_from_error(TerminalError("boom", 500), "inv_3") is None


def test_outcomes_become_turns() -> None:
    session = Session()
    record_outcome(session, TaskReport(task_id="a", outcome="cancelled", text=""))
    record_outcome(session, TaskReport(task_id="b", outcome="cancelled", text="half"))
    record_outcome(session, TaskReport(task_id="c", outcome="completed", text="done"))
    assert [(t.kind, t.text) for t in session.turns] == [("partial", "half"), ("answer", "done")]
    assert session.last_outcome == "completed"


def test_history_is_bounded_with_one_marker_counting_what_was_dropped() -> None:
    from restate_app.coding_agent import HistoryLimits, bound_history

    turns = [Turn(kind="user", text=f"message {i}", ts=f"1.{i:06d}") for i in range(30)]
    limits = HistoryLimits(max_turns=10, max_bytes=10_000)
    bound_history(turns, limits)
    assert len(turns) == 10
    assert turns[0].kind == "dropped"
    assert turns[0].dropped == 21
    turns.append(Turn(kind="answer", text="x" * 9_990))
    bound_history(turns, limits)
    assert turns[0].dropped > 21
    assert sum(len(t.text) for t in turns[1:]) <= 10_000


def test_user_turns_follow_slack_order_even_when_delivered_out_of_order() -> None:
    from restate_app.coding_agent import insert_in_slack_order

    turns = [Turn(kind="answer", text="a")]
    for ts in ("5.000002", "5.000001", "10.000000", "9.999999"):
        insert_in_slack_order(turns, Turn(kind="user", text=ts, ts=ts))
    assert [t.text for t in turns[1:]] == ["5.000001", "5.000002", "9.999999", "10.000000"]


def test_late_user_turns_go_before_later_ones_even_past_partials() -> None:
    from restate_app.coding_agent import insert_in_slack_order

    turns = [Turn(kind="user", text="root", ts="1.000001"), Turn(kind="answer", text="a")]
    insert_in_slack_order(turns, Turn(kind="user", text="r16", ts="2.000016"))
    turns.append(Turn(kind="partial", text="p16"))
    insert_in_slack_order(turns, Turn(kind="user", text="r15", ts="2.000015"))
    assert [t.text for t in turns] == ["root", "a", "r15", "r16", "p16"]
