"""The wire contract between the bot and the durable services: names, keys and payloads.

Renaming anything here is a breaking change for sessions already stored in Restate.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

AGENT_SERVICE = "CodingAgent"
TASK_SERVICE = "CodingTask"
AGENT_MESSAGE = "message"
AGENT_TASK_ENDED = "task_ended"
AGENT_TASK_PROGRESS = "progress"
AGENT_STOP = "stop"
AGENT_RESET = "reset"
AGENT_TIMER = "timer"
TASK_RUN = "run"
TASK_NOTICE = "notice"

# The Stop button on a task's status message; its value is the thread key.
STOP_ACTION_ID = "stop_task"
STATUS_SHORTCUT_ID = "agent_status"


def thread_key(team_id: str, channel_id: str, thread_ts: str) -> str:
    """The key of a session: one Slack thread, named by the ts of its root message."""
    for part in (team_id, channel_id, thread_ts):
        if not part or ":" in part or "/" in part:
            raise ValueError(f"not a valid thread key part: {part!r}")
    return f"{team_id}:{channel_id}:{thread_ts}"


def parse_thread_key(key: str) -> tuple[str, str, str]:
    """Split a thread key into (team_id, channel_id, thread_ts)."""
    parts = key.split(":")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not a thread key: {key!r}")
    return parts[0], parts[1], parts[2]


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
    policy: Literal["interrupt", "queue"] = "interrupt"
    debounce_seconds: float = Field(default=0.0, ge=0, le=60)
    received_at: float | None = Field(
        default=None, description="Unix time the bot received the event, for latency figures."
    )


TurnKind = Literal["user", "answer", "partial", "error", "dropped"]


class ToolCall(BaseModel):
    """One function call the model asked for (OpenAI's `tool_calls` entry)."""

    id: str
    name: str
    arguments: str = "{}"


class WorkStep(BaseModel):
    """One message of a run's transcript: the model's turn (text and tool calls) or a tool's
    result. Carried into the conversation so a later run sees what an earlier one did."""

    role: Literal["assistant", "tool"]
    text: str = ""
    tool_calls: list[ToolCall] = []
    tool_call_id: str | None = None
    name: str | None = None
    # A tool result that is not real output: the call was cut off by an interruption.
    killed: bool = False


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
    tokens: int = 0
    status_ts: str | None = None
    tools: list[ToolRecord] = []
    # After a step that may have changed files: the workspace as it is now.
    workspace: WorkspaceRef | None = None


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


class RunningTask(BaseModel):
    # Empty between "start it" and Restate naming the invocation (inside one handler).
    task_id: str
    started_at: float
    trigger_ts: str
    trigger_user: str | None = None
    step: str = "starting"
    tokens: int = 0
    status_ts: str | None = None


CancelReasonKind = Literal["interrupt", "stop"]


class Cancelling(BaseModel):
    """A task being cancelled, until its report arrives or its cleanup is overdue."""

    task_id: str
    reason: CancelReasonKind
    by_user: str | None = None
    by_ts: str | None = None
    trigger_ts: str = ""
    status_ts: str | None = None
    # The session was reset since: the task's report settles it but joins no conversation.
    forgotten: bool = False


class RunRecord(BaseModel):
    """One task run of a session, for the timeline in `/agent-status` and the dashboard."""

    task_id: str
    trigger_ts: str
    trigger_user: str | None = None
    started_at: float
    ended_at: float | None = None
    outcome: TaskOutcome | None = None
    steps: list[str] = []
    tools: list[ToolRecord] = []
    tokens: int = 0
    changes: ChangeSummary | None = None
    # Set on a cancelled run: the run that replaced it, the reply that caused it, and the
    # time from that reply reaching the bot to the cancellation being issued.
    replaced_by: str | None = None
    interrupted_by_ts: str | None = None
    cancel_latency_ms: float | None = None


# The session's derived state: one definition, in Python here and in SQL below.
SessionState = Literal["idle", "working", "cancelling"]
SESSION_STATES: tuple[SessionState, ...] = ("idle", "working", "cancelling")


def derive_state(raw: dict[str, object]) -> SessionState:
    """The state of a session from its stored JSON (what `Session.state` computes)."""
    cancelling = raw.get("cancelling")
    if isinstance(cancelling, dict) and cancelling.get("task_id") is not None:
        return "cancelling"
    running = raw.get("running")
    return "working" if isinstance(running, dict) and running.get("task_id") is not None else "idle"


def state_sql(column: str) -> str:
    """`derive_state` as an expression of Restate's SQL over the state entry's JSON column."""
    return (
        f"CASE WHEN json_get_str({column}, 'cancelling', 'task_id') IS NOT NULL "
        "THEN 'cancelling' "
        f"WHEN json_get_str({column}, 'running', 'task_id') IS NOT NULL THEN 'working' "
        "ELSE 'idle' END"
    )


class SessionStatus(BaseModel):
    """The answer of the shared `CodingAgent.status` handler."""

    thread_key: str
    state: SessionState
    running_task_id: str | None = None
    running_since: float | None = None
    running_step: str | None = None
    running_tokens: int = 0
    turns: int = 0
    tasks_started: int = 0
    interruptions: int = 0
    stops: int = 0
    queued: int = 0
    last_outcome: TaskOutcome | None = None
    started_by: str | None = None
    participants: list[str] = []
    created_at: float | None = None
    updated_at: float | None = None
    last_run: RunRecord | None = None
    workspace: WorkspaceRef | None = None


SESSION_STATE_KEY = "session"


class Session(BaseModel):
    """Everything `CodingAgent` keeps for one thread: one state entry, `SESSION_STATE_KEY`.

    Readers outside the agent (the bot's `/agent-status`, the dashboard) parse it from the
    admin SQL API, so it grows compatibly: new fields get defaults, none is renamed.
    The rules that change it live in `restate_app/session.py`.
    """

    channel_id: str = ""
    thread_ts: str = ""
    started_by: str | None = None
    created_at: float | None = None
    updated_at: float | None = None
    turns: list[Turn] = []
    # Replies held back by the `queue` policy until the running task ends.
    queued: list[Turn] = []
    # Replies that arrived before the mention that starts the session (Slack reorders).
    early: list[Turn] = []
    running: RunningTask | None = None
    cancelling: Cancelling | None = None
    # Tasks whose cleanup was overdue: the replacement started without them; their late
    # report still joins the conversation (and gets its notice).
    late: list[Cancelling] = []
    # A run wanted as soon as nothing runs and no debounce window is open: its trigger.
    pending_ts: str | None = None
    pending_user: str | None = None
    debounce_generation: int = 0
    debounce_open: bool = False
    repo: str | None = None
    workspace: WorkspaceRef | None = None
    tasks_started: int = 0
    interruptions: int = 0
    stops: int = 0
    last_outcome: TaskOutcome | None = None
    runs: list[RunRecord] = []

    @property
    def state(self) -> SessionState:
        return derive_state(self.model_dump(include={"cancelling", "running"}))

    @property
    def started(self) -> bool:
        return self.created_at is not None

    def participants(self) -> list[str]:
        return sorted({t.user_id for t in self.turns if t.kind == "user" and t.user_id})

    def run(self, task_id: str) -> RunRecord | None:
        return next((r for r in reversed(self.runs) if r.task_id == task_id), None)


def session_status(key: str, session: Session) -> SessionStatus:
    running = session.running
    return SessionStatus(
        thread_key=key,
        state=session.state,
        running_task_id=running.task_id
        if running
        else (session.cancelling.task_id if session.cancelling else None),
        running_since=running.started_at if running else None,
        running_step=running.step if running else None,
        running_tokens=running.tokens if running else 0,
        turns=len(session.turns),
        tasks_started=session.tasks_started,
        interruptions=session.interruptions,
        stops=session.stops,
        queued=len(session.queued),
        last_outcome=session.last_outcome,
        started_by=session.started_by,
        participants=session.participants(),
        created_at=session.created_at,
        updated_at=session.updated_at,
        last_run=session.runs[-1] if session.runs else None,
        workspace=session.workspace,
    )


class History(BaseModel):
    """The answer of the shared `CodingAgent.history` handler."""

    thread_key: str
    turns: list[Turn]
