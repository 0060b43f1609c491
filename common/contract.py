"""The wire contract between the bot and the durable services: names, keys and payloads.

Renaming anything here is a breaking change for sessions already stored in Restate.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from common.approval_contract import (
    MAX_APPROVAL_SUMMARY,
    Answer,
    ApprovalAck,
    ApprovalClick,
    ApprovalClosed,
    ApprovalKind,
    ApprovalOutcome,
    ApprovalReason,
    ApprovalRef,
    PendingApproval,
    approval_summary,
)
from common.file_refs import FileRef
from common.thread_keys import parse_thread_key, thread_key

# Defined in their own modules, part of this contract all the same.
__all__ = [
    "MAX_APPROVAL_SUMMARY",
    "Answer",
    "ApprovalAck",
    "ApprovalClick",
    "ApprovalClosed",
    "ApprovalKind",
    "ApprovalOutcome",
    "ApprovalReason",
    "ApprovalRef",
    "FileRef",
    "PendingApproval",
    "approval_summary",
    "parse_thread_key",
    "thread_key",
]

AGENT_SERVICE = "CodingAgent"
TASK_SERVICE = "CodingTask"
AGENT_MESSAGE = "message"
AGENT_TASK_ENDED = "task_ended"
AGENT_TASK_PROGRESS = "progress"
AGENT_TASK_INBOX = "inbox"
AGENT_STOP = "stop"
AGENT_RESET = "reset"
AGENT_TIMER = "timer"
AGENT_SHIP = "ship"
AGENT_APPROVAL = "approval"
AGENT_APPROVAL_CLOSED = "approval_closed"
TASK_RUN = "run"
TASK_NOTICE = "notice"

# The Stop button on a task's status message; its value is the thread key.
STOP_ACTION_ID = "stop_task"
# The Create PR button on an answer that changed files; its value is the thread key.
SHIP_ACTION_ID = "create_pr"
STATUS_SHORTCUT_ID = "agent_status"
# The Approve and Deny buttons of a request for approval; their value is an `ApprovalRef`.
APPROVE_ACTION_ID = "approve_action"
DENY_ACTION_ID = "deny_action"


# What a reply does to a running task, per channel: cancel it and restart with the reply
# (`interrupt`), wait for it to end (`queue`), or join its conversation before its next model
# call (`steer`; a mention of the bot or a leading `!` still interrupts).
Policy = Literal["interrupt", "queue", "steer"]
POLICIES: tuple[Policy, ...] = ("interrupt", "queue", "steer")


def message_idempotency_key(channel_id: str, ts: str) -> str:
    """One key per Slack message, so retries and app_mention/message twins collapse."""
    return f"{channel_id}:{ts}"


class IncomingMessage(BaseModel):
    """A user's Slack message, as the bot forwards it to `CodingAgent.message`."""

    team_id: str
    channel_id: str
    thread_ts: str
    ts: str
    user_id: str
    text: str
    mentions_bot: bool = False
    is_dm: bool = False
    # `repo=NAME` from the mention: the repository a new session works on.
    repo: str | None = None
    # `model=NAME` from the mention: the model (one of `AGENT_MODELS`) a new session uses.
    model: str | None = None
    # Its text-like files, for the session's workspace (their text is in `text`, bounded).
    files: list[FileRef] = []
    policy: Policy = "interrupt"
    debounce_seconds: float = Field(default=0.0, ge=0, le=60)
    received_at: float | None = Field(
        default=None, description="Unix time the bot received the event, for latency figures."
    )


# Under `steer`, a reply starting with this interrupts the running task instead.
INTERRUPT_MARK = "!"


def steers(msg: IncomingMessage) -> bool:
    """Whether a reply steers the running task rather than interrupting it (when one runs:
    the session decides; the bot asks to know what the reply costs)."""
    plain = not msg.mentions_bot and not msg.text.lstrip().startswith(INTERRUPT_MARK)
    return msg.policy == "steer" and plain


TurnKind = Literal["user", "answer", "partial", "error", "dropped"]


class ToolCall(BaseModel):
    """One function call the model asked for (OpenAI's `tool_calls` entry)."""

    id: str
    name: str
    arguments: str = "{}"


