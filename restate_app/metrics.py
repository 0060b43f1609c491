"""Prometheus metrics of the durable services, served on `GET /metrics` by the ASGI front.

Handler code re-runs on replay, so every recorder here skips replays: a retried or resumed
invocation is counted once. Recorders never raise; metrics must not fail a task.
"""

from __future__ import annotations

import time

import aiohttp
import restate
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from slack_sdk.errors import SlackApiError

from common.contract import TaskOutcome
from common.session_state import RunRecord
from restate_app.asgi import PlainResponse

REGISTRY = CollectorRegistry(auto_describe=True)

TASKS_STARTED = Counter(
    "agent_tasks_started", "Coding tasks started by the agent.", registry=REGISTRY
)
TASKS_ENDED = Counter(
    "agent_tasks_ended",
    "Coding tasks ended, by outcome (completed, cancelled, stopped, failed).",
    ["outcome"],
    registry=REGISTRY,
)
TASK_DURATION = Histogram(
    "agent_task_duration_seconds",
    "Time from a task's start to its end, by outcome.",
    ["outcome"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
    registry=REGISTRY,
)
INTERRUPTION_LATENCY = Histogram(
    "agent_interruption_latency_seconds",
    "Time from a reply reaching the bot to the running task being cancelled.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
MODEL_TOKENS = Counter(
    "agent_model_tokens",
    "Model output streamed, in content chunks (about one token each).",
    registry=REGISTRY,
)
FIRST_TOKEN = Histogram(
    "agent_model_first_token_seconds",
    "Time from opening a model stream to its first content chunk.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
    registry=REGISTRY,
)
SLACK_API_ERRORS = Counter(
    "agent_slack_api_errors",
    "Slack Web API calls that failed, by method and error code.",
    ["method", "code"],
    registry=REGISTRY,
)
SLACK_LIMITER = Counter(
    "agent_slack_limiter_events",
    "Slack calls the rate limiter held back: progress updates skipped, background calls "
    "dropped after waiting too long, and 429s Slack answered (each waited out), by method.",
    ["event", "method"],
    registry=REGISTRY,
)
MODEL_SLOTS = Gauge(
    "agent_model_slots",
    "Model calls of this process by state: in_use (stream open), waiting (for a free slot, "
    "MODEL_MAX_CONCURRENCY).",
    ["state"],
    registry=REGISTRY,
)
MODEL_REFUSED = Counter(
    "agent_model_calls_refused",
    "Model calls refused because no slot came free within MODEL_QUEUE_SECONDS.",
    registry=REGISTRY,
)

OUTCOMES: tuple[TaskOutcome, ...] = ("completed", "cancelled", "stopped", "failed")
for _outcome in OUTCOMES:  # zero series exist from the start, so rates work from the first scrape
    TASKS_ENDED.labels(outcome=_outcome)
for _state in ("in_use", "waiting"):
    MODEL_SLOTS.labels(state=_state)


def _replaying() -> bool:
    return bool(restate.server_context.restate_context_is_replaying.get())


def task_started() -> None:
    """The agent started a task."""
    if not _replaying():
        TASKS_STARTED.inc()


def run_ended(run: RunRecord) -> None:
    """A run got its outcome: count it, and time it and its interruption when known."""
    if _replaying() or run.outcome is None:
        return
    TASKS_ENDED.labels(outcome=run.outcome).inc()
    if run.ended_at is not None and run.ended_at >= run.started_at:
        TASK_DURATION.labels(outcome=run.outcome).observe(run.ended_at - run.started_at)
    if run.cancel_latency_ms is not None and run.cancel_latency_ms >= 0:
        INTERRUPTION_LATENCY.observe(run.cancel_latency_ms / 1e3)


def slack_api_error(method: str, exc: BaseException) -> None:
    """A failed Slack Web API call, labelled with Slack's error code or the transport's failure."""
    SLACK_API_ERRORS.labels(method=method[:64], code=slack_error_code(exc)).inc()


def slack_limiter_event(event: str, method: str) -> None:
    """The limiter skipped or dropped a call, or Slack answered one with 429."""
    SLACK_LIMITER.labels(event=event, method=method[:64]).inc()


def model_slots_event(event: str, in_use: int, waiting: int) -> None:
    """The model call limiter changed state (`restate_app.model_slots.Observe`)."""
    MODEL_SLOTS.labels(state="in_use").set(in_use)
    MODEL_SLOTS.labels(state="waiting").set(waiting)
    if event == "refused":
        MODEL_REFUSED.inc()


def slack_error_code(exc: BaseException) -> str:
    """Slack's `error` field, or a short name for a transport failure."""
    if isinstance(exc, SlackApiError):
        error = exc.response.get("error") if exc.response is not None else None
        return str(error or f"http_{getattr(exc.response, 'status_code', 'unknown')}")[:64]
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientError):
        return "connection_error"
    return type(exc).__name__[:64]


class StreamMeter:
    """Follows one model stream: counts its chunks and times its first one."""

    def __init__(self) -> None:
        self._opened = time.monotonic()
        self._first = True

    def chunk(self) -> None:
        """One content chunk arrived."""
        MODEL_TOKENS.inc()
        if self._first:
            self._first = False
            FIRST_TOKEN.observe(time.monotonic() - self._opened)


async def metrics_route() -> PlainResponse:
    """`GET /metrics` in Prometheus' text format."""
    return PlainResponse(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
