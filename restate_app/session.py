"""The session's rules, as one pure function: `decide(session, event, now) -> Decision`.

Every rule of the interruption protocol lives here and nowhere else: at most one running
task; the conversation in Slack `ts` order; replies before the session's first mention kept
for a while; the `interrupt`, `queue`, `steer` (`session_steering.py`) and debounce policies;
stops and resets; reports that are on time, late (their cleanup was overdue), stale or
repeated; bounded history and queue; run records. `decide` never touches Slack or Restate: it
returns the new session and the effects for `CodingAgent`'s handlers to carry out, in order.

The protocol, for one interruption: a reply while a task runs records the reply, marks the
task `cancelling`, asks for it to be cancelled and for a cleanup timer, and starts the
replacement at once, `awaiting` the cancelled task: the replacement reads that task's report
from its result (bounded by the same cleanup wait) before its first model call. The report
also reaches the agent (`TaskEnded`), which puts it into the conversation and clears
`cancelling` (the timer does if the cleanup is overdue). A replacement cut while it still
waits goes along with the task before it (`follower`), and the next one awaits both. The
notice for the thread goes out with the report, because only the agent knows why it
cancelled; a stop calls the restart off.
"""

from __future__ import annotations

from datetime import timedelta

from common.contract import (
    Awaited,
    IncomingMessage,
    RunBudget,
    TaskReport,
    TaskRequest,
    Timer,
    Turn,
    steers,
)
from common.session_state import RunningTask, RunRecord, Session
from restate_app import session_approvals
from restate_app.session_events import (
    ApprovalAnswered,
    ApprovalWaitEnded,
    CancelTask,
    Decision,
    DeliverSteering,
    Effect,
    Event,
    InboxOpened,
    Limits,
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
)
from restate_app.session_reports import apply_progress, notice_for, record_report
from restate_app.session_ship import (
    after_run,
    maybe_ship,
    ship_requested,
    ship_started,
    shipped,
)
from restate_app.session_steering import inbox_opened, leftovers, steer, turn_text
from restate_app.session_stops import MAX_RUNS_KEPT, cancel, stop
from restate_app.session_turns import bound, merge_queue, seen, working_copy
from restate_app.turns import insert_in_slack_order

MAX_EARLY = 50
EARLY_TTL = timedelta(minutes=2)
PENDING = ""  # the task id of a task asked for but not yet named by Restate

# The vocabulary is re-exported: handlers and tests speak to the machine through this module.
__all__ = [
    "ApprovalAnswered",
    "ApprovalWaitEnded",
    "CancelTask",
    "Decision",
    "DeliverSteering",
    "Effect",
    "Event",
    "InboxOpened",
    "Limits",
    "PostNotice",
    "ProgressReported",
    "ResolveApproval",
    "RunEnded",
    "Schedule",
    "ShipRequested",
    "ShipStarted",
    "Shipped",
    "StartShip",
    "StartTask",
    "StopRequested",
    "TaskEnded",
    "TaskStarted",
    "TimerFired",
    "UserMessage",
    "decide",
]


# ----------------------------------------------------------------------------- decide


def decide(session: Session, key: str, event: Event, now: float, limits: Limits) -> Decision:
    """The session after `event`, and what to do about it. `session` is not modified."""
    d = Decision(working_copy(session))
    match event:
        case UserMessage(msg):
            _message(d, key, msg, now, limits)
        case TimerFired(timer):
            _timer(d, timer, limits)
        case StopRequested(user, is_admin, reset):
            stop(d, user, is_admin, reset, limits)
        case TaskStarted(task_id):
            _started(d, task_id)
        case TaskEnded(report):
            _ended(d, key, report, now, limits)
        case ProgressReported(progress):
            apply_progress(d.session, progress)
        case ShipRequested(request):
            ship_requested(d, request)
        case ShipStarted(job, task_id):
            ship_started(d, job, task_id)
        case Shipped(report):
            shipped(d, report)
        case ApprovalAnswered(click):
            session_approvals.answer(d, click, now)
        case ApprovalWaitEnded(closed):
            session_approvals.wait_ended(d, closed, now)
        case InboxOpened(inbox):
            inbox_opened(d, inbox)
    _maybe_start(d, key, now, limits)
    maybe_ship(d, key)
    if d.session.started:
        d.session.updated_at = now
    return d


