"""What a task's reports and progress do to its session: the outcome joins the conversation
and the run's record, the notice says how a cancelled run ended. Pure, like the rules in
`restate_app/session.py` that call them.
"""

from __future__ import annotations

from common.contract import Notice, NoticeKind, TaskProgress, TaskReport, parse_thread_key
from common.session_state import Cancelling, RunRecord, Session
from restate_app.session_events import Decision, Limits, RunEnded
from restate_app.session_turns import bound
from restate_app.turns import insert_before, outcome_turn


def notice_for(key: str, how: Cancelling, report: TaskReport, taken_over: bool) -> Notice:
    """The thread's notice for a cancelled run: only the agent knows why it cancelled."""
    _team, channel, thread_ts = parse_thread_key(key)
    kind: NoticeKind = "stopped" if how.reason == "stop" else "restarting"
    status_ts = report.status_ts or how.status_ts
    if not report.model_started or (kind == "restarting" and status_ts is None and taken_over):
        # Nothing of the run showed in the thread (its status message was still waiting for
        # its turn at Slack): a notice posted from here could land below the replacement's
        # messages, so the replacement posts it, before its own (`CodingTask.run`).
        kind = "withdrawn"
    return Notice(
        kind=kind,
        thread_key=key,
        channel_id=channel,
        thread_ts=thread_ts,
        trigger_ts=how.trigger_ts,
        status_ts=status_ts,
        by_user=how.by_user if how.reason == "stop" else None,
        partial=report.text,
        killed=report.killed,
        approval=report.approval,
    )


def record_report(
    d: Decision,
    report: TaskReport,
    now: float,
    limits: Limits,
    before_ts: str | None,
    late: bool = False,
) -> None:
    """Add what a finished task produced to the conversation and its run record.

    The work of a cancelled task goes before the reply that interrupted it: that is when it
    happened. A late report is history, not news: it does not change the last outcome."""
    s = d.session
    if not late:
        # A late report's workspace is older than the replacement's: never go back to it.
        s.workspace = report.workspace or s.workspace
        s.last_outcome = report.outcome
    turn = outcome_turn(report, limits.max_turn_bytes)
    if turn is not None:
        insert_before(s.turns, turn, before_ts)
        bound(s, s.turns, limits.max_turns, limits.max_bytes)
    run = s.run(report.task_id)
    if run is not None:
        run.outcome, run.ended_at = report.outcome, now
        spend(s, run, report.tokens, report.tokens_estimated, report.budget_added)
        run.changes = report.changes or run.changes
        d.effects.append(RunEnded(run.model_copy()))


def apply_progress(s: Session, progress: TaskProgress) -> None:
    running = s.running
    if progress.workspace is not None and is_current(s, progress.task_id):
        s.workspace = progress.workspace
    if running is None or running.task_id != progress.task_id:
        return
    running.step, running.tokens = progress.step, progress.tokens
    running.status_ts = progress.status_ts or running.status_ts
    run = s.run(progress.task_id)
    if run is not None:
        spend(s, run, progress.tokens, progress.tokens_estimated, progress.budget_added)
        if not run.steps or run.steps[-1] != progress.step:
            run.steps = [*run.steps[-99:], progress.step]
        run.tools = [*run.tools, *progress.tools][-100:]


def is_current(s: Session, task_id: str) -> bool:
    """The task is the session's latest: its workspace is the one to keep."""
    return bool(s.runs) and s.runs[-1].task_id == task_id


def spend(s: Session, run: RunRecord, tokens: int, estimated: bool, budget_added: int) -> None:
    """A run's running totals (its progress, then its report) into its record, and what they
    add into the thread's: counts only grow, so a repeat or a late progress adds nothing."""
    if tokens > run.tokens:
        s.tokens += tokens - run.tokens
        run.tokens = tokens
    run.tokens_estimated = run.tokens_estimated or estimated
    if budget_added > run.budget_added:
        s.budget_added += budget_added - run.budget_added
        run.budget_added = budget_added
