"""Prometheus metrics of the bot: Slack requests received by type, Slack API errors, dashboard
actions. Served on `GET /metrics` of the dashboard listener, never on the public Slack endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_RECEIVED = Counter(
    "bot_slack_events_received",
    "Slack requests that passed verification, by event type (or request kind).",
    ["type"],
    registry=REGISTRY,
)
SLACK_API_ERRORS = Counter(
    "bot_slack_api_errors",
    "Slack Web API calls made by the bot that failed, by method and error code.",
    ["method", "code"],
    registry=REGISTRY,
)
DASHBOARD_ACTIONS = Counter(
    "bot_dashboard_actions",
    "Operator actions taken on the dashboard, by action and result.",
    ["action", "result"],
    registry=REGISTRY,
)

RUNS_REFUSED = Counter(
    "bot_runs_refused",
    "Messages not passed on to the agent: over the user's or the channel's rate of new runs.",
    ["scope"],
    registry=REGISTRY,
)
BACKGROUND_DROPPED = Counter(
    "bot_background_dropped",
    "Work after the ack the bot dropped: the queue was full, or a job waited too long.",
    ["reason"],
    registry=REGISTRY,
)

_LABEL = re.compile(r"[^a-z0-9_.]")


def request_kind(body: dict[str, Any]) -> str:
    """A bounded label for a Slack request: the event type, or what kind of request it is."""
    kind: object = body.get("type")
    if kind == "event_callback" and isinstance(body.get("event"), dict):
        kind = body["event"].get("type")
    elif body.get("command"):
        kind = "slash_command"
    return _LABEL.sub("_", str(kind or "unknown").lower())[:40]


async def count_slack_request(body: dict[str, Any], next_: Callable[[], Awaitable[None]]) -> None:
    """Bolt middleware (it runs after signature verification): count Slack requests by type."""
    EVENTS_RECEIVED.labels(type=request_kind(body)).inc()
    await next_()


def slack_api_error(method: str, code: str) -> None:
    """A Slack Web API call made by the bot failed (Slack's error code, or a transport name)."""
    SLACK_API_ERRORS.labels(method=method[:64], code=code[:64]).inc()


def dashboard_action(action: str, ok: bool) -> None:
    """An operator action on the dashboard, and whether Restate took it."""
    DASHBOARD_ACTIONS.labels(action=action, result="ok" if ok else "error").inc()


def run_refused(scope: str) -> None:
    """A message went over the rate of new runs of its user or channel."""
    RUNS_REFUSED.labels(scope=scope).inc()


def background_dropped(reason: str) -> None:
    """Work after the ack was dropped (`full`: no room in the queue; `waited`: too long)."""
    BACKGROUND_DROPPED.labels(reason=reason).inc()
