"""The SQL the dashboard runs on Restate's admin API: every query bounded by a LIMIT or an
aggregate, every value a checked literal.

Sessions are the `CodingAgent` object's one state entry, `session` (JSON), read with the JSON
functions Restate's SQL engine offers; task invocations come from `sys_invocation`.
"""

# Restate's /query takes no bound parameters; every value below is a checked literal or an int.
# ruff: noqa: S608

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.restate_sql import like_contains, literal
from common.contract import AGENT_SERVICE, TASK_SERVICE
from common.session_state import SESSION_STATE_KEY, SESSION_STATES, state_sql

STATES = SESSION_STATES
MAX_PAGE = 100
# Runs of sessions active within this many seconds feed the overview's counts and percentiles.
DAY = 86_400
_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Restate refuses a whole query over a malformed invocation id, so only well-formed ones go in.
_INVOCATION_ID = re.compile(r"^inv_[0-9A-Za-z]{20,64}$")

V = "value_utf8"
SESSIONS = (
    f"FROM state WHERE service_name = {literal(AGENT_SERVICE)} "
    f"AND key = {literal(SESSION_STATE_KEY)}"
)
STATE_EXPR = state_sql(V)
ACTIVITY_EXPR = f"json_get_float({V}, 'updated_at')"


def valid_id(value: str) -> bool:
    """A Slack id, ts or Restate id: letters, digits, dots, dashes and underscores only."""
    return bool(_ID.match(value))


@dataclass(frozen=True)
class SessionFilter:
    """What the sessions list asks for; build it with `SessionFilter.parse`."""

    state: str | None = None
    channel: str | None = None
    text: str | None = None
    order: Literal["asc", "desc"] = "desc"
    page: int = 1
    per_page: int = 25

    @classmethod
    def parse(cls, query: dict[str, str]) -> SessionFilter:
        """Read the list's query string; unknown or malformed values are ignored, not errors."""
        state = query.get("state") or None
        channel = query.get("channel") or None
        text = (query.get("q") or "").strip()[:200] or None
        return cls(
            state=state if state in STATES else None,
            channel=channel if channel and valid_id(channel) else None,
            text=text,
            order="asc" if query.get("order") == "asc" else "desc",
            page=max(1, _int(query.get("page"), 1)),
            per_page=min(MAX_PAGE, max(1, _int(query.get("per_page"), 25))),
        )

    def where(self) -> str:
        parts = [SESSIONS]
        if self.state:
            parts.append(f"AND {STATE_EXPR} = {literal(self.state)}")
        if self.channel:
            parts.append(
                f"AND service_key LIKE {like_contains(':' + self.channel + ':')} ESCAPE '\\'"
            )
        if self.text:
            parts.append(f"AND {V} ILIKE {like_contains(self.text)} ESCAPE '\\'")
        return " ".join(parts)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def sessions_page(f: SessionFilter) -> str:
    """One page of session summaries, most recently active first (or last)."""
    return (
        "SELECT service_key AS key, "
        f"json_get_str({V}, 'channel_id') AS channel_id, "
        f"json_get_str({V}, 'thread_ts') AS thread_ts, "
        f"COALESCE(json_get_str({V}, 'started_by'), json_get_str({V}, 'turns', 0, 'user_id')) "
        "AS started_by, "
        f"substr(json_get_str({V}, 'turns', 0, 'text'), 1, 80) AS title, "
        f"{STATE_EXPR} AS state, "
        f"json_length({V}, 'turns') AS turns, "
        f"json_get_int({V}, 'tasks_started') AS tasks_started, "
        f"json_get_int({V}, 'interruptions') AS interruptions, "
        f"json_get_int({V}, 'stops') AS stops, "
        f"json_get_str({V}, 'last_outcome') AS last_outcome, "
        f"json_get_float({V}, 'created_at') AS created_at, "
        f"{ACTIVITY_EXPR} AS updated_at "
        f"{f.where()} ORDER BY updated_at {f.order.upper()} NULLS LAST, key "
        f"LIMIT {f.per_page} OFFSET {(f.page - 1) * f.per_page}"
    )


def sessions_count(f: SessionFilter) -> str:
    return f"SELECT count(*) AS n {f.where()}"


