"""Pure parts of the durable side: error classification, prompts, message splitting, reports."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import httpx2
import openai
import pytest
from restate.exceptions import RetryableError, TerminalError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from common.contract import TaskReport, TaskRequest, ToolCall, Turn, WorkStep
from restate_app.deps import Models, Repos
from restate_app.errors import classify_model_error, classify_slack_error
from restate_app.prompts import INTERRUPTED_PREFIX, KILLED_RESULT, STOPPED_PREFIX, conversation
from restate_app.session import Limits
from restate_app.slack_io import SlackPoster, split_for_slack
from restate_app.status_text import about_line
from restate_app.task_slack import StatusView, known
from restate_app.turns import bound_turns, bound_work, insert_in_slack_order, outcome_turn


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
    messages = conversation(turns)
    contents = [str(m.get("content")) for m in messages]
    assert INTERRUPTED_PREFIX + "ALTER TABLE" in contents
    assert not any("The run failed." in c for c in contents)
    assert messages[-1] == {"role": "user", "content": "<@U2>: use PostgreSQL"}


def test_stopped_work_reaches_the_model_marked_as_stopped_not_interrupted() -> None:
    stopped = TaskReport(task_id="inv_1", outcome="stopped", text="ALTER TABLE")
    cut = TaskReport(task_id="inv_2", outcome="cancelled", text="CREATE INDEX")
    turns = [
        Turn(kind="user", text="write the migration", user_id="U1"),
        *(t for t in (outcome_turn(stopped, 10_000),) if t is not None),
        Turn(kind="user", text="go on", user_id="U1"),
        *(t for t in (outcome_turn(cut, 10_000),) if t is not None),
    ]
    contents = [str(m.get("content")) for m in conversation(turns)]
    assert STOPPED_PREFIX + "ALTER TABLE" in contents
    assert INTERRUPTED_PREFIX + "CREATE INDEX" in contents


def test_a_killed_command_and_a_dangling_tool_call_reach_the_model_closed() -> None:
    """Every tool call of an interrupted run gets a result: its own, the killed command's
    output so far, or a synthetic one, so the model API accepts the conversation."""
    calls = [
        ToolCall(id="c1", name="run_command", arguments='{"command": "sleep 60"}'),
        ToolCall(id="c2", name="read_file", arguments='{"path": "a.py"}'),
    ]
    work = [
        WorkStep(role="assistant", text="Running the tests.", tool_calls=calls),
        WorkStep(role="tool", tool_call_id="c1", name="run_command", text="[killed] ok so far"),
    ]
    turns = [
        Turn(kind="user", text="fix it", user_id="U1"),
        Turn(kind="partial", text="", work=work),
        Turn(kind="user", text="use zoneinfo", user_id="U1"),
    ]
    messages = conversation(turns)
    roles = [m["role"] for m in messages]
    assert roles == ["system", "user", "assistant", "tool", "tool", "assistant", "user"]
    tool_results = {m.get("tool_call_id"): m.get("content") for m in messages[3:5]}
    assert tool_results == {"c1": "[killed] ok so far", "c2": KILLED_RESULT}


def test_a_transcript_over_its_bound_loses_its_oldest_outputs_first() -> None:
    work = [
        WorkStep(role="tool", tool_call_id=f"c{i}", name="read_file", text=f"{i}" * 5_000)
        for i in range(6)
    ]
    turn = bound_work(Turn(kind="answer", text="done", work=work), 12_000)
    assert turn.size() <= 12_000
    assert "elided" in turn.work[0].text
    assert turn.work[-1].text == "5" * 5_000


def test_long_answers_are_split_on_breaks_within_the_limit() -> None:
    text = "\n\n".join(f"paragraph {i} " + "x" * 90 for i in range(20))
    parts = split_for_slack(text, limit=500)
    assert all(len(p) <= 500 for p in parts)
    assert "".join(p.replace("\n", "") for p in parts) == text.replace("\n", "")


def test_history_is_bounded_with_one_marker_counting_what_was_dropped() -> None:
    turns = [Turn(kind="user", text=f"message {i}", ts=f"1.{i:06d}") for i in range(30)]
    limits = Limits(max_turns=10, max_bytes=10_000)
    bound_turns(turns, limits.max_turns, limits.max_bytes)
    assert len(turns) == 10
    assert turns[0].kind == "dropped"
    assert turns[0].dropped == 21
    turns.append(Turn(kind="answer", text="x" * 9_990))
    bound_turns(turns, limits.max_turns, limits.max_bytes)
    assert turns[0].dropped > 21
    assert sum(len(t.text) for t in turns[1:]) <= 10_000


def test_user_turns_follow_slack_order_even_when_delivered_out_of_order() -> None:
    turns = [Turn(kind="answer", text="a")]
    for ts in ("5.000002", "5.000001", "10.000000", "9.999999"):
        insert_in_slack_order(turns, Turn(kind="user", text=ts, ts=ts))
    assert [t.text for t in turns[1:]] == ["5.000001", "5.000002", "9.999999", "10.000000"]


def test_late_user_turns_go_before_later_ones_even_past_partials() -> None:
    turns = [Turn(kind="user", text="root", ts="1.000001"), Turn(kind="answer", text="a")]
    insert_in_slack_order(turns, Turn(kind="user", text="r16", ts="2.000016"))
    turns.append(Turn(kind="partial", text="p16"))
    insert_in_slack_order(turns, Turn(kind="user", text="r15", ts="2.000015"))
    assert [t.text for t in turns] == ["root", "a", "r15", "r16", "p16"]


def test_the_status_message_names_the_repository_and_model_never_a_url() -> None:
    repos = Repos(
        default="https://x-access-token:ghs_secret@github.com/acme/web.git",
        named={"api": "git@github.com:acme/api-server.git"},
        by_channel={},
    )
    assert repos.label("git@github.com:acme/api-server.git") == "api"
    assert repos.label(repos.default or "") == "web"
    assert repos.label("/srv/repos/demo-repo/") == "demo-repo"
    line = about_line(repos.label(repos.default or ""), "smart", "gpt-4o")
    assert line == "_repo `web` · model `smart` (`gpt-4o`)_"
    assert about_line(None, None, "gpt-4o-mini") == "_model `gpt-4o-mini`_"
    view = StatusView(cast("SlackPoster", None), _request())
    view.about = line
    assert view.render().endswith("\n" + line)


def test_a_model_name_is_one_of_agent_models_or_the_default() -> None:
    models = Models(default="gpt-4o-mini", named={"smart": "gpt-4o"})
    assert models.resolve(None) == "gpt-4o-mini"
    assert models.resolve("smart") == "gpt-4o"
    assert models.resolve("gpt-4o") is None
    assert known(models.named) == "known: `smart`"
    assert known({}) == "known: none"


def _request() -> TaskRequest:
    return TaskRequest(
        thread_key="T0:C0:1.000001",
        channel_id="C0",
        thread_ts="1.000001",
        trigger_ts="1.000001",
        turns=[],
    )
