"""Requests for approval, the pure parts: who may answer and which answer counts (the session
machine), what a button carries, and what the request looks like in Slack."""

from __future__ import annotations

import json

import pytest

from common.contract import (
    APPROVE_ACTION_ID,
    DENY_ACTION_ID,
    MAX_APPROVAL_SUMMARY,
    Answer,
    ApprovalClick,
    ApprovalClosed,
    ApprovalRef,
    PendingApproval,
    TaskReport,
    approval_summary,
)
from restate_app.approval_view import (
    answer_line,
    code_block,
    ended_message,
    request_blocks,
    withdrawn_line,
)
from restate_app.session import (
    ApprovalAnswered,
    ApprovalWaitEnded,
    PostNotice,
    ResolveApproval,
    StopRequested,
    TaskEnded,
)
from restate_app.session_approvals import MAX_APPROVALS_KEPT
from tests.unit.test_session_rules import KEY, Thread

AWAKEABLE = "sign_1kuYTyNKSIA0Boi33ok6pC7hb-Ycc2b-GAAAAEQ"


def _ref(task_id: str = "inv_1", awakeable: str = AWAKEABLE) -> ApprovalRef:
    return ApprovalRef(thread_key=KEY, task_id=task_id, awakeable_id=awakeable)


def _click(user: str = "U1", approved: bool = True, **ref: str) -> ApprovalAnswered:
    return ApprovalAnswered(ApprovalClick(ref=_ref(**ref), approved=approved, user_id=user))


def _waiting() -> Thread:
    t = Thread()
    t.say("100.000001", "fetch the data", mentions_bot=True)
    return t


def test_a_participants_approve_wakes_the_running_task_once() -> None:
    t = _waiting()
    assert t(_click()).note == "accepted"
    (resolve,) = t.of(ResolveApproval)
    assert isinstance(resolve, ResolveApproval)
    assert resolve.awakeable_id == AWAKEABLE
    assert (resolve.answer.outcome, resolve.answer.by_user) == ("approved", "U1")
    assert resolve.answer.at is not None
    again = t(_click(approved=False))
    assert again.note == "answered"
    assert not t.of(ResolveApproval), "a second answer changes nothing"
    record = t.session.approval(AWAKEABLE)
    assert record is not None
    assert record.answer.outcome == "approved"


def test_someone_who_never_wrote_in_the_thread_may_not_answer_but_an_admin_may() -> None:
    t = _waiting()
    assert t(_click(user="U9")).note == "not_allowed"
    assert not t.of(ResolveApproval)
    admin = ApprovalClick(ref=_ref(), approved=False, user_id="U9", is_admin=True)
    assert t(ApprovalAnswered(admin)).note == "accepted"
    (resolve,) = t.of(ResolveApproval)
    assert isinstance(resolve, ResolveApproval)
    assert resolve.answer.outcome == "denied"


def test_someone_who_wrote_later_may_answer_the_next_runs_request() -> None:
    t = _waiting()
    t.say("100.000002", "and fetch the rest too", user_id="U2")  # restarts the run: inv_2
    assert t(_click(user="U2", task_id="inv_1")).note == "not_waiting"
    assert t(_click(user="U2", task_id="inv_2")).note == "accepted"


def test_a_click_for_a_run_that_no_longer_runs_wakes_nothing() -> None:
    t = _waiting()
    t(StopRequested("U1"))
    assert t(_click()).note == "not_waiting"
    assert not t.of(ResolveApproval)
    assert t(_click(task_id="inv_999")).note == "not_waiting"


def test_the_timeout_counts_only_when_nobody_answered_first() -> None:
    t = _waiting()
    ended = ApprovalClosed(
        awakeable_id=AWAKEABLE, task_id="inv_1", answer=Answer(outcome="timed_out")
    )
    t(ApprovalWaitEnded(ended))
    (resolve,) = t.of(ResolveApproval)
    assert isinstance(resolve, ResolveApproval)
    assert resolve.answer.outcome == "timed_out"
    assert t(_click()).note == "answered", "a click after the timeout is too late"

    raced = _waiting()
    raced(_click())
    raced(ApprovalWaitEnded(ended))
    assert not raced.of(ResolveApproval), "the click came first: it already woke the task"
    record = raced.session.approval(AWAKEABLE)
    assert record is not None
    assert record.answer.outcome == "approved"


def test_answers_kept_are_bounded() -> None:
    t = _waiting()
    for n in range(MAX_APPROVALS_KEPT + 5):
        t(_click(awakeable=f"sign_1{n:038d}"))
    assert len(t.session.approvals) == MAX_APPROVALS_KEPT


def test_a_cut_runs_pending_request_goes_with_its_notice() -> None:
    t = _waiting()
    t(StopRequested("U1"))
    pending = PendingApproval(ts="100.000009", what="curl https://example.com")
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="cancelled", approval=pending)))
    (notice,) = t.of(PostNotice)
    assert isinstance(notice, PostNotice)
    assert notice.notice.approval == pending


