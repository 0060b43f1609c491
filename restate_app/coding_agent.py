"""CodingAgent: the durable session of one Slack thread (a virtual object keyed by thread key).

The exclusive `message` handler appends a user turn and, by the channel's policy, interrupts the
running task (cancel, then a bounded wait for its cleanup, whose report carries the partial
output), queues the turn for when the task ends, or waits out a debounce window; then it starts
the next task. Tasks report progress and how they ended through one-way sends, which only act
on the task they are about, so stale reports never clear a newer task.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import timedelta

import restate
import structlog
from pydantic import BaseModel
from restate.exceptions import TerminalError
from structlog.contextvars import bound_contextvars

from common.contract import (
    AGENT_FORGET_EARLY,
    AGENT_KICK,
    AGENT_SERVICE,
    TASK_RUN,
    TASK_SERVICE,
    CancelReason,
    History,
    IncomingMessage,
    Kick,
    MessageAck,
    RunningTask,
    RunRecord,
    Session,
    SessionStatus,
    StopAck,
    StopRequest,
    TaskProgress,
    TaskReport,
    TaskRequest,
    Turn,
    session_status,
)
from common.contract import (
    SESSION_STATE_KEY as SESSION,
)
from restate_app import metrics
from restate_app.coding_task import report_from_error

log = structlog.get_logger(__name__)

MAX_RUNS_KEPT = 50
# Replies that arrive before the mention that starts their thread's session wait this long.
EARLY = "early_replies"
EARLY_TTL = timedelta(minutes=2)
MAX_EARLY = 50


def record_outcome(
    session: Session, report: TaskReport, ended_at: float | None = None, late: bool = False
) -> None:
    """Add what a finished task produced to the conversation and its run record.

    A `late` report (its cleanup outlived the bounded wait) is history, not news: its partial
    goes before the reply that interrupted it, and it does not change the last outcome.
    """
    run = session.run(report.task_id)
    session.cancel_reasons.pop(report.task_id, None)
    if not late:
        session.last_outcome = report.outcome
    if report.outcome == "completed":
        session.turns.append(Turn(kind="answer", text=report.text, task_id=report.task_id))
    elif report.outcome in ("cancelled", "stopped") and report.text.strip():
        partial = Turn(kind="partial", text=report.text, task_id=report.task_id)
        by_ts = run.interrupted_by_ts if run is not None and late else None
        at = next((i for i, t in enumerate(session.turns) if by_ts and t.ts == by_ts), None)
        session.turns.insert(len(session.turns) if at is None else at, partial)
    elif report.outcome == "failed":
        session.turns.append(Turn(kind="error", text="The run failed.", task_id=report.task_id))
    if run is not None:
        run.outcome, run.ended_at = report.outcome, ended_at
        if report.tokens:
            run.tokens = report.tokens
        metrics.run_ended(run)


def _ts_key(ts: str | None) -> tuple[int, int]:
    seconds, _, fraction = (ts or "0").partition(".")
    return int(seconds or 0), int(fraction or 0)


def insert_in_slack_order(turns: list[Turn], turn: Turn) -> None:
    """Add a user turn before the user turns of this exchange that Slack sent later.

    Slack does not promise to deliver events in order; the conversation follows message ts.
    The search stops at an answer or an earlier user turn: what was answered stays put.
    """
    at = len(turns)
    for index in range(len(turns) - 1, -1, -1):
        other = turns[index]
        if other.kind == "answer" or (
            other.kind == "user" and _ts_key(other.ts) < _ts_key(turn.ts)
        ):
            break
        if other.kind == "user":
            at = index
    turns.insert(at, turn)


@dataclass(frozen=True)
class HistoryLimits:
    max_turns: int = 200
    max_bytes: int = 256_000


DEFAULT_LIMITS = HistoryLimits()


def bound_history(turns: list[Turn], limits: HistoryLimits) -> None:
    """Drop the oldest turns beyond the limits, leaving one marker that counts them."""
    dropped = turns.pop(0).dropped if turns and turns[0].kind == "dropped" else 0
    size = sum(len(t.text.encode()) for t in turns)
    while turns and (len(turns) + 1 > limits.max_turns or size > limits.max_bytes):
        size -= len(turns.pop(0).text.encode())
        dropped += 1
    if dropped:
        marker = f"[{dropped} earlier turns were dropped to keep this session's size bounded]"
        turns.insert(0, Turn(kind="dropped", text=marker, dropped=dropped))


def create_coding_agent(
    cleanup_wait: timedelta, limits: HistoryLimits = DEFAULT_LIMITS
) -> restate.VirtualObject:
    agent = restate.VirtualObject(
        AGENT_SERVICE, description="One Slack thread: its conversation and its running task."
    )

    @agent.handler()
    async def message(ctx: restate.ObjectContext, msg: IncomingMessage) -> MessageAck:
        """A user's message in the thread: interrupt, queue or debounce, then start a task."""
        with bound_contextvars(thread=ctx.key(), invocation=ctx.request().id):
            return await _message(ctx, msg, cleanup_wait, limits)

    @agent.handler()
    async def kick(ctx: restate.ObjectContext, kick: Kick) -> None:
        """The end of a debounce window: start one task for the whole burst."""
        with bound_contextvars(thread=ctx.key(), invocation=ctx.request().id):
            session = await _load(ctx)
            if kick.generation != session.debounce_generation or session.running is not None:
                return
            await _start_task(ctx, session, kick.trigger_ts, kick.trigger_user)
            await _save(ctx, session)

    @agent.handler()
    async def stop(ctx: restate.ObjectContext, req: StopRequest) -> StopAck:
        """Stop the running task without starting another (participants or admins only)."""
        with bound_contextvars(thread=ctx.key(), invocation=ctx.request().id):
            return await _stop(ctx, req, cleanup_wait)

    @agent.handler()
    async def reset(ctx: restate.ObjectContext, req: StopRequest) -> StopAck:
        """Stop the running task, then forget the session entirely."""
        with bound_contextvars(thread=ctx.key(), invocation=ctx.request().id):
            ack = await _stop(ctx, req.model_copy(update={"is_admin": True}), cleanup_wait)
            ctx.clear_all()
            log.info("session_reset", by=req.user_id)
            return ack

    @agent.handler()
    async def forget_early(ctx: restate.ObjectContext) -> None:
        """Drop replies kept for a session that never started."""
        ctx.clear(EARLY)

    @agent.handler()
    async def task_ended(ctx: restate.ObjectContext, report: TaskReport) -> None:
        """A task's own report; stale ones (already settled by an interruption) are ignored."""
        with bound_contextvars(thread=ctx.key(), invocation=ctx.request().id):
            await _task_ended(ctx, report)

    @agent.handler()
    async def progress(ctx: restate.ObjectContext, update: TaskProgress) -> None:
        session = await _load(ctx)
        if session.running is None or session.running.task_id != update.task_id:
            return
        session.running.step, session.running.tokens = update.step, update.tokens
        run = session.run(update.task_id)
        if run is not None:
            run.tokens = update.tokens
            if not run.steps or run.steps[-1] != update.step:
                run.steps.append(update.step)
        ctx.set(SESSION, session)

    @agent.handler(kind="shared")
    async def status(ctx: restate.ObjectSharedContext) -> SessionStatus:
        session = await ctx.get(SESSION, type_hint=Session) or Session()
        return session_status(ctx.key(), session)

    @agent.handler(kind="shared")
    async def history(ctx: restate.ObjectSharedContext) -> History:
        session = await ctx.get(SESSION, type_hint=Session) or Session()
        return History(thread_key=ctx.key(), turns=session.turns)

    @agent.handler(kind="shared")
    async def cancel_reason(ctx: restate.ObjectSharedContext, task_id: str) -> CancelReason:
        """Asked by a cancelled task, so its notice says "stopped" or "restarting"."""
        session = await ctx.get(SESSION, type_hint=Session) or Session()
        return session.cancel_reasons.get(task_id) or CancelReason()

    return agent