class WorkStep(BaseModel):
    """One message of a run's transcript: the model's turn (text and tool calls), a tool's
    result, or a person's message the run took in mid-run (`steer`). Carried into the
    conversation so a later run sees what an earlier one did, in the order it happened."""

    role: Literal["assistant", "tool", "user"]
    text: str = ""
    tool_calls: list[ToolCall] = []
    tool_call_id: str | None = None
    name: str | None = None
    # A tool result that is not real output: the call was cut off by an interruption.
    killed: bool = False
    # On a person's message (`user`): its author, its Slack ts and the files it shared.
    user_id: str | None = None
    ts: str | None = None
    files: list[FileRef] = []


class Turn(BaseModel):
    """One entry of a session's conversation."""

    kind: TurnKind
    text: str
    user_id: str | None = None
    ts: str | None = None
    task_id: str | None = None
    dropped: int = Field(
        default=0, description="On a `dropped` marker: how many turns it stands for."
    )
    # On an answer or a partial: the tool calls and results of the run that wrote it.
    work: list[WorkStep] = []
    # On a partial: a person stopped its run (else a new message interrupted it).
    stopped: bool = False
    # On a person's message: the text-like files it shared (copied into the workspace).
    files: list[FileRef] = []

    def size(self) -> int:
        """Bytes this turn adds to the session (and to the next model request)."""
        return len(self.text.encode()) + sum(
            len(s.text.encode()) + sum(len(c.arguments) for c in s.tool_calls) for s in self.work
        )


class WorkspaceRef(BaseModel):
    """Where a session's workspace comes from, durable so any replica can rebuild it: the
    repository, the commit it started from, and its changes since (a bounded binary patch)."""

    repo: str
    base_commit: str
    patch: str = ""
    # The patch was over its bound and could not be recorded whole (a rebuild loses changes).
    patch_truncated: bool = False
    # The root `AGENTS.md` at the base commit, bounded, read when the workspace was made: the
    # repository's instructions for the system prompt of every run (restate_app/tools/
    # instructions.py).
    instructions: str = ""


class ChangeSummary(BaseModel):
    """What a run's workspace changed against its base commit."""

    files: list[str] = []
    added: int = 0
    removed: int = 0


class MessageAck(BaseModel):
    """What `CodingAgent.message` did with a message."""

    accepted: bool
    reason: str = ""
    task_id: str | None = None
    interrupted_task_id: str | None = None


class Awaited(BaseModel):
    """A cancelled run a replacement continues from. The replacement starts at once and waits
    (bounded) for this run to clean up; its report joins the conversation before the reply
    that interrupted it (`by_ts`)."""

    task_id: str
    by_ts: str | None = None


class RunBudget(BaseModel):
    """What one run may spend before it pauses to ask for more (0: no such limit), fixed when
    the run starts so that a restart with other settings replays it the same: model calls
    (`AGENT_MAX_STEPS`), tokens (`RUN_MAX_TOKENS`), and the thread's token budget
    (`SESSION_MAX_TOKENS` plus what people added with Continue) with what the thread's
    earlier runs spent."""

    steps: int = 0
    tokens: int = 0
    session_tokens: int = 0
    session_spent: int = 0
    # Of `session_tokens`, what Continues in earlier runs added.
    session_added: int = 0


class TaskRequest(BaseModel):
    """The input of one `CodingTask.run`: a snapshot of the conversation and the workspace."""

    thread_key: str
    channel_id: str
    thread_ts: str
    trigger_ts: str
    trigger_user: str | None = None
    turns: list[Turn]
    # The repository new sessions work on (None: the deployment's default) and, after the
    # first run, the workspace every later run continues from.
    repo: str | None = None
    workspace: WorkspaceRef | None = None
    # The model the session picked (`model=NAME`, one of `AGENT_MODELS`; None: the default).
    model: str | None = None
    # The cancelled runs whose reports had not reached the agent when this one started.
    awaiting: list[Awaited] = []
    # The thread's policy is `steer`: the run opens inboxes for steering messages.
    steering: bool = False
    # None (a request from before budgets): the process's settings.
    budget: RunBudget | None = None


class ToolRecord(BaseModel):
    """One tool call of a run, for the run timeline (`/agent-status`, the dashboard)."""

    name: str
    summary: str
    seconds: float = 0.0
    exit_code: int | None = None
    ok: bool = True
    killed: bool = False


class TaskProgress(BaseModel):
    """A task telling its agent what it is doing (sent one-way between steps)."""

    task_id: str
    step: str
    # Model tokens the run has used so far (prompt and completion, summed over its calls);
    # `tokens_estimated`: some call's server sent no usage, its count is estimated.
    tokens: int = 0
    tokens_estimated: bool = False
    # Tokens people added to the thread's budget with Continue in this run, so far.
    budget_added: int = 0
    status_ts: str | None = None
    tools: list[ToolRecord] = []
    # After a step that may have changed files: the workspace as it is now.
    workspace: WorkspaceRef | None = None