def channels() -> str:
    """The channels that have sessions (from the key, so no JSON is parsed), busiest first."""
    return (
        "SELECT split_part(service_key, ':', 2) AS channel, count(*) AS n "
        f"{SESSIONS} GROUP BY channel ORDER BY n DESC, channel LIMIT 200"
    )


def session_state(key: str) -> str:
    return f"SELECT {V} AS value {SESSIONS} AND service_key = {literal(key)} LIMIT 1"


def session_invocations(key: str) -> str:
    """The agent's own invocations for one session, newest first."""
    return (
        "SELECT id, target_handler_name AS handler, status, "
        "CAST(created_at AS BIGINT) AS created_ms, CAST(completed_at AS BIGINT) AS completed_ms "
        f"FROM sys_invocation WHERE target_service_name = {literal(AGENT_SERVICE)} "
        f"AND target_service_key = {literal(key)} ORDER BY created_at DESC LIMIT 50"
    )


def task_invocations(ids: list[str]) -> str | None:
    """Restate's view of a session's task runs (status, retries), by invocation id."""
    ids = [i for i in ids if _INVOCATION_ID.match(i)][:60]
    if not ids:
        return None
    return (
        "SELECT id, status, retry_count, CAST(created_at AS BIGINT) AS created_ms, "
        "CAST(completed_at AS BIGINT) AS completed_ms FROM sys_invocation "
        f"WHERE target_service_name = {literal(TASK_SERVICE)} "
        f"AND id IN ({', '.join(literal(i) for i in ids)})"
    )


def session_totals() -> str:
    return (
        "SELECT count(*) AS sessions, "
        f"sum(CASE WHEN {STATE_EXPR} = 'idle' THEN 0 ELSE 1 END) AS active "
        f"{SESSIONS}"
    )


def tasks_running() -> str:
    """Task invocations Restate has not completed (running, suspended, backing off, ...)."""
    return (
        "SELECT count(*) AS n FROM sys_invocation "
        f"WHERE target_service_name = {literal(TASK_SERVICE)} AND status <> 'completed'"
    )


def _recent_runs(since: float) -> str:
    """Every run record of the sessions active since `since`, one JSON value a row."""
    return (
        f"SELECT unnest(json_get_array({V}, 'runs')) AS r {SESSIONS} "
        f"AND {ACTIVITY_EXPR} > {since:.3f}"
    )


def _runs_since(since: float, columns: str) -> str:
    return (
        f"SELECT {columns} FROM (SELECT json_get_str(r, 'outcome') AS outcome, "
        "json_get_float(r, 'ended_at') AS ended, "
        "json_get_float(r, 'ended_at') - json_get_float(r, 'started_at') AS duration, "
        "json_get_float(r, 'cancel_latency_ms') AS latency "
        f"FROM ({_recent_runs(since)})) WHERE ended > {since:.3f} AND outcome IS NOT NULL"
    )


def run_counts(now: float) -> str:
    """Runs ended in the last hour and in the last day, by outcome."""
    columns = f"outcome, sum(CASE WHEN ended > {now - 3600:.3f} THEN 1 ELSE 0 END) AS hour, "
    return _runs_since(now - DAY, columns + "count(*) AS day") + " GROUP BY outcome"


def run_percentiles(now: float) -> str:
    """Task duration (seconds) and interruption latency (ms) percentiles over the last day."""
    columns = ", ".join(
        f"approx_percentile_cont({name}, {q}) AS {name}_p{int(q * 100)}"
        for name in ("duration", "latency")
        for q in (0.5, 0.95)
    )
    return _runs_since(now - DAY, columns)


def first_run_end(now: float) -> str:
    """When the oldest run that ended in the last day ended (`first`), where the chart's
    fitted span starts."""
    return _runs_since(now - DAY, "min(ended) AS first")


def run_timeline(now: float, window: int, bucket: int) -> str:
    """Runs ended within `window` seconds, counted by `bucket`-second slot and outcome."""
    since = now - window
    return (
        f"SELECT CAST(floor(ended / {bucket}) AS BIGINT) * {bucket} AS slot, outcome, "
        "count(*) AS n FROM (SELECT json_get_str(r, 'outcome') AS outcome, "
        f"json_get_float(r, 'ended_at') AS ended FROM ({_recent_runs(since)})) "
        f"WHERE ended > {since:.3f} AND outcome IS NOT NULL GROUP BY slot, outcome ORDER BY slot"
    )
