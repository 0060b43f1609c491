"""The session's ship rules: the thread's work goes out as one branch and one draft pull
request. Pure, like the rules in `restate_app/session.py` that call them.

A ship is asked for in the thread ("open a PR", the Create PR button) and starts once no run
works (a run under way finishes first, so the branch gets what it did). One ship at a time;
asking again while one waits for its approval changes nothing. Once the thread has a branch,
every later run that changes files asks to ship again, so the branch and its pull request
follow the thread (each push still waits for a person's approval).
"""

from __future__ import annotations

from common.contract import ShipJob, ShipReport, ShipRequest, TaskReport, parse_thread_key
from common.session_state import Session
from restate_app.session_events import Decision, StartShip

# Requests remembered against Slack's redeliveries.
MAX_SEEN = 20


def ship_requested(d: Decision, req: ShipRequest) -> None:
    s = d.session
    if not s.started:
        d.note = "no_session"
        return
    if req.ts in s.ship.seen:
        d.note = "duplicate"
        return
    s.ship.seen = [*s.ship.seen[-(MAX_SEEN - 1) :], req.ts]
    if s.ship.running is not None:
        d.note = "already_shipping"
        return
    s.ship.wanted_by = req.user_id
    d.note = "ship_wanted"


def after_run(s: Session, report: TaskReport, trigger_user: str | None) -> None:
    """A completed run that changed files, in a thread that already has a branch: ship it."""
    changed = report.changes is not None and bool(report.changes.files)
    if report.outcome == "completed" and changed and s.ship.branch and trigger_user:
        s.ship.wanted_by = s.ship.wanted_by or trigger_user


def maybe_ship(d: Decision, key: str) -> None:
    """Start the ship asked for once nothing runs, is being cancelled, or is about to start."""
    s = d.session
    if s.ship.wanted_by is None or s.ship.running is not None:
        return
    if s.running is not None or s.cancelling is not None or s.pending_ts is not None:
        return
    _team, channel, thread_ts = parse_thread_key(key)
    s.ship.jobs += 1
    s.ship.running = s.ship.jobs
    d.effects.append(
        StartShip(
            ShipJob(
                thread_key=key,
                channel_id=channel,
                thread_ts=thread_ts,
                job=s.ship.jobs,
                requested_by=s.ship.wanted_by,
                workspace=s.workspace,
                title=_first(s, "user"),
                answer=_last(s, "answer"),
                branch=s.ship.branch,
                pr_url=s.ship.pr_url,
            )
        )
    )
    s.ship.wanted_by = None


def ship_started(d: Decision, job: int, task_id: str) -> None:
    if d.session.ship.running == job:
        d.session.ship.task_id = task_id


def shipped(d: Decision, report: ShipReport) -> None:
    ship = d.session.ship
    if ship.running != report.job:
        d.note = "stale_report"
        return
    ship.running = ship.task_id = None
    ship.last_outcome = report.outcome
    ship.branch = report.branch or ship.branch
    ship.pr_url = report.pr_url or ship.pr_url
    ship.pr_number = report.pr_number or ship.pr_number
    d.note = f"ship_{report.outcome}"


def _first(s: Session, kind: str) -> str:
    return next((t.text for t in s.turns if t.kind == kind), "")


def _last(s: Session, kind: str) -> str:
    return next((t.text for t in reversed(s.turns) if t.kind == kind), "")