class TaskInbox(BaseModel):
    """A run telling its agent (one-way) about its inboxes for steering messages: the ids of
    awakeables it has opened since, and the steering messages (their ts) it has taken into its
    conversation since."""

    task_id: str
    inboxes: list[str] = []
    taken: list[str] = []


class Steering(BaseModel):
    """What the agent resolves a run's inbox with: the steering messages not yet delivered to
    that run, in Slack order."""

    turns: list[Turn]


class StopRequest(BaseModel):
    """Stop the running task without starting a new one."""

    user_id: str
    is_admin: bool = False
    reason: str = "stop"


class StopAck(BaseModel):
    stopped: bool
    reason: str = ""
    task_id: str | None = None


TimerKind = Literal["debounce", "cleanup", "forget_early"]


class Timer(BaseModel):
    """A delayed message the agent sends itself: a debounce window ending, a cancelled task's
    cleanup overdue, or replies without a session to forget."""

    kind: TimerKind
    generation: int = 0
    task_id: str | None = None


TaskOutcome = Literal["completed", "cancelled", "stopped", "failed"]
OUTCOMES: tuple[TaskOutcome, ...] = ("completed", "cancelled", "stopped", "failed")


class TaskReport(BaseModel):
    """How a task ended, sent once, one-way, to `CodingAgent.task_ended`."""

    task_id: str
    outcome: TaskOutcome
    text: str = ""
    tokens: int = 0
    tokens_estimated: bool = False
    budget_added: int = 0
    work: list[WorkStep] = []
    status_ts: str | None = None
    # False when the run was cancelled before its first model call: it leaves no trace.
    model_started: bool = True
    workspace: WorkspaceRef | None = None
    changes: ChangeSummary | None = None
    # What the cancellation killed, for people: "Running `pytest -q` (killed after 3.1 s)".
    killed: list[str] = []
    # Sent by `CodingTask.settle`, not by the task: the task ended, it may never have run.
    stand_in: bool = False
    # When the task recorded it (unix seconds, journaled by the task), where it knows.
    ended_at: float | None = None
    # The request for approval the run was waiting on (or whose answer was not shown yet).
    approval: PendingApproval | None = None
    # The steering messages (their ts) the run took into its conversation: the others it was
    # sent start the next run.
    steered: list[str] = []


class Settle(BaseModel):
    """Ask `CodingTask.settle` to wait for a cancelled task's end on the agent's behalf."""

    task_id: str
    thread_key: str


NoticeKind = Literal["restarting", "stopped", "withdrawn"]


class Notice(BaseModel):
    """What the thread is told about a cancelled run, posted by `CodingTask.notice`.

    The agent sends it: it alone knows why it cancelled (a reply, a stop, by whom), so the
    cancelled task never has to ask, and nothing on the restart path waits for Slack."""

    kind: NoticeKind
    thread_key: str
    channel_id: str
    thread_ts: str
    trigger_ts: str
    status_ts: str | None = None
    by_user: str | None = None
    partial: str = ""
    killed: list[str] = []
    # The cancelled run's request for approval: its message loses its buttons.
    approval: PendingApproval | None = None


class ShipRequest(BaseModel):
    """Someone asked for the thread's work as a branch and a draft pull request ("open a PR"
    in the thread, or the Create PR button)."""

    user_id: str
    # The message or click that asked: one ship per request however often Slack delivers it.
    ts: str


ShipOutcome = Literal["shipped", "unchanged", "denied", "nothing", "failed"]


class ShipJob(BaseModel):
    """The input of `CodingTask.ship`: what to push, where, and what is already known."""

    thread_key: str
    channel_id: str
    thread_ts: str
    job: int
    requested_by: str
    workspace: WorkspaceRef | None = None
    # The thread's opening request (the branch's and the pull request's title) and its
    # latest answer (the body).
    title: str = ""
    answer: str = ""
    # What earlier ships of the thread made: the same branch is pushed again, and the pull
    # request is updated, never opened twice; its link is posted once.
    branch: str | None = None
    pr_url: str | None = None


class ShipReport(BaseModel):
    """How one ship ended, sent one-way to `CodingAgent.shipped`."""

    job: int
    outcome: ShipOutcome
    branch: str | None = None
    commit: str | None = None
    pr_url: str | None = None
    pr_number: int | None = None
    detail: str = ""
