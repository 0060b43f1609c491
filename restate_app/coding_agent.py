"""CodingAgent: the durable session of one Slack thread (a virtual object keyed by thread key).

Each handler loads the session, asks `session.decide` what the event means, carries out the
effects (start, cancel, timers, notices, steering messages) with typed Restate calls, and
saves. The rules are all in `restate_app/session.py`; nothing here decides anything.
"""

from __future__ import annotations

import restate
import structlog
from structlog.contextvars import bound_contextvars

from common.contract import (
    AGENT_SERVICE,
    ApprovalAck,
    ApprovalClick,
    ApprovalClosed,
    IncomingMessage,
    MessageAck,
    ShipReport,
    ShipRequest,
    Steering,
    StopAck,
    StopRequest,
    TaskInbox,
    TaskProgress,
    TaskReport,
    Timer,
)
from common.session_state import SESSION_STATE_KEY, History, Session, SessionStatus, session_status
from restate_app import coding_task, metrics
from restate_app.deps import deps
from restate_app.session import (
    ApprovalAnswered,
    ApprovalWaitEnded,
    CancelTask,
    Decision,
    DeliverSteering,
    Effect,
    Event,
    InboxOpened,
    PostNotice,
    ProgressReported,
    ResolveApproval,
    RunEnded,
    Schedule,
    Shipped,
    ShipRequested,
    ShipStarted,
    StartShip,
    StartTask,
    StopRequested,
    TaskEnded,
    TaskStarted,
    TimerFired,
    UserMessage,
    decide,
)
from restate_app.thread_history import Earlier, joins_thread, read_earlier, with_earlier

log = structlog.get_logger(__name__)

coding_agent = restate.VirtualObject(
    AGENT_SERVICE, description="One Slack thread: its conversation, workspace and running task."
)


@coding_agent.handler()
async def message(ctx: restate.ObjectContext, msg: IncomingMessage) -> MessageAck:
    """A user's message in the thread: interrupt, queue, steer or debounce, then start a task."""
    d = await _handle(ctx, UserMessage(msg))
    reasons = ("no_session", "queued", "debounced", "duplicate", "steered")
    return MessageAck(
        accepted=d.note not in ("no_session", "duplicate"),
        reason=d.note if d.note in reasons else "",
        task_id=d.task_id,
        interrupted_task_id=d.cancelled,
    )


@coding_agent.handler()
async def stop(ctx: restate.ObjectContext, req: StopRequest) -> StopAck:
    """Stop the running task without starting another (participants or admins only)."""
    d = await _handle(ctx, StopRequested(req.user_id, req.is_admin))
    return StopAck(stopped=d.note == "stopped", reason=d.note, task_id=d.cancelled)


@coding_agent.handler()
async def reset(ctx: restate.ObjectContext, req: StopRequest) -> StopAck:
    """Stop the running task, then forget the conversation and the workspace."""
    d = await _handle(ctx, StopRequested(req.user_id, is_admin=True, reset=True))
    log.info("session_reset", by=req.user_id)
    return StopAck(stopped=d.note == "stopped", reason=d.note, task_id=d.cancelled)


@coding_agent.handler()
async def timer(ctx: restate.ObjectContext, fired: Timer) -> None:
    """A delayed message to itself: a debounce window, an overdue cleanup, early replies."""
    await _handle(ctx, TimerFired(fired))


@coding_agent.handler()
async def task_ended(ctx: restate.ObjectContext, report: TaskReport) -> None:
    """A task's one report; stale or repeated ones change nothing."""
    await _handle(ctx, TaskEnded(report))


@coding_agent.handler()
async def ship(ctx: restate.ObjectContext, req: ShipRequest) -> None:
    """Someone asked for the thread's work as a branch and a draft pull request."""
    await _handle(ctx, ShipRequested(req))


@coding_agent.handler()
async def shipped(ctx: restate.ObjectContext, report: ShipReport) -> None:
    """A ship's one report: the branch and pull request it made, or why not."""
    await _handle(ctx, Shipped(report))


@coding_agent.handler()
async def progress(ctx: restate.ObjectContext, update: TaskProgress) -> None:
    await _handle(ctx, ProgressReported(update))


@coding_agent.handler()
async def approval(ctx: restate.ObjectContext, click: ApprovalClick) -> ApprovalAck:
    """Approve or Deny pressed: the thread's participants and admins may answer, the first
    answer to the running task's request counts and wakes it."""
    d = await _handle(ctx, ApprovalAnswered(click))
    record = d.session.approval(click.ref.awakeable_id)
    earlier = record.answer if record is not None and d.note == "answered" else None
    return ApprovalAck.model_validate({"reason": d.note, "answer": earlier})


@coding_agent.handler()
async def approval_closed(ctx: restate.ObjectContext, closed: ApprovalClosed) -> None:
    """A task's wait for an answer ran out: the timeout counts, unless someone answered first."""
    await _handle(ctx, ApprovalWaitEnded(closed))


