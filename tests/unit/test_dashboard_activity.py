"""The session page's setup, steering, approvals and shipping, from a stored session: the pure
part (`bot/dashboard/activity.py`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.dashboard import activity, views
from common.contract import Answer, ToolCall, Turn, WorkspaceRef, WorkStep
from common.session_state import ApprovalRecord, RunningTask, RunRecord, Session, Shipping

LINKS = views.Links(slack_workspace_url=None, restate_ui_url="http://restate/ui")
KEY = "T0:C0:100.000001"


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("https://x-access-token:ghp_secret@github.com/acme/widgets.git", "widgets"),
        ("https://github.com/acme/widgets/", "widgets"),
        ("git@github.com:acme/widgets.git", "widgets"),
        ("https://ghp_secret@example.com", "example.com"),
        ("https://example.com/acme/widgets.git?access_token=ghp_secret", "widgets"),
        ("/srv/repos/demo", "demo"),
        ("C:\\repos\\demo.git", "demo"),
        ("widgets", "widgets"),
        ("", None),
        (None, None),
    ],
)
def test_a_repository_shows_by_its_short_name_never_its_url(
    stored: str | None, shown: str | None
) -> None:
    assert activity.repo_label(stored) == shown


def test_only_http_urls_become_links() -> None:
    assert activity.http_url("https://github.com/acme/w/pull/7") is not None
    assert activity.http_url("http://localhost:9/pulls/1") is not None
    for url in ("javascript:alert(1)", "data:text/html,x", "//evil.example/x", "https://", 7):
        assert activity.http_url(url) is None


def _detail(session: Session) -> dict[str, Any]:
    return views.detail(KEY, session.model_dump_json(), {}, [], LINKS)


def _tool(n: int) -> list[WorkStep]:
    call = ToolCall(id=f"c{n}", name="list_files")
    return [
        WorkStep(role="assistant", tool_calls=[call]),
        WorkStep(role="tool", text="a\nb", tool_call_id=f"c{n}", name="list_files"),
    ]


def _steer(ts: str, text: str) -> WorkStep:
    return WorkStep(role="user", text=text, user_id="U0BOB", ts=ts)


def test_an_ended_runs_steering_messages_are_placed_after_the_tool_calls_before_them() -> None:
    work = [*_tool(1), _steer("100.000003", "keep the C API"), *_tool(2), *_tool(3)]
    work.append(_steer("100.000005", "and <b>docs</b>"))
    session = Session(
        created_at=1.0,
        policy="steer",
        turns=[
            Turn(kind="user", text="port it", user_id="U0ALICE", ts="100.000001"),
            Turn(kind="user", text="keep the C API", user_id="U0BOB", ts="100.000003"),
            Turn(kind="user", text="and <b>docs</b>", user_id="U0BOB", ts="100.000005"),
            Turn(kind="answer", text="Done.", task_id="inv_a", work=work),
        ],
        runs=[RunRecord(task_id="inv_a", trigger_ts="100.000001", started_at=1.0, ended_at=9.0)],
    )
    detail = _detail(session)
    (run,) = detail["runs"]
    assert [(m["ts"], m["after_tools"], m["status"]) for m in run["steering"]] == [
        ("100.000003", 1, "taken"),
        ("100.000005", 3, "taken"),
    ]
    assert run["steering"][1]["text"] == "and <b>docs</b>", "text, for the page to escape"
    steered = [t.get("steered_run") for t in detail["turns"]]
    assert steered == [None, 1, 1, None]


def test_the_running_runs_steering_messages_say_whether_it_has_read_them() -> None:
    running = RunningTask(
        task_id="inv_b", started_at=1.0, trigger_ts="200.000001", delivered=["200.000004"]
    )
    session = Session(
        created_at=1.0,
        policy="steer",
        running=running,
        turns=[
            Turn(kind="user", text="first", user_id="U0ALICE", ts="200.000001"),
            Turn(kind="user", text="taken", user_id="U0BOB", ts="200.000002"),
            Turn(kind="user", text="unread", user_id="U0BOB", ts="200.000004"),
        ],
        runs=[RunRecord(task_id="inv_b", trigger_ts="200.000001", started_at=1.0)],
    )
    (run,) = _detail(session)["runs"]
    assert [(m["text"], m["after_tools"], m["status"]) for m in run["steering"]] == [
        ("taken", None, "taken"),
        ("unread", None, "waiting"),
    ]


def test_approvals_say_what_who_when_and_which_run_newest_first() -> None:
    def record(task: str, outcome: str, kind: str | None, what: str = "") -> ApprovalRecord:
        answer = Answer.model_validate({"outcome": outcome, "by_user": "U0BOB", "at": 5.0})
        return ApprovalRecord.model_validate(
            {"awakeable_id": f"sign_{task}", "task_id": task, "answer": answer, "kind": kind}
            | {"what": what}
        )

    session = Session(
        created_at=1.0,
        runs=[RunRecord(task_id="inv_a", trigger_ts="1.1", started_at=1.0)],
        approvals=[
            record("inv_a", "approved", "command", "curl https://example.com"),
            record("inv_ship", "denied", "pull_request", "push branch agent/x"),
            record("inv_a", "timed_out", "budget", "go on past 50k tokens"),
            record("inv_old", "approved", None),
        ],
    )
    shown = _detail(session)["approvals"]
    assert [(a["asked_by"], a["kind_label"], a["outcome_label"]) for a in shown] == [
        ("a run no longer listed", "approval", "approved"),
        ("run 1", "budget pause", "no answer in time"),
        ("a ship", "open a pull request", "denied"),
        ("run 1", "run a command", "approved"),
    ]
    assert shown[1]["budget_pause"] is True
    assert shown[3]["what"] == "curl https://example.com"
    assert shown[3]["by_user"] == "U0BOB"
    assert shown[3]["at"] == 5.0


def test_setup_and_shipping_show_names_and_only_http_links() -> None:
    ref = WorkspaceRef(repo="https://tok:secret@git.example/acme/widgets.git", base_commit="c")
    ship = Shipping(branch="agent/x", pr_url="javascript:alert(1)", pr_number=7, running=2)
    detail = _detail(Session(created_at=1.0, model="smart", workspace=ref, ship=ship))
    assert detail["setup"] == {"repo": "widgets", "repo_picked": False, "model": "smart"}
    assert "secret" not in json.dumps(detail)
    assert detail["workspace"]["repo"] == "widgets"
    assert detail["ship"]["pr_url"] is None
    assert detail["ship"]["pr_text"] == "javascript:alert(1)"
    assert detail["ship"]["under_way"] is True
    picked = _detail(Session(created_at=1.0, repo="demo", workspace=ref))["setup"]
    assert picked == {"repo": "demo", "repo_picked": True, "model": None}


def test_an_old_session_without_the_new_fields_still_shows() -> None:
    raw = {"created_at": 1.0, "turns": [], "runs": [{"task_id": "inv_a", "tools": []}]}
    detail = views.detail(KEY, json.dumps(raw), {}, [], LINKS)
    assert detail["approvals"] == []
    assert detail["ship"]["branch"] is None
    assert detail["setup"] == {"repo": None, "repo_picked": False, "model": None}
    assert detail["runs"][0]["steering"] == []