def _message(d: Decision, key: str, msg: IncomingMessage, now: float, limits: Limits) -> None:
    s = d.session
    turn = Turn(kind="user", text=turn_text(msg), user_id=msg.user_id, ts=msg.ts, files=msg.files)
    if seen(s, msg.ts):
        d.note = "duplicate"
        return
    if not s.started and not (msg.mentions_bot or msg.is_dm):
        if not s.early:
            d.effects.append(Schedule(Timer(kind="forget_early"), EARLY_TTL))
        insert_in_slack_order(s.early, turn)
        del s.early[:-MAX_EARLY]
        d.note = "no_session"
        return
    if not s.started:
        s.channel_id, s.thread_ts = msg.channel_id, msg.thread_ts
        s.started_by, s.created_at = msg.user_id, now
        s.repo, s.model = msg.repo, msg.model
        for early in s.early:
            insert_in_slack_order(s.turns, early)
        s.early = []
    s.policy = msg.policy
    busy = s.running is not None or s.cancelling is not None
    if msg.policy == "queue" and busy:
        insert_in_slack_order(s.queued, turn)
        bound(s, s.queued, limits.max_queued, limits.max_bytes)
        d.note = "queued"
        return
    if s.running is not None and steers(msg):
        steer(d, turn, limits)
        return
    insert_in_slack_order(s.turns, turn)
    bound(s, s.turns, limits.max_turns, limits.max_bytes)
    s.pending_ts, s.pending_user = msg.ts, msg.user_id
    if s.running is not None:
        d.cancelled = s.running.task_id
        run = s.run(s.running.task_id)
        if run is not None:
            run.interrupted_by_ts = msg.ts
        cancel(d, "interrupt", msg.user_id, msg.ts, limits, at=msg.received_at)
        d.note = "interrupted"
    if msg.debounce_seconds > 0:
        s.debounce_generation += 1
        s.debounce_open = True
        timer = Timer(kind="debounce", generation=s.debounce_generation)
        d.effects.append(Schedule(timer, timedelta(seconds=msg.debounce_seconds)))
        d.note = d.note or "debounced"


def _timer(d: Decision, timer: Timer, limits: Limits) -> None:
    s = d.session
    if timer.kind == "debounce" and timer.generation == s.debounce_generation:
        s.debounce_open = False
    elif timer.kind == "forget_early" and not s.started:
        s.early = []
    elif timer.kind == "cleanup" and s.cancelling and s.cancelling.task_id == timer.task_id:
        _overdue(d, limits)


def _overdue(d: Decision, limits: Limits) -> None:
    """Go on without the cancelled task's cleanup; its report still counts when it comes."""
    s = d.session
    assert s.cancelling is not None
    s.late = [*s.late[-(MAX_RUNS_KEPT - 1) :], s.cancelling]
    s.cancelling = None
    d.note = "cleanup_overdue"
    _release_queue(s, limits)


def _started(d: Decision, task_id: str) -> None:
    s = d.session
    if s.running is None or s.running.task_id != PENDING:
        return
    s.running.task_id = task_id
    s.runs[-1].task_id = task_id
    previous = s.runs[-2] if len(s.runs) > 1 else None
    if previous is not None and previous.interrupted_by_ts and previous.replaced_by is None:
        previous.replaced_by = task_id
    d.task_id = task_id