_clock: weakref.WeakKeyDictionary[restate.ObjectContext, float] = weakref.WeakKeyDictionary()


async def _now(ctx: restate.ObjectContext) -> float:
    """The handler's time, read once: each `ctx.time()` is a journal entry and a round trip on
    the interruption path, and one instant per handler is precise enough for its records."""
    if ctx not in _clock:
        _clock[ctx] = await ctx.time()
    return _clock[ctx]


async def _load(ctx: restate.ObjectContext) -> Session:
    return await ctx.get(SESSION, type_hint=Session) or Session()


async def _save(ctx: restate.ObjectContext, session: Session) -> None:
    session.updated_at = await _now(ctx)
    ctx.set(SESSION, session)


async def _message(
    ctx: restate.ObjectContext,
    msg: IncomingMessage,
    cleanup_wait: timedelta,
    limits: HistoryLimits,
) -> MessageAck:
    session = await _load(ctx)
    turn = Turn(kind="user", text=msg.text, user_id=msg.user_id, ts=msg.ts)
    if not session.turns and not (msg.mentions_bot or msg.is_dm):
        await _keep_early(ctx, turn)
        return MessageAck(accepted=False, reason="no_session")
    if session.created_at is None:
        session.channel_id, session.thread_ts = msg.channel_id, msg.thread_ts
        session.started_by, session.created_at = msg.user_id, await _now(ctx)
        for early in await _take_early(ctx):
            insert_in_slack_order(session.turns, early)
    if msg.policy == "queue" and session.running is not None:
        insert_in_slack_order(session.queued, turn)
        await _save(ctx, session)
        log.info("message_queued", queued=len(session.queued))
        return MessageAck(accepted=True, reason="queued")
    interrupted: str | None = None
    if session.running is not None:
        interrupted = session.running.task_id
        await _cancel_running(ctx, session, cleanup_wait, CancelReason(), msg)
    insert_in_slack_order(session.turns, turn)
    bound_history(session.turns, limits)
    if msg.debounce_seconds > 0:
        session.debounce_generation += 1
        kick = Kick(
            generation=session.debounce_generation, trigger_ts=msg.ts, trigger_user=msg.user_id
        )
        ctx.generic_send(
            AGENT_SERVICE,
            AGENT_KICK,
            kick.model_dump_json().encode(),
            key=ctx.key(),
            send_delay=timedelta(seconds=msg.debounce_seconds),
        )
        await _save(ctx, session)
        return MessageAck(accepted=True, reason="debounced", interrupted_task_id=interrupted)
    task_id = await _start_task(ctx, session, msg.ts, msg.user_id)
    await _save(ctx, session)
    return MessageAck(accepted=True, task_id=task_id, interrupted_task_id=interrupted)


