"""Who may answer a run's request for approval, and which answer counts. Pure, like the rules
in `restate_app/session.py` that call it.

The thread's participants (people who wrote in it) and admins may answer; the first answer
counts, for a request of the run that is running now (or of the ship under way); a run whose
wait ran out sends that too, and it counts only if nobody answered first. Whatever counts
completes the run's awakeable, once, so the run and the thread always agree on the answer.
"""

from __future__ import annotations

from common.contract import Answer, ApprovalClick, ApprovalClosed
from common.session_state import ApprovalRecord, Session
from restate_app.session_events import Decision, ResolveApproval

# Answers kept per session, so a second click on a recent request is told it was answered.
MAX_APPROVALS_KEPT = 20


def answer(d: Decision, click: ApprovalClick, now: float) -> None:
    s = d.session
    ref = click.ref
    if not (click.is_admin or click.user_id in s.participants()):
        d.note = "not_allowed"
    elif s.approval(ref.awakeable_id) is not None:
        d.note = "answered"
    elif not _waiting(s, ref.task_id):
        # The run that asked was stopped, interrupted or is over: nothing waits any more.
        d.note = "not_waiting"
    else:
        given = Answer(
            outcome="approved" if click.approved else "denied", by_user=click.user_id, at=now
        )
        record = ApprovalRecord(
            awakeable_id=ref.awakeable_id,
            task_id=ref.task_id,
            answer=given,
            kind=ref.kind,
            what=ref.what,
        )
        _record(s, d, record)
        d.note = "accepted"


def wait_ended(d: Decision, closed: ApprovalClosed, now: float) -> None:
    s = d.session
    if s.approval(closed.awakeable_id) is not None:
        d.note = "answered"  # an answer came first: it already woke the run
        return
    timed_out = closed.answer.model_copy(update={"at": closed.answer.at or now})
    record = ApprovalRecord(
        awakeable_id=closed.awakeable_id,
        task_id=closed.task_id,
        answer=timed_out,
        kind=closed.kind,
        what=closed.what,
    )
    _record(s, d, record)
    d.note = "approval_timed_out"


def _record(s: Session, d: Decision, record: ApprovalRecord) -> None:
    s.approvals = [*s.approvals[-(MAX_APPROVALS_KEPT - 1) :], record]
    d.effects.append(ResolveApproval(record.awakeable_id, record.answer))


def _waiting(s: Session, task_id: str) -> bool:
    """Whether `task_id` is the running task, or the ship under way: they may be waiting."""
    running = s.running is not None and s.running.task_id == task_id
    return running or (s.ship.running is not None and s.ship.task_id == task_id)
