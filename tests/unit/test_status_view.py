"""What `/agent-status` shows of a session: its state, and the latest run's tool steps."""

from __future__ import annotations

from bot.status_view import detail_text
from common.contract import ChangeSummary, ToolRecord
from common.session_state import RunRecord, SessionStatus


def test_the_detail_shows_the_latest_runs_tool_steps_and_changes() -> None:
    run = RunRecord(
        task_id="inv_1",
        trigger_ts="1.000001",
        started_at=1.0,
        tools=[
            ToolRecord(name="read_file", summary="Reading `dates.py`", seconds=0.01),
            ToolRecord(
                name="run_command",
                summary="Running `python3 -m unittest`",
                seconds=6.2,
                exit_code=1,
                ok=False,
            ),
            ToolRecord(name="run_command", summary="Running `sleep 60`", seconds=3, killed=True),
        ],
        changes=ChangeSummary(files=["dates.py"], added=2, removed=8),
    )
    status = SessionStatus(
        thread_key="T0:C0:1.000001", state="working", turns=2, tasks_started=1, last_run=run
    )
    text = detail_text(status, now=10.0)
    assert ":white_check_mark: Reading `dates.py` (0.0 s)" in text
    assert ":x: Running `python3 -m unittest` (6.2 s, exit 1)" in text
    assert ":scissors: Running `sleep 60` (3.0 s)" in text
    assert "*Changes:* +2 -8 in `dates.py`" in text


def test_a_session_without_runs_shows_no_tool_lines() -> None:
    status = SessionStatus(thread_key="T0:C0:1.000001", state="idle", turns=1)
    assert "tool steps" not in detail_text(status, now=10.0)
