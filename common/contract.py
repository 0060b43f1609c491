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
TASK_RUN = "run"


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
    received_at: float | None = Field(
        default=None, description="Unix time the bot received the event, for latency figures."
    )


TurnKind = Literal["user", "answer", "partial", "error"]


class Turn(BaseModel):
    """One entry of a session's conversation."""

    kind: TurnKind
    text: str
    user_id: str | None = None
    ts: str | None = None
    task_id: str | None = None


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
    turns: list[Turn]


TaskOutcome = Literal["completed", "cancelled", "failed"]


class TaskReport(BaseModel):
    """How a task ended, reported to `CodingAgent.task_ended` and returned to an attach."""

    task_id: str
    outcome: TaskOutcome
    text: str = ""


class RunningTask(BaseModel):
    task_id: str
    started_at: float
    trigger_ts: str


SessionState = Literal["idle", "working"]


class SessionStatus(BaseModel):
    """The answer of the shared `CodingAgent.status` handler."""

    thread_key: str
    state: SessionState
    running_task_id: str | None = None
    running_since: float | None = None
    turns: int = 0
    tasks_started: int = 0
    interruptions: int = 0
    last_outcome: TaskOutcome | None = None


class History(BaseModel):
    """The answer of the shared `CodingAgent.history` handler."""

    thread_key: str
    turns: list[Turn]