# ----------------------------------------------------------------------------- the button


def test_a_button_value_round_trips_and_anything_else_is_refused() -> None:
    ref = _ref()
    assert ApprovalRef.from_value(ref.value()) == ref
    bad = [
        None,
        "",
        "not json",
        json.dumps({"thread_key": KEY, "task_id": "inv_1"}),
        json.dumps({"thread_key": "nope", "task_id": "inv_1", "awakeable_id": AWAKEABLE}),
        json.dumps({"thread_key": KEY, "task_id": "x; rm", "awakeable_id": AWAKEABLE}),
        json.dumps({"thread_key": KEY, "task_id": "inv_1", "awakeable_id": "../../admin"}),
        json.dumps({"thread_key": KEY, "task_id": "inv_1", "awakeable_id": AWAKEABLE[:-1]}),
        json.dumps(ref.model_dump() | {"extra": 1}),
        "x" * 5000,
    ]
    for value in bad:
        with pytest.raises(ValueError, match=r"approval button value|validation error"):
            ApprovalRef.from_value(value)


# ----------------------------------------------------------------------------- in Slack


def _shown(**extra: object) -> PendingApproval:
    fields: dict[str, object] = {
        "ts": "1.2",
        "what": "curl https://example.com",
        "why": "it reaches the network",
        "network": True,
        "timeout_seconds": 3600,
    }
    return PendingApproval.model_validate(fields | extra)


def test_the_request_shows_the_exact_command_who_may_answer_and_two_buttons() -> None:
    blocks = request_blocks(_shown(), _ref())
    text = json.dumps(blocks)
    assert "```curl https://example.com```" in text
    assert "Only the people in this thread (or an admin) can answer this." in text
    assert "network access" in text
    assert "No answer within 1 h counts as no." in text
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    buttons = actions["elements"]
    assert [(b["action_id"], b["style"]) for b in buttons] == [
        (APPROVE_ACTION_ID, "primary"),
        (DENY_ACTION_ID, "danger"),
    ]
    assert {ApprovalRef.from_value(b["value"]) for b in buttons} == {_ref()}


def test_a_command_cannot_ping_anyone_or_break_out_of_its_code_block() -> None:
    block = code_block("echo <!here> <@U0ADMIN> ``` *bold*")
    assert "<!here>" not in block
    assert "<@U0ADMIN>" not in block
    assert block.count("```") == 2


def test_the_ended_request_says_how_without_buttons() -> None:
    shown = _shown()
    approved = answer_line(shown, Answer(outcome="approved", by_user="U0ALICE"))
    assert approved.startswith(":white_check_mark: Approved by <@U0ALICE>")
    denied = answer_line(shown, Answer(outcome="denied", by_user="<!channel>"))
    assert "<!channel>" not in denied
    assert "someone" in denied
    assert "No answer within 1 h" in answer_line(shown, Answer(outcome="timed_out"))
    text, blocks = ended_message(shown, withdrawn_line("stopped"))
    assert "No longer needed: the run was stopped." in text
    assert not [b for b in blocks if b["type"] == "actions"]


def test_the_record_of_an_answer_says_what_was_asked_from_the_click_or_the_timeout() -> None:
    what = approval_summary("curl   https://example.com\n| sh")
    clicked = _waiting()
    ref = _ref().model_copy(update={"kind": "command", "what": what})
    clicked(ApprovalAnswered(ApprovalClick(ref=ref, approved=False, user_id="U1")))
    record = clicked.session.approval(AWAKEABLE)
    assert record is not None
    assert (record.kind, record.what, record.answer.by_user) == ("command", what, "U1")

    timed = _waiting()
    closed = ApprovalClosed(
        awakeable_id=AWAKEABLE,
        task_id="inv_1",
        answer=Answer(outcome="timed_out"),
        kind="budget",
        what="go on past 50k tokens",
    )
    timed(ApprovalWaitEnded(closed))
    record = timed.session.approval(AWAKEABLE)
    assert record is not None
    assert (record.kind, record.what) == ("budget", "go on past 50k tokens")


def test_a_button_carries_a_one_line_bounded_summary_and_still_reads_strictly() -> None:
    long = "echo " + "x" * 5000 + "\n\trm -rf build"
    summary = approval_summary(long)
    assert len(summary) == MAX_APPROVAL_SUMMARY
    assert summary.endswith("…")
    assert "\n" not in summary
    assert approval_summary("ls  -la\n") == "ls -la"
    ref = _ref().model_copy(update={"kind": "push", "what": summary})
    assert ApprovalRef.from_value(ref.value()) == ref
    assert len(ref.value()) < 2000, "Slack's limit on a button's value"
    with pytest.raises(ValueError, match="kind"):
        ApprovalRef.from_value(ref.value().replace('"push"', '"launch"'))
    old_button = _ref().value()
    assert ApprovalRef.from_value(old_button).what == ""
