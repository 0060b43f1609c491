"""Cutting a session's work: a running task cancelled by an interruption or a stop, and Stop
and reset themselves (who may, what a stop takes with it, what a reset forgets)."""

from __future__ import annotations

from common.contract import Timer
from common.session_state import Cancelling, CancelReasonKind, Session, Shipping
from restate_app.session_events import CancelTask, Decision, Limits, Schedule
from restate_app.session_turns import merge_queue

# Cut runs and run records a session keeps.
MAX_RUNS_KEPT = 50


def cancel(
    d: Decision,
    reason: CancelReasonKind,
    by: str | None,
    by_ts: str | None,
    limits: Limits,
    at: float | None = None,
) -> None:
    """Cut the running task: `interrupt` (a reply restarts) or `stop`; its cleanup is
    awaited for `limits.cleanup_wait`, then the session goes on without it."""
    s = d.session
    assert s.running is not None
    running = s.running
    s.running = None
    record = Cancelling(
        task_id=running.task_id,
        reason=reason,
        by_user=by,
        by_ts=by_ts,
        trigger_ts=running.trigger_ts,
        status_ts=running.status_ts,
        requested_at=at,
    )
    if s.cancelling is None:
        s.cancelling = record
    else:
        # A replacement cut while the run before it still cleans up: it goes along with that
        # run, and the next replacement continues from both reports.
        s.late = [*s.late[-(MAX_RUNS_KEPT - 1) :], record.model_copy(update={"follower": True})]
        if reason == "stop":
            s.cancelling.reason, s.cancelling.by_user = "stop", by
    if reason == "interrupt":
        s.interruptions += 1
    d.effects.append(CancelTask(running.task_id))
    timer = Timer(kind="cleanup", task_id=running.task_id)
    d.effects.append(Schedule(timer, limits.cleanup_wait))


def stop(d: Decision, user: str, is_admin: bool, reset: bool, limits: Limits) -> None:
    """Stop (and with `reset`, forget) the session's work, for its participants or an admin."""
    s = d.session
    if not s.started:
        d.note = "no_session"
        return
    if not is_admin and user not in s.participants():
        d.note = "not_allowed"
        return
    # A pending run, a debounce window and queued turns all belong to the work being stopped.
    s.pending_ts = s.pending_user = None
    s.debounce_open = False
    s.debounce_generation += 1
    merge_queue(s, limits)
    if s.running is not None:
        d.cancelled = s.running.task_id
        cancel(d, "stop", user, None, limits)
        s.stops += 1
        d.note = "stopped"
    elif s.cancelling is not None:
        # An interruption's restart is called off: its notice now says stopped.
        s.cancelling.reason, s.cancelling.by_user = "stop", user
        d.cancelled = s.cancelling.task_id
        s.stops += 1
        d.note = "stopped"
    else:
        d.note = "nothing_running"
    if reset:
        # Forget the conversation and the workspace; keep only what settles the stopped task,
        # marked so that its report never joins a session started after the reset.
        forget = {"forgotten": True}
        d.session = Session(
            cancelling=s.cancelling.model_copy(update=forget) if s.cancelling else None,
            late=[c.model_copy(update=forget) for c in s.late],
            # Ship jobs keep their numbers: one under way still reports to this session.
            ship=Shipping(jobs=s.ship.jobs, running=s.ship.running),
        )
