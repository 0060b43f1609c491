"""A session as `CodingAgent` stores it (one state entry, `SESSION_STATE_KEY`), what its
shared handlers answer, and its derived state, defined once for Python and for SQL.

Readers outside the agent (the bot's `/agent-status`, the dashboard) parse it from the admin
SQL API, so it grows compatibly: new fields get defaults, none is renamed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from common.contract import (
    Answer,
    ApprovalKind,
    ChangeSummary,
    Policy,
    TaskOutcome,
    ToolRecord,
    Turn,
    WorkspaceRef,
)


class RunningTask(BaseModel):
    # Empty between "start it" and Restate naming the invocation (inside one handler).
    task_id: str
    started_at: float
    trigger_ts: str
    trigger_user: str | None = None
    step: str = "starting"
    tokens: int = 0
    status_ts: str | None = None
    # The cut runs this replacement started before their reports reached the agent: it posts
    # the notice of any of them that showed nothing in the thread.
    awaiting: list[str] = []
    # The `steer` policy: the run's open inboxes (awakeable ids, each resolved once, in the
    # order it opened them), the steering messages (their ts: the turns are in the
    # conversation) not yet sent to it, and those sent that it has not said it took in.
    inboxes: list[str] = []
    steering: list[str] = []
    delivered: list[str] = []


CancelReasonKind = Literal["interrupt", "stop"]


class Cancelling(BaseModel):
    """A task being cancelled, until its report arrives or its cleanup is overdue."""

    task_id: str
    reason: CancelReasonKind
    by_user: str | None = None
    by_ts: str | None = None
    trigger_ts: str = ""
    status_ts: str | None = None
    # When the reply that cancelled it reached the bot (the bot's clock).
    requested_at: float | None = None
    # A replacement cut while still waiting for the run before it: the next replacement
    # waits for its report too, until it reaches the agent.
    follower: bool = False
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
    # Model tokens the run used (prompt and completion over its calls; estimated where a
    # server sent no usage), and the tokens its Continues added to the thread's budget.
    tokens: int = 0
    tokens_estimated: bool = False
    budget_added: int = 0
    changes: ChangeSummary | None = None
    # Set on a cancelled run: the run that replaced it, the reply that caused it, and the
    # time from that reply reaching the bot to the run's cleanup being recorded.
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
    # Model tokens the thread's runs have used, and its token budget (0: none).
    tokens: int = 0
    token_budget: int = 0
    workspace: WorkspaceRef | None = None
    # What the thread picked in its first mention (`repo=NAME`, `model=NAME`); None: the
    # deployment's (or the channel's) default.
    repo: str | None = None
    model: str | None = None


SESSION_STATE_KEY = "session"


class Shipping(BaseModel):
    """The thread's branch and pull request, and the ship asked for or under way."""

    branch: str | None = None
    pr_url: str | None = None
    pr_number: int | None = None
    # Ships started so far; the one under way, if any (its number), and one asked for while
    # a run works (who asked), started when the run ends.
    jobs: int = 0
    running: int | None = None
    # The invocation of the ship under way: its requests for approval are answered too.
    task_id: str | None = None
    wanted_by: str | None = None
    # Requests already taken (message or click ts): Slack's retries ship nothing twice.
    seen: list[str] = []
    last_outcome: str | None = None


class ApprovalRecord(BaseModel):
    """The answer to one of a run's requests for approval: the first one counts."""

    awakeable_id: str
    task_id: str
    answer: Answer
    # What was asked (`approval_summary` of the action) and its kind, as the click or the
    # run's timeout brought them; None and empty in records written before they were kept.
    kind: ApprovalKind | None = None
    what: str = ""


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
    # `model=NAME` of the first mention: one of `AGENT_MODELS` (None: `OPENAI_MODEL`).
    model: str | None = None
    # The channel's policy, as the latest message brought it.
    policy: Policy = "interrupt"
    workspace: WorkspaceRef | None = None
    tasks_started: int = 0
    interruptions: int = 0
    stops: int = 0
    last_outcome: TaskOutcome | None = None
    runs: list[RunRecord] = []
    # The newest message the bounds have dropped: one as old is a redelivery, not news.
    dropped_through: str | None = None
    ship: Shipping = Shipping()
    # The latest requests for approval answered (or timed out), so a second click is told.
    approvals: list[ApprovalRecord] = []
    # Model tokens all the thread's runs have used, and the tokens people added to its budget
    # (`SESSION_MAX_TOKENS`) with Continue.
    tokens: int = 0
    budget_added: int = 0

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

    def approval(self, awakeable_id: str) -> ApprovalRecord | None:
        return next((a for a in self.approvals if a.awakeable_id == awakeable_id), None)


def session_status(key: str, session: Session, session_max_tokens: int = 0) -> SessionStatus:
    """`session_max_tokens`: the deployment's `SESSION_MAX_TOKENS` (0: no budget)."""
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
        tokens=session.tokens,
        token_budget=session_max_tokens + session.budget_added if session_max_tokens else 0,
        workspace=session.workspace,
        repo=session.repo,
        model=session.model,
    )


class History(BaseModel):
    """The answer of the shared `CodingAgent.history` handler."""

    thread_key: str
    turns: list[Turn]