class _Early(BaseModel):
    turns: list[Turn] = []


async def _keep_early(ctx: restate.ObjectContext, turn: Turn) -> None:
    """Keep a reply to a thread without a session for a while: Slack may deliver the mention
    that starts the session after the replies to it."""
    early = await ctx.get(EARLY, type_hint=_Early) or _Early()
    if not early.turns:
        ctx.generic_send(
            AGENT_SERVICE, AGENT_FORGET_EARLY, b"", key=ctx.key(), send_delay=EARLY_TTL
        )
    early.turns = [*early.turns[-(MAX_EARLY - 1) :], turn]
    ctx.set(EARLY, early)


async def _take_early(ctx: restate.ObjectContext) -> list[Turn]:
    early = await ctx.get(EARLY, type_hint=_Early)
    ctx.clear(EARLY)
    return early.turns if early else []


async def _stop(ctx: restate.ObjectContext, req: StopRequest, wait: timedelta) -> StopAck:
    session = await _load(ctx)
    if not session.turns:
        return StopAck(stopped=False, reason="no_session")
    if not req.is_admin and req.user_id not in session.participants():
        return StopAck(stopped=False, reason="not_allowed")
    # A pending debounce window and queued turns belong to the work being stopped.
    session.debounce_generation += 1
    session.turns.extend(session.queued)
    session.queued = []
    if session.running is None:
        await _save(ctx, session)
        return StopAck(stopped=False, reason="nothing_running")
    task_id = session.running.task_id
    await _cancel_running(ctx, session, wait, CancelReason(reason="stop", by_user=req.user_id))
    session.stops += 1
    await _save(ctx, session)
    log.info("task_stopped", task=task_id, by=req.user_id)
    return StopAck(stopped=True, task_id=task_id)


