"""Shapes what Restate returns into what the pages show: links, durations, and each cancelled
run paired with the run that replaced it and the message that caused it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.dashboard import activity
from bot.dashboard.chart import OUTCOME_WORDS
from common.contract import parse_thread_key
from common.session_state import derive_state


@dataclass(frozen=True)
class Links:
    """Where the dashboard links to: the Slack workspace and the Restate UI."""

    slack_workspace_url: str | None
    restate_ui_url: str

    def thread(self, channel: str, ts: str, thread_ts: str | None = None) -> str | None:
        """A Slack permalink (`/archives/{channel}/p{ts without the dot}`)."""
        if not self.slack_workspace_url or not channel or not ts:
            return None
        url = f"{self.slack_workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
        return f"{url}?thread_ts={thread_ts}&cid={channel}" if thread_ts else url

    def invocation(self, invocation_id: str | None) -> str | None:
        return f"{self.restate_ui_url}/invocations/{invocation_id}" if invocation_id else None


def summary(row: dict[str, Any], links: Links) -> dict[str, Any]:
    """One row of the sessions list."""
    key = str(row["key"])
    _team, channel, thread_ts = _key_parts(key)
    channel = row.get("channel_id") or channel
    return {
        "key": key,
        "channel_id": channel,
        "thread_ts": row.get("thread_ts") or thread_ts,
        "thread_url": links.thread(channel, row.get("thread_ts") or thread_ts),
        "title": row.get("title") or "",
        "started_by": row.get("started_by"),
        "state": row.get("state", "idle"),
        "turns": int(row.get("turns") or 0),
        "tasks_started": int(row.get("tasks_started") or 0),
        "interruptions": int(row.get("interruptions") or 0),
        "stops": int(row.get("stops") or 0),
        "last_outcome": row.get("last_outcome"),
        "last_outcome_label": outcome_word(row.get("last_outcome")),
        "created_at": row.get("created_at"),
        "updated_at": row.get("updated_at"),
    }


def outcome_word(outcome: object) -> str:
    """A run's outcome as the page says it (`running` while it has none)."""
    if not outcome:
        return "running"
    return OUTCOME_WORDS.get(str(outcome), str(outcome))


def restate_note(word: str, status: object, retries: object) -> str | None:
    """Restate's status of a run, where it says more than the run's own word: "running" is
    not said twice, and "completed" is how every run's invocation ends, whatever its outcome."""
    if not isinstance(status, str) or status in ("completed", word):
        return None
    note = f"Restate: {status.replace('-', ' ')}"
    return f"{note}, {retries} retries" if isinstance(retries, int) and retries > 0 else note


def turn_label(turn: dict[str, Any], outcomes: dict[str, str | None]) -> str | None:
    """Who wrote an agent's turn and how its run ended; None for a person's message (the page
    shows their name). A partial answer says why it is partial: interrupted, or stopped."""
    kind = turn.get("kind")
    if kind == "partial":
        outcome = outcomes.get(str(turn.get("task_id") or ""))
        why = OUTCOME_WORDS.get(outcome or "", "cut off")
        return f"agent · {why}, partial answer"
    return {"answer": "agent", "error": "agent · failed", "dropped": "earlier turns"}.get(str(kind))


def _key_parts(key: str) -> tuple[str, str, str]:
    try:
        return parse_thread_key(key)
    except ValueError:
        return "", "", ""


def raw_runs(value: str) -> list[dict[str, Any]]:
    """The run records inside a session's state entry."""
    runs = json.loads(value).get("runs") or []
    return [r for r in runs if isinstance(r, dict)]