@coding_agent.handler()
async def inbox(ctx: restate.ObjectContext, opened: TaskInbox) -> None:
    """The running task's inboxes for steering messages, and the ones it took in."""
    await _handle(ctx, InboxOpened(opened))


@coding_agent.handler(kind="shared")
async def status(ctx: restate.ObjectSharedContext) -> SessionStatus:
    session = await ctx.get(SESSION_STATE_KEY, type_hint=Session) or Session()
    return session_status(ctx.key(), session, deps().limits.session_tokens)


@coding_agent.handler(kind="shared")
async def history(ctx: restate.ObjectSharedContext) -> History:
    session = await ctx.get(SESSION_STATE_KEY, type_hint=Session) or Session()
    return History(thread_key=ctx.key(), turns=session.turns)


async def _handle(ctx: restate.ObjectContext, event: Event) -> Decision:
    """Load, decide, carry out the effects (each may feed an event back), save."""
    with bound_contextvars(thread=ctx.key(), invocation=ctx.request().id):
        session = await ctx.get(SESSION_STATE_KEY, type_hint=Session) or Session()
        if isinstance(event, UserMessage) and joins_thread(event.msg, len(session.turns)):
            event = UserMessage(await _with_thread_so_far(ctx, event.msg))
        # One clock read per handler, and none where the event brings a time that is already
        # durable (a cancelled task's journaled report): each read is a journal entry and a
        # round trip, and this one would sit on the restart path.
        now = _event_time(event) or await ctx.time()
        limits = deps().limits
        d = decide(session, ctx.key(), event, now, limits)
        pending = list(d.effects)
        while pending:
            follow_ups = await _perform(ctx, pending)
            pending = []
            for follow_up in follow_ups:
                more = decide(d.session, ctx.key(), follow_up, now, limits)
                d.session, d.task_id = more.session, more.task_id or d.task_id
                pending.extend(more.effects)
        s = d.session
        if s.started or s.cancelling or s.late or s.early or s.ship.running is not None:
            ctx.set(SESSION_STATE_KEY, s)
        else:
            ctx.clear(SESSION_STATE_KEY)
        if d.note in ("stale_report", "duplicate", "stale_inbox"):
            log.debug(f"session_{d.note}", task=d.task_id)
        elif d.note:
            log.info(f"session_{d.note}", task=d.task_id, cancelled=d.cancelled)
        return d


async def _with_thread_so_far(ctx: restate.ObjectContext, msg: IncomingMessage) -> IncomingMessage:
    """A session starting in a thread under way reads the thread first (once: journaled)."""

    async def read() -> Earlier:
        return await read_earlier(deps().slack.client, msg)

    earlier = await ctx.run_typed("read the thread so far", read)
    files = [*earlier.files, *msg.files]
    return msg.model_copy(update={"text": with_earlier(earlier.text, msg.text), "files": files})


def _event_time(event: Event) -> float | None:
    """The time an event brings, already durable: a cancelled task's journaled end, or when
    a message reached the bot (both are in the invocation's input)."""
    if isinstance(event, TaskEnded):
        return event.report.ended_at
    if isinstance(event, UserMessage):
        return event.msg.received_at
    return None


async def _perform(ctx: restate.ObjectContext, effects: list[Effect]) -> list[Event]:
    """Carry out effects; a started task feeds back `TaskStarted`. New runs are sent first and
    their ids awaited last: Restate starts a replacement while it handles the rest."""
    sends = [
        ctx.service_send(coding_task.run, e.request) for e in effects if isinstance(e, StartTask)
    ]
    for effect in effects:
        match effect:
            case CancelTask(task_id):
                ctx.cancel_invocation(task_id)
                coding_task.send_settle(ctx, task_id, ctx.key())
                log.info("task_cancel_requested", task=task_id)
            case Schedule(fired, delay):
                ctx.object_send(timer, ctx.key(), fired, send_delay=delay)
            case PostNotice(notice):
                ctx.service_send(coding_task.notice, notice)
            case RunEnded(run):
                metrics.run_ended(run)
            case ResolveApproval(awakeable_id, answer):
                ctx.resolve_awakeable(awakeable_id, answer)
                log.info("approval_resolved", outcome=answer.outcome, by=answer.by_user)
            case DeliverSteering(inbox_id, turns):
                # One resolution per awakeable; the task may have ended since (then Restate
                # drops it, and the task's report starts the next run with these turns).
                ctx.resolve_awakeable(inbox_id, Steering(turns=turns))
                log.info("task_steered", messages=len(turns))
    ships = [
        (e.job.job, ctx.service_send(coding_task.ship, e.job))
        for e in effects
        if isinstance(e, StartShip)
    ]
    started: list[Event] = []
    for number, ship_handle in ships:
        started.append(ShipStarted(number, await ship_handle.invocation_id()))
    for handle in sends:
        task_id = await handle.invocation_id()
        metrics.task_started()
        log.info("task_started", task=task_id)
        started.append(TaskStarted(task_id))
    return started