def _ended(d: Decision, key: str, report: TaskReport, now: float, limits: Limits) -> None:
    s = d.session
    if s.running is not None and s.running.task_id == report.task_id:
        # Steering messages the run did not take in start the next run; its outcome goes
        # before them in the conversation, as it came before them for the model.
        trigger_user, left = s.running.trigger_user, leftovers(s, s.running, report)
        s.running = None
        record_report(d, report, now, limits, before_ts=left[0].ts if left else None)
        if left:
            s.pending_ts, s.pending_user = left[-1].ts, left[-1].user_id
        after_run(s, report, trigger_user)
        _release_queue(s, limits)
        return
    cancelling = s.cancelling if s.cancelling and s.cancelling.task_id == report.task_id else None
    late = next((c for c in s.late if c.task_id == report.task_id), None)
    if report.stand_in:
        # Restate says the task ended; it may never have run, or its own report may still be
        # on its way: go on as if its cleanup were overdue, and let its report count later.
        if cancelling is not None:
            _overdue(d, limits)
        else:
            if late is not None:
                late.follower = False  # ended: nothing more to wait for
            d.note = "stale_report"
        return
    if cancelling is None and late is None:
        d.note = "stale_report"
        return
    if cancelling is not None:
        s.cancelling = None
    else:
        s.late = [c for c in s.late if c.task_id != report.task_id]
    how = cancelling or late
    assert how is not None
    if how.reason == "stop" and report.outcome == "cancelled":
        # The task cannot tell a stop from an interruption; the agent can.
        report = report.model_copy(update={"outcome": "stopped"})
    run = s.run(report.task_id)
    if run is not None and how.requested_at and report.ended_at:
        run.cancel_latency_ms = round(max(0.0, report.ended_at - how.requested_at) * 1000, 1)
    if not how.forgotten:  # else: reset while it was cleaning up; only the notice is left
        record_report(d, report, now, limits, before_ts=how.by_ts, late=late is not None)
    if report.outcome in ("cancelled", "stopped"):
        taken_over = s.running is not None and report.task_id in s.running.awaiting
        d.effects.append(PostNotice(notice_for(key, how, report, taken_over)))
    _release_queue(s, limits)


def _release_queue(s: Session, limits: Limits) -> None:
    """When nothing runs any more, queued replies join the conversation and start a run."""
    if s.running is None and s.cancelling is None and s.queued:
        trigger = next((t for t in reversed(s.queued) if t.kind == "user"), None)
        merge_queue(s, limits)
        if trigger is not None:
            s.pending_ts, s.pending_user = trigger.ts, trigger.user_id


def _maybe_start(d: Decision, key: str, now: float, limits: Limits) -> None:
    """Start the pending run. A replacement starts at once, before the run it replaces has
    cleaned up: it waits for that run's report itself (`awaiting`), so the reply's model
    request waits for no agent turn; a stop calls the restart off."""
    s = d.session
    if s.pending_ts is None or s.running is not None or s.debounce_open:
        return
    if s.cancelling is not None and s.cancelling.reason != "interrupt":
        return
    unsettled = [s.cancelling] if s.cancelling is not None else []
    unsettled += [c for c in s.late if c.follower]
    trigger_ts, trigger_user = s.pending_ts, s.pending_user
    s.pending_ts = s.pending_user = None
    request = TaskRequest(
        thread_key=key,
        channel_id=s.channel_id,
        thread_ts=s.thread_ts,
        trigger_ts=trigger_ts,
        trigger_user=trigger_user,
        turns=s.turns,
        repo=s.repo,
        model=s.model,
        workspace=s.workspace,
        awaiting=[Awaited(task_id=c.task_id, by_ts=c.by_ts) for c in unsettled],
        steering=s.policy == "steer",
        budget=_budget(s, limits),
    )
    s.running = RunningTask(
        task_id=PENDING,
        started_at=now,
        trigger_ts=trigger_ts,
        trigger_user=trigger_user,
        awaiting=[c.task_id for c in unsettled],
    )
    record = RunRecord(
        task_id=PENDING, trigger_ts=trigger_ts, trigger_user=trigger_user, started_at=now
    )
    s.runs = [*s.runs[-(MAX_RUNS_KEPT - 1) :], record]
    s.tasks_started += 1
    d.effects.append(StartTask(request))


def _budget(s: Session, limits: Limits) -> RunBudget:
    """What the new run may spend: the deployment's limits, the thread's budget with what
    Continue added to it, and what the thread's runs have spent."""
    session = limits.session_tokens
    return RunBudget(
        steps=limits.run_steps,
        tokens=limits.run_tokens,
        session_tokens=session + s.budget_added if session else 0,
        session_spent=s.tokens,
        session_added=s.budget_added if session else 0,
    )
