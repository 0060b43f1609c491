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
AGENT_CANCEL_REASON = "cancel_reason"
AGENT_STOP = "stop"
AGENT_RESET = "reset"
AGENT_KICK = "kick"
AGENT_FORGET_EARLY = "forget_early"
TASK_RUN = "run"

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
    policy: Literal["interrupt", "queue"] = "interrupt"
    debounce_seconds: float = Field(default=0.0, ge=0, le=60)
    received_at: float | None = Field(
        default=None, description="Unix time the bot received the event, for latency figures."
    )


TurnKind = Literal["user", "answer", "partial", "error", "dropped"]


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


class MessageAck(BaseModel):
    """What `CodingAgent.message` did with a message."""

    accepted: bool
    reason: str = ""
    task_id: str | None = None
    interrupted_task_id: str | None = None


class TaskRequest(BaseModel):
    """The input of one `CodingTask.run`: a snapshot of the conversation."""

    thread_key: str
    channel_id: str
    thread_ts: str
    trigger_ts: str
    trigger_user: str | None = None
    turns: list[Turn]


class TaskProgress(BaseModel):
    """A task telling its agent which step it is in (sent one-way between steps)."""

    task_id: str
    step: str
    tokens: int = 0


class CancelReason(BaseModel):
    """Why the agent cancelled a task: a new message (restart) or a stop (no restart)."""

    reason: Literal["interrupt", "stop"] = "interrupt"
    by_user: str | None = None


class StopRequest(BaseModel):
    """Stop the running task without starting a new one."""

    user_id: str
    is_admin: bool = False
    reason: str = "stop"


class StopAck(BaseModel):
    stopped: bool
    reason: str = ""
    task_id: str | None = None


class Kick(BaseModel):
    """The delayed self-message that ends a debounce window."""

    generation: int
    trigger_ts: str
    trigger_user: str | None = None


TaskOutcome = Literal["completed", "cancelled", "stopped", "failed"]


class TaskReport(BaseModel):
    """How a task ended, reported to `CodingAgent.task_ended` and returned to an attach."""

    task_id: str
    outcome: TaskOutcome
    text: str = ""
    tokens: int = 0


class RunningTask(BaseModel):
    task_id: str
    started_at: float
    trigger_ts: str
    step: str = "starting"
    tokens: int = 0


class RunRecord(BaseModel):
    """One task run of a session, for the timeline in `/agent-status` and the dashboard."""

    task_id: str
    trigger_ts: str
    trigger_user: str | None = None
    started_at: float
    ended_at: float | None = None
    outcome: TaskOutcome | None = None
    steps: list[str] = []
    tokens: int = 0
    # Set on a cancelled run: the run that replaced it, the reply that caused it, and the
    # time from that reply reaching the bot to the cancellation being issued.
    replaced_by: str | None = None
    interrupted_by_ts: str | None = None
    cancel_latency_ms: float | None = None


SessionState = Literal["idle", "working", "cancelling"]


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


SESSION_STATE_KEY = "session"


class Session(BaseModel):
    """Everything `CodingAgent` keeps for one thread: one state entry, `SESSION_STATE_KEY`.

    Readers outside the agent (the bot's `/agent-status`, the dashboard) parse it from the
    admin SQL API, so it grows compatibly: new fields get defaults, none is renamed.
    """

    channel_id: str = ""
    thread_ts: str = ""
    started_by: str | None = None
    created_at: float | None = None
    updated_at: float | None = None
    turns: list[Turn] = []
    queued: list[Turn] = []
    running: RunningTask | None = None
    # Set while an interruption or stop waits for the old task's cleanup.
    cancelling: str | None = None
    # Why each task still cleaning up was cancelled, by task id, until its report arrives.
    cancel_reasons: dict[str, CancelReason] = {}
    # Tasks whose cleanup did not finish within the bounded wait: their late report still counts.
    awaiting: list[str] = []
    debounce_generation: int = 0
    tasks_started: int = 0
    interruptions: int = 0
    stops: int = 0
    last_outcome: TaskOutcome | None = None
    runs: list[RunRecord] = []

    @property
    def state(self) -> SessionState:
        if self.cancelling:
            return "cancelling"
        return "working" if self.running else "idle"

    def participants(self) -> list[str]:
        return sorted({t.user_id for t in self.turns if t.kind == "user" and t.user_id})

    def run(self, task_id: str) -> RunRecord | None:
        return next((r for r in reversed(self.runs) if r.task_id == task_id), None)


def session_status(key: str, session: Session) -> SessionStatus:
    running = session.running
    return SessionStatus(
        thread_key=key,
        state=session.state,
        running_task_id=running.task_id if running else session.cancelling,
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
    )


class History(BaseModel):
    """The answer of the shared `CodingAgent.history` handler."""

    thread_key: str
    turns: list[Turn]
