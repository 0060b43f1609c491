"""The session machine's vocabulary: what can happen to a session (events), what the machine
asks its handlers to do (effects), the decision it returns, and the bounds it keeps.

The rules that connect them are `restate_app/session.py`'s `decide`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from common.contract import (
    Answer,
    ApprovalClick,
    ApprovalClosed,
    IncomingMessage,
    Notice,
    ShipJob,
    ShipReport,
    ShipRequest,
    TaskInbox,
    TaskProgress,
    TaskReport,
    TaskRequest,
    Timer,
    Turn,
)
from common.session_state import RunRecord, Session


@dataclass(frozen=True)
class Limits:
    """Bounds on what a session keeps; the oldest entries go first, counted by one marker."""

    max_turns: int = 200
    max_bytes: int = 256_000
    max_queued: int = 50
    max_turn_bytes: int = 64_000
    cleanup_wait: timedelta = timedelta(seconds=10)
    # What a run may spend before it asks for more (0: no limit): model calls and tokens per
    # run, tokens per thread (`restate_app/budgets.py`).
    run_steps: int = 30
    run_tokens: int = 0
    session_tokens: int = 0


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True)
class UserMessage:
    msg: IncomingMessage


@dataclass(frozen=True)
class TimerFired:
    timer: Timer


@dataclass(frozen=True)
class StopRequested:
    user_id: str
    is_admin: bool = False
    reset: bool = False


@dataclass(frozen=True)
class TaskStarted:
    """Restate named the invocation of the task the last `StartTask` asked for."""

    task_id: str


@dataclass(frozen=True)
class TaskEnded:
    report: TaskReport


@dataclass(frozen=True)
class ProgressReported:
    progress: TaskProgress


@dataclass(frozen=True)
class ShipRequested:
    request: ShipRequest


@dataclass(frozen=True)
class ShipStarted:
    """Restate named the invocation of ship `job`."""

    job: int
    task_id: str


@dataclass(frozen=True)
class Shipped:
    report: ShipReport


@dataclass(frozen=True)
class ApprovalAnswered:
    """Someone pressed Approve or Deny."""

    click: ApprovalClick


@dataclass(frozen=True)
class ApprovalWaitEnded:
    """A run waited for an answer as long as it may."""

    closed: ApprovalClosed


@dataclass(frozen=True)
class InboxOpened:
    """The running task opened inboxes for steering messages, or took some in."""

    inbox: TaskInbox


Event = (
    UserMessage
    | TimerFired
    | StopRequested
    | TaskStarted
    | TaskEnded
    | ProgressReported
    | ShipRequested
    | ShipStarted
    | Shipped
    | ApprovalAnswered
    | ApprovalWaitEnded
    | InboxOpened
)

# ----------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class StartTask:
    """Send `CodingTask.run` with this request, then feed back `TaskStarted`."""

    request: TaskRequest


@dataclass(frozen=True)
class CancelTask:
    task_id: str


@dataclass(frozen=True)
class Schedule:
    """Send `CodingAgent.timer` to this session after `delay`."""

    timer: Timer
    delay: timedelta


@dataclass(frozen=True)
class PostNotice:
    """Send `CodingTask.notice`: tell the thread how a cancelled run ended."""

    notice: Notice


@dataclass(frozen=True)
class RunEnded:
    """A run record is final (for metrics)."""

    run: RunRecord


@dataclass(frozen=True)
class StartShip:
    """Send `CodingTask.ship` with this job: push the branch, open or update the PR."""

    job: ShipJob


@dataclass(frozen=True)
class ResolveApproval:
    """Complete the run's awakeable with the answer (the first one: it wakes the run)."""

    awakeable_id: str
    answer: Answer


@dataclass(frozen=True)
class DeliverSteering:
    """Resolve the running task's inbox (an awakeable) with these steering messages."""

    inbox: str
    turns: list[Turn]


Effect = (
    StartTask
    | CancelTask
    | Schedule
    | PostNotice
    | RunEnded
    | StartShip
    | ResolveApproval
    | DeliverSteering
)


@dataclass
class Decision:
    session: Session
    effects: list[Effect] = field(default_factory=list)
    # What happened, in a word, for the handler's answer and the log.
    note: str = ""
    # The task this event started (named by Restate), and the one it cancelled.
    task_id: str | None = None
    cancelled: str | None = None
