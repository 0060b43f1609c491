"""What a run's status message says while it works (the step now, the plan, the tool steps),
how often Slack is told, and how a cut run's notice labels what it was writing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import cast

from common.contract import Notice, TaskRequest
from common.slack_limiter import Lane
from restate_app.deps import Deps, Reactions
from restate_app.slack_io import SlackPoster
from restate_app.status_text import PLANNING, THINKING, StatusText
from restate_app.task_slack import (
    CANCELLED_TEXT,
    DONE_TEXT,
    INTERRUPTED_LABEL,
    StatusView,
    _notice,
    notice_text,
)
from restate_app.tools.registry import ToolResult
from tests.unit.test_mention_safety import FakeSlackApi, slack_api

__all__ = ["slack_api"]  # the fixture, shared with the mention-safety tests

_REACTIONS = Reactions(
    received="eyes",
    working="",
    done="white_check_mark",
    stopped="octagonal_sign",
    cancelled="leftwards_arrow_with_hook",
    failed="x",
)
PLAN = "**Plan** for your request:\n\n> fix the failing test\n\n1. Read the test.\n2. Fix it."


def test_before_any_text_the_status_says_the_agent_is_planning() -> None:
    state = StatusText()
    assert state.render().startswith(f":hourglass_flowing_sand: {PLANNING}")
    state.new_turn()
    assert state.now() == PLANNING


def test_a_running_tool_step_is_what_the_status_says_the_agent_is_doing() -> None:
    state = StatusText()
    state.new_turn()
    state.tool_started("c1", "Reading `src/app.py`")
    assert state.now() == "Reading `src/app.py`"
    state.tool_started("c2", "Running `pytest -q`")
    state.tool_ticked("c2", "Running `pytest -q`", 12)
    assert state.render().splitlines()[0] == ":hourglass_flowing_sand: Running `pytest -q` (12 s)"
    state.tool_ended("c2", failed=True, exit_note=" (exit 1)")
    state.tool_ended("c1", failed=False)
    state.new_turn()
    assert state.now() == THINKING
    assert "✗ Running `pytest -q` (12 s) (exit 1)" in state.render()
    assert "✓ Reading `src/app.py`" in state.render()


def test_the_plan_stays_shown_while_the_steps_it_announced_run() -> None:
    state = StatusText()
    state.new_turn()
    state.show_text(PLAN)
    state.new_turn()
    state.tool_started("c1", "Listing files")
    state.tool_ended("c1", failed=False)
    state.new_turn()
    state.show_text("The test fails by one hour.")
    shown = state.render()
    assert shown.startswith(f":hourglass_flowing_sand: {THINKING}")
    assert "*Plan* for your request:" in shown
    assert "\n> fix the failing test\n" in shown
    assert "1. Read the test." in shown
    assert "The test fails by one hour." in shown
    assert shown.index("*Plan*") < shown.index("The test fails") < shown.index("✓ Listing files")


def test_a_wait_for_approval_is_what_the_status_says_until_it_is_answered() -> None:
    state = StatusText()
    state.waiting("c1", "Running `pip install -e .`")
    assert state.now() == "Running `pip install -e .`: waiting for approval"
    state.refused("c1", "denied")
    assert "✗ Running `pip install -e .` (denied)" in state.render()
    assert state.now() == PLANNING


def test_each_change_counts_so_an_update_knows_what_it_showed() -> None:
    state = StatusText()
    before = state.version
    state.show_text("a")
    state.tool_started("c1", "Listing files")
    assert state.version == before + 2


def test_a_stopped_runs_partial_is_labelled_stopped_by_who_stopped_it() -> None:
    text = notice_text(":octagonal_sign: Stopped by <@U0ALICE>.", "half an answer", [], "stopped")
    assert text.endswith("\n>half an answer\n_(stopped)_")
    assert "interrupted" not in text


def test_an_interrupted_runs_partial_is_labelled_interrupted_by_a_new_message() -> None:
    text = notice_text(CANCELLED_TEXT, "## Plan\n> quoted\nhalf")
    assert text.endswith(f">*Plan*\n>quoted\n>half\n_({INTERRUPTED_LABEL})_")


def test_a_run_cut_before_it_wrote_a_word_quotes_nothing() -> None:
    for partial in ("", "  \n", "…", "...", "**"):
        assert notice_text(CANCELLED_TEXT, partial) == CANCELLED_TEXT
    killed = notice_text(CANCELLED_TEXT, "", ["Running `sleep 60` (killed after 1.0 s)"])
    assert killed == f"{CANCELLED_TEXT}\n• Running `sleep 60` (killed after 1.0 s)"


def _request() -> TaskRequest:
    return TaskRequest(
        thread_key="T0:C0GENERAL:1.000001",
        channel_id="C0GENERAL",
        thread_ts="1.000001",
        trigger_ts="1.000001",
        trigger_user="U0ALICE",
        turns=[],
    )


async def _until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_burst_of_changes_is_one_update_then_the_latest_state_follows(
    slack_api: tuple[FakeSlackApi, SlackPoster],
) -> None:
    """Streamed text and quick steps are coalesced: the status message is posted, shows the
    first text soon, and what it shows last is the state as it stands, in few updates."""
    fake, poster = slack_api
    view = StatusView(poster, _request())
    status_ts = await view.post_status()
    assert PLANNING in fake.calls[0][1]["text"]
    view.new_turn()
    for words in range(1, 60):
        await view.show_text(" ".join(f"w{i}" for i in range(words)))
    view.new_turn()
    done = view.tool_started("c1", "Listing files")
    view.tool_ended("c1", ToolResult(content="a.py", changes_files=False))
    done.cancel()

    def updates() -> list[str]:
        return [str(body["text"]) for method, body in fake.calls if method == "chat.update"]

    await _until(lambda: any("✓ Listing files" in text for text in updates()))
    assert len(updates()) <= 3
    assert "w58" in updates()[-1]
    await view.finish(status_ts, DONE_TEXT, "completed")
    assert fake.calls[-1][1]["text"] == DONE_TEXT
    await asyncio.sleep(0)
    assert fake.calls[-1][1]["text"] == DONE_TEXT


async def test_a_closed_status_takes_no_more_updates(
    slack_api: tuple[FakeSlackApi, SlackPoster],
) -> None:
    """A cut run's status message is its notice's to rewrite: nothing of the run lands after."""
    fake, poster = slack_api
    view = StatusView(poster, _request())
    await view.post_status()
    view.new_turn()
    await view.show_text("first words")
    await view.show_text("first words and more")
    view.close()
    sent = len(fake.calls)
    await view.show_text("first words and more and more")
    await view.quiet()
    assert len(fake.calls) == sent


async def test_a_stopped_runs_notice_does_not_wait_behind_the_busy_agent_session_calls(
    slack_api: tuple[FakeSlackApi, SlackPoster],
) -> None:
    """In a busy workspace `agents.sessions.setStatus` (Tier 3, background) has a queue: the
    notice of a stop is rewritten first, the agent session told after."""
    fake, poster = slack_api
    method = "agents.sessions.setStatus"
    for _ in range(int(poster.limiter.rate(method).burst)):
        await poster.limiter.acquire(method, None, Lane.URGENT)  # other runs took every token
    note = Notice(
        kind="stopped",
        thread_key="T0:C0GENERAL:1.000001",
        channel_id="C0GENERAL",
        thread_ts="1.000001",
        trigger_ts="1.000001",
        status_ts="1.000002",
        by_user="U0ALICE",
        partial="half an answer",
    )
    deps = cast("Deps", SimpleNamespace(slack=poster, reactions=_REACTIONS))
    notice = asyncio.create_task(_notice(deps, note))
    try:
        await _until(lambda: any(method == "chat.update" for method, _ in fake.calls))
        methods = [method for method, _ in fake.calls]
        assert "agents.sessions.setStatus" not in methods
        assert str(fake.calls[0][1]["text"]).startswith(":octagonal_sign: Stopped by <@U0ALICE>")
        await notice
        assert "agents.sessions.setStatus" in [method for method, _ in fake.calls]
    finally:
        notice.cancel()
