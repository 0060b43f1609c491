"""What the dashboard knows, read from Restate (admin SQL, the agent's shared handlers) and the
services' own metrics; no second database. The overview is cached for a moment, so open tabs
do not multiply the load on Restate."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from bot.dashboard import app_metrics, chart, queries, views
from bot.forwarder import ForwardError, RestateForwarder
from bot.names import SlackNames
from bot.restate_sql import RestateError, RestateSql
from common.contract import AGENT_RESET, AGENT_STOP, OUTCOMES, StopRequest

log = structlog.get_logger(__name__)

OVERVIEW_TTL_SECONDS = 2.0


@dataclass
class _Cached:
    at: float = 0.0
    value: dict[str, Any] = field(default_factory=dict)


class DashboardData:
    """Queries behind every page and action of the dashboard."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        sql: RestateSql,
        ingress_url: str,
        links: views.Links,
        names: SlackNames | None = None,
    ) -> None:
        self._http = http
        self._sql = sql
        self._agents = RestateForwarder(http, ingress_url)
        self.links = links
        self.names = names if names is not None else SlackNames(None)
        self._overview: dict[str, _Cached] = {}
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ overview
    async def overview(self, window: str) -> dict[str, Any]:
        """Counts, percentiles and the chart for `window` (`auto` or one of the fixed
        `chart.WINDOWS`), briefly cached."""
        window = window if window in chart.WINDOWS else chart.AUTO
        async with self._lock:
            cached = self._overview.setdefault(window, _Cached())
            if time.monotonic() - cached.at > OVERVIEW_TTL_SECONDS:
                cached.value = await self._compute_overview(window)
                cached.at = time.monotonic()
            return cached.value

    async def _compute_overview(self, window: str) -> dict[str, Any]:
        now = time.time()
        first = None
        if window == chart.AUTO:
            first = (await self._sql.one(queries.first_run_end(now))).get("first")
        span, bucket = chart.span_of(window, now, float(first) if first is not None else None)
        totals, running, counts, pcts, timeline, first_token = await asyncio.gather(
            self._sql.one(queries.session_totals()),
            self._sql.one(queries.tasks_running()),
            self._sql.query(queries.run_counts(now)),
            self._sql.one(queries.run_percentiles(now)),
            self._sql.query(queries.run_timeline(now, span, bucket)),
            app_metrics.first_token_buckets(self._sql, self._http),
        )
        return {
            "generated_at": now,
            "sessions": int(totals.get("sessions") or 0),
            "sessions_active": int(totals.get("active") or 0),
            "tasks_running": int(running.get("n") or 0),
            "outcomes": _outcome_counts(counts),
            "task_duration_s": _percentiles(pcts, "duration"),
            "interruption_latency_ms": _percentiles(pcts, "latency"),
            "first_token_s": {
                "p50": app_metrics.quantile(0.5, first_token),
                "p95": app_metrics.quantile(0.95, first_token),
                "since": "service start",
            },
            "chart": chart.bars(timeline, now, span, bucket),
            "window": window,
        }

    # ------------------------------------------------------------------ sessions
    async def sessions(self, f: queries.SessionFilter) -> dict[str, Any]:
        rows, count, channels = await asyncio.gather(
            self._sql.query(queries.sessions_page(f)),
            self._sql.one(queries.sessions_count(f)),
            self._sql.query(queries.channels()),
        )
        shown = [views.summary(r, self.links) for r in rows]
        listed = [str(r["channel"]) for r in channels if r.get("channel")]
        names = await self.names.names(
            (s["started_by"] for s in shown), [*listed, *(s["channel_id"] for s in shown)]
        )
        return {
            "sessions": shown,
            "total": int(count.get("n") or 0),
            "page": f.page,
            "per_page": f.per_page,
            "channels": listed,
            "names": names,
        }

    async def session(self, key: str) -> dict[str, Any] | None:
        """The session page's data, or None when Restate holds no session under `key`."""
        row, invocations = await asyncio.gather(
            self._sql.one(queries.session_state(key)),
            self._sql.query(queries.session_invocations(key)),
        )
        if not row.get("value"):
            return None
        raw_runs = views.raw_runs(str(row["value"]))
        tasks_sql = queries.task_invocations([str(r.get("task_id", "")) for r in raw_runs])
        tasks = await self._task_rows(tasks_sql) if tasks_sql else []
        by_id = {str(t["id"]): t for t in tasks}
        detail = views.detail(key, str(row["value"]), by_id, invocations, self.links)
        users, channels = session_ids(detail)
        return detail | {"names": await self.names.names(users, channels)}

    async def _task_rows(self, sql: str) -> list[dict[str, Any]]:
        """Restate's view of the runs is a detail: the page still shows without it."""
        try:
            return await self._sql.query(sql)
        except RestateError as exc:
            log.info("task_invocations_unavailable", error=str(exc))
            return []

    # ------------------------------------------------------------------ actions
    async def stop(self, key: str, operator: str, reason: str) -> dict[str, Any]:
        """Stop the session's running task (no restart), as an admin named `operator`."""
        req = StopRequest(user_id=f"dashboard:{operator}", is_admin=True, reason=reason)
        return await self._call_agent(key, AGENT_STOP, req)

    async def reset(self, key: str, operator: str) -> dict[str, Any]:
        """Stop the running task, then clear the session's history and state."""
        req = StopRequest(user_id=f"dashboard:{operator}", is_admin=True, reason="reset")
        return await self._call_agent(key, AGENT_RESET, req)

    async def _call_agent(self, key: str, handler: str, req: StopRequest) -> dict[str, Any]:
        try:
            return await self._agents.call(key, handler, req)
        except ForwardError as exc:
            raise RestateError(str(exc)) from exc


def _outcome_counts(stats: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {o: {"hour": 0, "day": 0} for o in OUTCOMES}
    for row in stats:
        if row.get("outcome") in counts:
            counts[row["outcome"]] = {"hour": int(row.get("hour") or 0), "day": int(row["day"])}
    return counts


def _percentiles(row: dict[str, Any], name: str) -> dict[str, float | None]:
    return {
        p: round(float(row[f"{name}_{p}"]), 3) if row.get(f"{name}_{p}") is not None else None
        for p in ("p50", "p95")
    }


def session_ids(detail: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The people and channels a session page names: who started it, who wrote each message,
    steered, interrupted or answered a request for approval, who asked for a ship."""
    users = {detail.get("started_by"), detail.get("ship", {}).get("wanted_by")}
    users |= {t.get("user_id") for t in detail.get("turns", [])}
    for run in detail.get("runs", []):
        users |= {run.get("trigger_user"), run.get("interrupted_by_user")}
        users |= {m.get("user_id") for m in run.get("steering", [])}
    users |= {a.get("by_user") for a in detail.get("approvals", [])}
    return {u for u in users if isinstance(u, str)}, {str(detail.get("channel_id") or "")}
