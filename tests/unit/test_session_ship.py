"""The session's ship rules (`restate_app/session_ship.py`), one scenario each: when a ship
starts, what it is given, and what its report leaves in the session."""

from __future__ import annotations

from common.contract import (
    ChangeSummary,
    ShipJob,
    ShipReport,
    ShipRequest,
    TaskReport,
    WorkspaceRef,
)
from restate_app.session import Shipped, ShipRequested, StartShip, TaskEnded
from tests.unit.test_session_rules import Thread

WORKSPACE = WorkspaceRef(repo="/srv/git/acme/api.git", base_commit="abc123", patch="diff --git")
CHANGED = ChangeSummary(files=["dates.py"], added=3, removed=1)


def _answered(t: Thread, task: str, text: str = "Fixed it.") -> None:
    report = TaskReport(
        task_id=task, outcome="completed", text=text, workspace=WORKSPACE, changes=CHANGED
    )
    t(TaskEnded(report))


def _ships(t: Thread) -> list[ShipJob]:
    return [e.job for e in t.effects if isinstance(e, StartShip)]


def _ask(t: Thread, ts: str, user: str = "U1") -> None:
    t(ShipRequested(ShipRequest(user_id=user, ts=ts)))


def test_open_a_pr_after_an_answer_ships_the_threads_workspace_at_once() -> None:
    t = Thread()
    t.say("100.000001", "fix the summer times", mentions_bot=True)
    _answered(t, "inv_1", "Fixed the offsets.")
    _ask(t, "100.000009")
    (job,) = _ships(t)
    assert (job.job, job.requested_by, job.workspace) == (1, "U1", WORKSPACE)
    assert (job.title, job.answer) == ("fix the summer times", "Fixed the offsets.")
    assert (job.branch, job.pr_url) == (None, None)
    assert t.session.ship.running == 1


def test_a_ship_asked_for_while_a_run_works_starts_when_the_run_ends() -> None:
    t = Thread()
    t.say("100.000001", "fix it", mentions_bot=True)
    _ask(t, "100.000002")
    assert _ships(t) == []
    _answered(t, "inv_1")
    (job,) = _ships(t)
    assert job.workspace == WORKSPACE


def test_a_redelivered_or_repeated_request_ships_once() -> None:
    t = Thread()
    t.say("100.000001", "fix it", mentions_bot=True)
    _answered(t, "inv_1")
    _ask(t, "100.000002")
    _ask(t, "100.000002")
    assert _ships(t) == []
    _ask(t, "100.000003", user="U2")
    assert _ships(t) == []
    assert t.session.ship.jobs == 1


def test_a_ship_report_keeps_the_branch_and_pull_request_for_later_ships() -> None:
    t = Thread()
    t.say("100.000001", "fix it", mentions_bot=True)
    _answered(t, "inv_1")
    _ask(t, "100.000002")
    url = "https://github.com/acme/api/pull/7"
    t(
        Shipped(
            ShipReport(job=1, outcome="shipped", branch="agent/fix-it-1", pr_url=url, pr_number=7)
        )
    )
    ship = t.session.ship
    assert (ship.running, ship.branch, ship.pr_url, ship.pr_number) == (
        None,
        "agent/fix-it-1",
        url,
        7,
    )
    # A later run that changes files in a thread with a branch ships again, to the same one.
    t.say("100.000003", "also handle winter", mentions_bot=True)
    _answered(t, "inv_2")
    (job,) = _ships(t)
    assert (job.job, job.branch, job.pr_url, job.requested_by) == (2, "agent/fix-it-1", url, "U1")


def test_a_stale_ship_report_changes_nothing() -> None:
    t = Thread()
    t.say("100.000001", "fix it", mentions_bot=True)
    _answered(t, "inv_1")
    _ask(t, "100.000002")
    d = t(Shipped(ShipReport(job=5, outcome="shipped", branch="agent/other")))
    assert d.note == "stale_report"
    assert (t.session.ship.running, t.session.ship.branch) == (1, None)


def test_a_denied_ship_leaves_no_branch_and_a_later_run_does_not_ship_by_itself() -> None:
    t = Thread()
    t.say("100.000001", "fix it", mentions_bot=True)
    _answered(t, "inv_1")
    _ask(t, "100.000002")
    t(Shipped(ShipReport(job=1, outcome="denied")))
    t.say("100.000003", "more", mentions_bot=True)
    _answered(t, "inv_2")
    assert _ships(t) == []
    assert t.session.ship.last_outcome == "denied"


def test_a_thread_without_a_session_has_nothing_to_ship() -> None:
    t = Thread()
    d = t(ShipRequested(ShipRequest(user_id="U1", ts="100.000002")))
    assert d.note == "no_session"
    assert _ships(t) == []
