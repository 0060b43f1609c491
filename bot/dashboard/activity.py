"""What the session page shows beside its runs, from the session's stored JSON: the repository
and the model it works with, the steering messages each run took in (and where), the requests
for approval and their answers, and the thread's branch and pull request.

Pure: it reads the dict Restate's admin SQL returns, tolerating fields older sessions lack.
Every string it returns is untrusted text for the page to show as text, never as markup.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from common.session_state import Session

# The page's words for a request's kind and its answer.
KIND_LABELS = {
    "command": "run a command",
    "push": "push the branch",
    "pull_request": "open a pull request",
    "budget": "budget pause",
}
OUTCOME_LABELS = {
    "approved": "approved",
    "denied": "denied",
    "timed_out": "no answer in time",
    "unavailable": "could not be asked",
}
_SEPARATORS = re.compile(r"[/:@\\]")


def repo_label(value: str | None) -> str | None:
    """A repository by its short name: the last part of its path without `.git`, never the
    URL (which may carry a token in its user part or its query)."""
    if not value:
        return None
    path = value.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    name = _SEPARATORS.split(path)[-1].removesuffix(".git")
    return name or None


def setup(raw: dict[str, Any]) -> dict[str, Any]:
    """The repository and the model: the ones the first mention picked, else the default's
    (the repository the workspace was made from, by its short name)."""
    workspace = raw.get("workspace") if isinstance(raw.get("workspace"), dict) else {}
    picked = repo_label(_str(raw.get("repo")))
    return {
        "repo": picked or repo_label(_str((workspace or {}).get("repo"))),
        "repo_picked": picked is not None,
        "model": _str(raw.get("model")),
    }


def http_url(value: object) -> str | None:
    """`value` when it is an http(s) URL, the only kind the page makes a link of."""
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def shipping(raw: dict[str, Any]) -> dict[str, Any]:
    """The thread's branch and pull request, the last ship's outcome, and any ship under way
    (or asked for, to start when the run ends)."""
    ship = raw.get("ship") if isinstance(raw.get("ship"), dict) else {}
    ship = ship or {}
    url = _str(ship.get("pr_url"))
    return {
        "branch": _str(ship.get("branch")),
        "pr_url": http_url(url),
        # A URL that is not http(s) is still shown, as text.
        "pr_text": url,
        "pr_number": ship.get("pr_number") if isinstance(ship.get("pr_number"), int) else None,
        "last_outcome": _str(ship.get("last_outcome")),
        "under_way": ship.get("running") is not None,
        "wanted_by": _str(ship.get("wanted_by")),
        "ships": int(ship.get("jobs") or 0),
    }


def approvals(raw: dict[str, Any], run_numbers: dict[str, int]) -> list[dict[str, Any]]:
    """Each answered request for approval, newest first: what, who, when, how it ended, and
    which run (by its number on the page) or ship asked."""
    shown = []
    for record in raw.get("approvals") or []:
        if not isinstance(record, dict):
            continue
        answer = record.get("answer") if isinstance(record.get("answer"), dict) else {}
        answer = answer or {}
        kind = _str(record.get("kind"))
        outcome = _str(answer.get("outcome")) or "unknown"
        task_id = _str(record.get("task_id"))
        shown.append(
            {
                "kind": kind,
                "kind_label": KIND_LABELS.get(kind or "", "approval"),
                "budget_pause": kind == "budget",
                "what": _str(record.get("what")) or "",
                "outcome": outcome,
                "outcome_label": OUTCOME_LABELS.get(outcome, outcome),
                "by_user": _str(answer.get("by_user")),
                "at": answer.get("at") if isinstance(answer.get("at"), int | float) else None,
                "task_id": task_id,
                "run": run_numbers.get(task_id or ""),
                "asked_by": _asker(kind, task_id, run_numbers),
            }
        )
    return list(reversed(shown))


def _asker(kind: str | None, task_id: str | None, run_numbers: dict[str, int]) -> str:
    number = run_numbers.get(task_id or "")
    if number is not None:
        return f"run {number}"
    return "a ship" if kind in ("push", "pull_request") else "a run no longer listed"


def steering(raw: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The steering messages of each run (by task id), in the order it took them in.

    An ended run's transcript has each one where the run took it in: `after_tools` counts the
    tool calls before it. The running run's transcript is not stored until it ends: its
    messages are those it has taken in (`after_tools` None: where is not known yet) and those
    it has not read yet (`waiting`)."""
    try:
        session = Session.model_validate(raw)
    except ValidationError:
        return {}
    found: dict[str, list[dict[str, Any]]] = {}
    for turn in session.turns:
        if turn.task_id is None or not turn.work:
            continue
        tools, messages = 0, []
        for step in turn.work:
            if step.role == "tool":
                tools += 1
            elif step.role == "user":
                messages.append(_message(step.ts, step.user_id, step.text, tools, "taken"))
        if messages:
            found.setdefault(turn.task_id, []).extend(messages)
    running = session.running
    if running is not None and running.task_id and running.task_id not in found:
        found[running.task_id] = _running_steering(session)
    return {task: messages for task, messages in found.items() if messages}


def _running_steering(session: Session) -> list[dict[str, Any]]:
    running = session.running
    assert running is not None
    unread = {*running.steering, *running.delivered}
    steered = session.policy == "steer"
    messages = []
    for turn in session.turns:
        if turn.kind != "user" or not turn.ts or not _later(turn.ts, running.trigger_ts):
            continue
        if turn.ts in unread:
            messages.append(_message(turn.ts, turn.user_id, turn.text, None, "waiting"))
        elif steered:
            messages.append(_message(turn.ts, turn.user_id, turn.text, None, "taken"))
    return messages


def _message(
    ts: str | None, user: str | None, text: str, after_tools: int | None, status: str
) -> dict[str, Any]:
    return {"ts": ts, "user_id": user, "text": text, "after_tools": after_tools, "status": status}


def _later(ts: str, than: str) -> bool:
    """Slack ts order, exact (a float loses the last digits of a ts)."""
    return _ts_key(ts) > _ts_key(than)


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, fraction = ts.partition(".")
    try:
        return int(seconds), int(fraction.ljust(6, "0")[:6] or 0)
    except ValueError:
        return 0, 0


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