def detail(
    key: str,
    value: str,
    tasks: dict[str, dict[str, Any]],
    agent_invocations: list[dict[str, Any]],
    links: Links,
) -> dict[str, Any]:
    """Everything the session page shows, from the session's state entry and Restate's tables."""
    raw: dict[str, Any] = json.loads(value)
    _team, channel, thread_ts = _key_parts(key)
    channel = raw.get("channel_id") or channel
    thread_ts = raw.get("thread_ts") or thread_ts
    outcomes = {str(r.get("task_id")): r.get("outcome") for r in raw.get("runs", [])}
    turns = [{**t, "label": turn_label(t, outcomes)} for t in raw.get("turns", [])]
    by_ts = {t["ts"]: t for t in turns if t.get("kind") == "user" and t.get("ts")}
    steered = activity.steering(raw)
    runs = [_run(r, tasks, by_ts, links, steered) for r in raw.get("runs", [])]
    numbers = {str(r["task_id"]): i for i, r in enumerate(runs, 1) if r.get("task_id")}
    _mark_steering(turns, runs, numbers)
    return {
        "key": key,
        "channel_id": channel,
        "thread_ts": thread_ts,
        "thread_url": links.thread(channel, thread_ts),
        "started_by": raw.get("started_by"),
        "state": derive_state(raw),
        "created_at": raw.get("created_at"),
        "updated_at": raw.get("updated_at"),
        "tasks_started": int(raw.get("tasks_started") or 0),
        "interruptions": int(raw.get("interruptions") or 0),
        "stops": int(raw.get("stops") or 0),
        "last_outcome": raw.get("last_outcome"),
        "last_outcome_label": outcome_word(raw.get("last_outcome")),
        "running": raw.get("running"),
        "queued": len(raw.get("queued") or []),
        "workspace": _workspace(raw.get("workspace")),
        "setup": activity.setup(raw),
        "ship": activity.shipping(raw),
        "approvals": activity.approvals(raw, numbers),
        "turns": turns,
        "runs": runs,
        "replacements": replacements(runs),
        "invocations": [_invocation(i, links) for i in agent_invocations],
    }


def _run(
    run: dict[str, Any],
    tasks: dict[str, dict[str, Any]],
    by_ts: dict[str, dict[str, Any]],
    links: Links,
    steered: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    started, ended = run.get("started_at"), run.get("ended_at")
    trigger = by_ts.get(run.get("trigger_ts") or "")
    interrupter = by_ts.get(run.get("interrupted_by_ts") or "")
    restate = tasks.get(run.get("task_id") or "", {})
    word = outcome_word(run.get("outcome"))
    return {
        **run,
        "outcome_label": word,
        "restate_note": restate_note(word, restate.get("status"), restate.get("retry_count")),
        "duration_s": round(ended - started, 3) if started and ended else None,
        "trigger_text": trigger.get("text") if trigger else None,
        "interrupted_by_text": interrupter.get("text") if interrupter else None,
        "interrupted_by_user": interrupter.get("user_id") if interrupter else None,
        "restate_status": restate.get("status"),
        "restate_retries": restate.get("retry_count"),
        "restate_url": links.invocation(run.get("task_id")),
        "steering": steered.get(run.get("task_id") or "", []),
    }


def _workspace(workspace: Any) -> dict[str, Any] | None:
    """The workspace with its repository by its short name: its URL may carry a token."""
    if not isinstance(workspace, dict):
        return None
    return {**workspace, "repo": activity.repo_label(workspace.get("repo")) or "the repository"}


def _mark_steering(
    turns: list[dict[str, Any]], runs: list[dict[str, Any]], numbers: dict[str, int]
) -> None:
    """A steering message in the conversation says which run (by its number) it went to."""
    into = {m["ts"]: numbers.get(r["task_id"]) for r in runs for m in r["steering"] if m["ts"]}
    for turn in turns:
        if turn.get("kind") == "user" and turn.get("ts") in into:
            turn["steered_run"] = into[turn["ts"]]


def replacements(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each cancelled run beside the run that replaced it and the message that caused it."""
    by_id = {r["task_id"]: r for r in runs if r.get("task_id")}
    pairs = []
    for run in runs:
        if run.get("outcome") != "cancelled":
            continue
        pairs.append(
            {
                "cancelled": run["task_id"],
                "replacement": run.get("replaced_by") if run.get("replaced_by") in by_id else None,
                "message_ts": run.get("interrupted_by_ts"),
                "message_text": run.get("interrupted_by_text"),
                "message_user": run.get("interrupted_by_user"),
                "cancel_latency_ms": run.get("cancel_latency_ms"),
            }
        )
    return pairs


def _invocation(row: dict[str, Any], links: Links) -> dict[str, Any]:
    return {
        "id": row.get("id"),
        "handler": row.get("handler"),
        "status": row.get("status"),
        "created_at": _seconds(row.get("created_ms")),
        "completed_at": _seconds(row.get("completed_ms")),
        "restate_url": links.invocation(row.get("id")),
    }


def _seconds(ms: Any) -> float | None:
    return float(ms) / 1e3 if isinstance(ms, int | float) else None