async def _task_ended(ctx: restate.ObjectContext, report: TaskReport) -> None:
    session = await _load(ctx)
    late = report.task_id in session.awaiting
    if session.running is not None and session.running.task_id == report.task_id:
        session.running = None
    elif late:
        session.awaiting.remove(report.task_id)
    else:
        log.debug("stale_task_report_ignored", task=report.task_id)
        return
    record_outcome(session, report, ended_at=await _now(ctx), late=late)
    if session.queued and session.running is None:
        trigger = session.queued[-1]
        session.turns.extend(session.queued)
        session.queued = []
        await _start_task(ctx, session, trigger.ts or session.thread_ts, trigger.user_id)
    await _save(ctx, session)


async def _cancel_running(
    ctx: restate.ObjectContext,
    session: Session,
    wait: timedelta,
    reason: CancelReason,
    trigger: IncomingMessage | None = None,
) -> None:
    """Cancel the running task and wait, bounded, for its cleanup and partial output."""
    assert session.running is not None
    task_id = session.running.task_id
    session.running, session.cancelling = None, task_id
    session.cancel_reasons[task_id] = reason
    if reason.reason == "interrupt":
        session.interruptions += 1
    # Written before the cancel: the task reads the reason, and readers see "cancelling".
    ctx.set(SESSION, session)
    cancelled_at = await _now(ctx)
    ctx.cancel_invocation(task_id)
    run = session.run(task_id)
    if run is not None and trigger is not None:
        run.interrupted_by_ts = trigger.ts
        if trigger.received_at:
            run.cancel_latency_ms = round((cancelled_at - trigger.received_at) * 1000, 1)
    outcome = ctx.attach_invocation(task_id, type_hint=TaskReport)
    done, _ = await restate.wait_completed(outcome, ctx.sleep(wait))
    session.cancelling = None
    if outcome not in done:
        log.warning("cleanup_wait_timed_out", task=task_id)
        session.awaiting.append(task_id)
        return
    try:
        report = await outcome
    except TerminalError as err:
        parsed = report_from_error(err, task_id)
        if parsed is None:
            # Not the task's own report (purged, never started): its `task_ended` settles it.
            session.awaiting.append(task_id)
            return
        report = parsed
    record_outcome(session, report, ended_at=await _now(ctx))


async def _start_task(
    ctx: restate.ObjectContext, session: Session, trigger_ts: str, trigger_user: str | None
) -> str:
    request = TaskRequest(
        thread_key=ctx.key(),
        channel_id=session.channel_id,
        thread_ts=session.thread_ts,
        trigger_ts=trigger_ts,
        trigger_user=trigger_user,
        turns=session.turns,
    )
    handle = ctx.generic_send(TASK_SERVICE, TASK_RUN, request.model_dump_json().encode())
    task_id = await handle.invocation_id()
    now = await _now(ctx)
    previous = session.runs[-1] if session.runs else None
    if previous is not None and previous.outcome == "cancelled" and previous.replaced_by is None:
        previous.replaced_by = task_id
    session.running = RunningTask(task_id=task_id, started_at=now, trigger_ts=trigger_ts)
    session.runs = [
        *session.runs[-(MAX_RUNS_KEPT - 1) :],
        RunRecord(
            task_id=task_id, trigger_ts=trigger_ts, trigger_user=trigger_user, started_at=now
        ),
    ]
    session.tasks_started += 1
    metrics.task_started()
    log.info("task_started", task=task_id)
    return task_id
