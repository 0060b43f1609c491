"""CodingAgent: the durable session of one Slack thread (a virtual object keyed by thread key).

The exclusive `message` handler appends a user turn, interrupts the running task (cancel, then a
bounded wait for its cleanup, whose report carries the partial output) and starts the next task.
Tasks report how they ended through `task_ended`, which only acts on the task it is about.
"""

from __future__ import annotations

from datetime import timedelta

import restate
import structlog
from pydantic import BaseModel
from restate.exceptions import TerminalError
from structlog.contextvars import bound_contextvars

from common.contract import (
    AGENT_SERVICE,
    TASK_RUN,
    TASK_SERVICE,
    History,
    IncomingMessage,
    MessageAck,
    RunningTask,
    SessionStatus,
    TaskOutcome,
    TaskReport,
    TaskRequest,
    Turn,
)
from restate_app.coding_task import report_from_error

log = structlog.get_logger(__name__)

SESSION = "session"


class Session(BaseModel):
    """Everything the agent keeps for one thread, stored as one state entry."""

    turns: list[Turn] = []
    running: RunningTask | None = None
    # Tasks whose cleanup did not finish within the bounded wait: their late report still counts.
    awaiting: list[str] = []
    tasks_started: int = 0
    interruptions: int = 0
    last_outcome: TaskOutcome | None = None


def record_outcome(session: Session, report: TaskReport) -> None:
    """Add what a finished task produced to the conversation."""
    session.last_outcome = report.outcome
    if report.outcome == "completed":
        session.turns.append(Turn(kind="answer", text=report.text, task_id=report.task_id))
    elif report.outcome == "cancelled" and report.text.strip():
        session.turns.append(Turn(kind="partial", text=report.text, task_id=report.task_id))
    elif report.outcome == "failed":
        session.turns.append(Turn(kind="error", text="The run failed.", task_id=report.task_id))


def create_coding_agent(cleanup_wait: timedelta) -> restate.VirtualObject:
    agent = restate.VirtualObject(
        AGENT_SERVICE, description="One Slack thread: its conversation and its running task."
    )

    @agent.handler()
    async def message(ctx: restate.ObjectContext, msg: IncomingMessage) -> MessageAck:
        """A user's message in the thread: interrupt what runs and start over with it."""
        with bound_contextvars(thread=ctx.key(), invocation=ctx.request().id):
            return await _message(ctx, msg, cleanup_wait)

    @agent.handler()
    async def task_ended(ctx: restate.ObjectContext, report: TaskReport) -> None:
        """A task's own report; stale ones (already settled by an interruption) are ignored."""
        with bound_contextvars(thread=ctx.key(), invocation=ctx.request().id):
            await _task_ended(ctx, report)

    @agent.handler(kind="shared")
    async def status(ctx: restate.ObjectSharedContext) -> SessionStatus:
        session = await ctx.get(SESSION, type_hint=Session) or Session()
        running = session.running
        return SessionStatus(
            thread_key=ctx.key(),
            state="working" if running else "idle",
            running_task_id=running.task_id if running else None,
            running_since=running.started_at if running else None,
            turns=len(session.turns),
            tasks_started=session.tasks_started,
            interruptions=session.interruptions,
            last_outcome=session.last_outcome,
        )

    @agent.handler(kind="shared")
    async def history(ctx: restate.ObjectSharedContext) -> History:
        session = await ctx.get(SESSION, type_hint=Session) or Session()
        return History(thread_key=ctx.key(), turns=session.turns)

    return agent


async def _message(
    ctx: restate.ObjectContext, msg: IncomingMessage, cleanup_wait: timedelta
) -> MessageAck:
    session = await ctx.get(SESSION, type_hint=Session) or Session()
    if not session.turns and not (msg.mentions_bot or msg.is_dm):
        return MessageAck(accepted=False, reason="no_session")
    interrupted: str | None = None
    if session.running is not None:
        interrupted = session.running.task_id
        await _interrupt(ctx, session, cleanup_wait)
    session.turns.append(Turn(kind="user", text=msg.text, user_id=msg.user_id, ts=msg.ts))
    task_id = await _start_task(ctx, session, msg)
    ctx.set(SESSION, session)
    log.info("task_started", task=task_id, interrupted=interrupted)
    return MessageAck(accepted=True, task_id=task_id, interrupted_task_id=interrupted)


async def _task_ended(ctx: restate.ObjectContext, report: TaskReport) -> None:
    session = await ctx.get(SESSION, type_hint=Session) or Session()
    if session.running is not None and session.running.task_id == report.task_id:
        session.running = None
    elif report.task_id in session.awaiting:
        session.awaiting.remove(report.task_id)
    else:
        log.debug("stale_task_report_ignored", task=report.task_id)
        return
    record_outcome(session, report)
    ctx.set(SESSION, session)


async def _interrupt(ctx: restate.ObjectContext, session: Session, wait: timedelta) -> None:
    """Cancel the running task and wait, bounded, for its cleanup and partial output."""
    assert session.running is not None
    task_id = session.running.task_id
    session.running = None
    session.interruptions += 1
    ctx.cancel_invocation(task_id)
    outcome = ctx.attach_invocation(task_id, type_hint=TaskReport)
    timeout = ctx.sleep(wait)
    done, _ = await restate.wait_completed(outcome, timeout)
    if outcome not in done:
        log.warning("cleanup_wait_timed_out", task=task_id)
        session.awaiting.append(task_id)
        return
    try:
        report = await outcome
    except TerminalError as err:
        report = report_from_error(err, task_id)
    record_outcome(session, report)


async def _start_task(ctx: restate.ObjectContext, session: Session, msg: IncomingMessage) -> str:
    request = TaskRequest(
        thread_key=ctx.key(),
        channel_id=msg.channel_id,
        thread_ts=msg.thread_ts,
        trigger_ts=msg.ts,
        turns=session.turns,
    )
    handle = ctx.generic_send(TASK_SERVICE, TASK_RUN, request.model_dump_json().encode())
    task_id = await handle.invocation_id()
    session.running = RunningTask(task_id=task_id, started_at=await ctx.time(), trigger_ts=msg.ts)
    session.tasks_started += 1
    return task_id
